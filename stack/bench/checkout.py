#!/usr/bin/env python3
"""Complete checkouts through nginx at 1, 64 and 1,000 connections, with the SQL statements
and KMS calls each one costs, beside a pgbench run of the same writes as one transaction.

Run through `bash stack/bench-checkout.sh` (it starts the stack and checks the tools). Every
checkout is three lines of three different products (of PRODUCTS) for a registered walk-in
customer (of CUSTOMERS) paid 10.00 from the customer's wallet and 25.00 in cash (5.00
change), no receipt e-mail (the mailer benchmark measures those), with its own
Idempotency-Key, at one of SHOPS shops (one owner's): a thousand tills
are many shops' tills, and a shop's order numbers are gapless, so one shop's sales commit one
after another. Load comes from wrk on the same two cores.

Statements are read from pg_stat_statements, summed over the services' own database roles
(cashvio_auth/stock/order/mailer), so they include everything a checkout sets off in any
service: the RPCs, the outbox relays, stock's and the mailer's consumers of the order event.
KMS calls are the order service's `order_kms_calls` counter.
"""

import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

BASE = os.environ.get("CASHVIO_URL", "http://127.0.0.1:8000")
SINK = os.environ.get("SINK_URL", "http://127.0.0.1:8025")
ORDER_METRICS = f"http://127.0.0.1:{os.environ.get('ORDER_PORT', '3003')}/metrics"
DB = os.environ.get("BENCH_DATABASE", "cashvio")
SECONDS = int(os.environ.get("BENCH_SECONDS", "30"))
WARMUP = int(os.environ.get("BENCH_WARMUP_SECONDS", "5"))
# Cells: connections, or connections/think-ms (each connection pauses that long on average
# before each checkout, as a till does between sales; see common.lua). "1000/10000" is a
# thousand tills each selling about every ten seconds.
CELLS = [tuple(int(x) for x in (cell + "/0").split("/")[:2])
         for cell in os.environ.get("BENCH_CONNECTIONS", "1 64 1000 1000/10000").split()]
# Reservation cells (connections; empty for none): POST /stock/reservations of three
# products, straight at stock, after the checkout cells.
RESERVE = [int(c) for c in os.environ.get("BENCH_RESERVE", "64").split()]
SHOPS = int(os.environ.get("BENCH_SHOPS", "20"))
PRODUCTS = int(os.environ.get("BENCH_PRODUCTS", "100"))  # per shop
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "100"))  # per shop
PASSWORD = "bench secret phrase"
HERE = os.path.dirname(os.path.abspath(__file__))
ROLES = ("cashvio_auth", "cashvio_stock", "cashvio_order", "cashvio_mailer")


def call(method, path, body=None, token=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        sys.exit(f"{method} {path}: {e.code} {e.read()[:300]!r}")


def psql(sql):
    out = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", DB, "-AtqX", "-F", "\t", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def kms_calls():
    text = urllib.request.urlopen(ORDER_METRICS, timeout=10).read().decode()
    m = re.search(r"^order_kms_calls(?:_total)?(?:\{[^}]*\})? (\d+(?:\.\d+)?)", text, re.M)
    return float(m.group(1)) if m else 0.0


def sign_up():
    email = f"bench{uuid.uuid4().hex[:12]}@example.com"
    call("POST", "/auth/auth/otp/generate", {"email": email, "name": "Bench"})
    otp = None
    for _ in range(60):
        with urllib.request.urlopen(f"{SINK}/api/messages?to={email}", timeout=10) as r:
            msgs = json.load(r)
        if msgs:
            otp = re.search(r"\d{6}", msgs[-1]["subject"]).group(0)
            break
        time.sleep(0.5)
    if not otp:
        sys.exit("the sign-up code never arrived")
    body = {"name": "Bench", "email": email, "password": PASSWORD, "otp": otp,
            "businessName": "Bench Shop", "address": "Colombo"}
    call("POST", "/auth/auth/register", body)
    return email


def log_in(email):
    return call("POST", "/auth/auth/login", {"email": email, "password": PASSWORD})["accessToken"]


def seed(email):
    token = log_in(email)
    first = call("GET", "/auth/shops", token=token)[0]["id"]
    for i in range(1, SHOPS):
        call("POST", "/auth/shops", {"businessName": f"Bench Shop {i}", "address": "Colombo"}, token)
    token = log_in(email)  # a token that names every shop
    shops = [first] + [s["id"] for s in call("GET", "/auth/shops", token=token) if s["id"] != first]
    pool = concurrent.futures.ThreadPoolExecutor(16)

    def product(args):
        shop, i = args
        body = {"shopId": shop, "name": f"Bench item {i}", "sellPrice": "10.00"}
        p = call("POST", "/stock/products", body, token)["id"]
        call("POST", f"/stock/products/{p}/receive", {"quantity": 1_000_000}, token)
        return shop, p

    def customer(args):
        shop, i, product_id = args
        sale = {"shopId": shop, "customerName": f"Customer {i}",
                "customerEmail": f"c{i}.{uuid.uuid4().hex[:8]}@example.com",
                "items": [{"productId": product_id, "quantity": 1}],
                "payments": [{"method": "CASH", "amount": "10.00"}], "sendReceiptEmail": False}
        c = call("POST", "/order/orders", sale, token)["customerId"]
        call("POST", f"/order/customer-wallet/{shop}/{c}/top-up", {"amount": "100000.00", "method": "CASH"}, token)
        return shop, c

    catalog = {s: {"products": [], "customers": []} for s in shops}
    for shop, p in pool.map(product, [(s, i) for s in shops for i in range(PRODUCTS)]):
        catalog[shop]["products"].append(p)
    jobs = [(s, i, catalog[s]["products"][i % PRODUCTS]) for s in shops for i in range(CUSTOMERS)]
    for shop, c in pool.map(customer, jobs):
        catalog[shop]["customers"].append(c)
    return catalog


def wrk_script(path, template, preamble, think_ms=0):
    """A wrk script: the driver's variables, the template, then common.lua (think time, RESULT)."""
    parts = [f"think_ms = {think_ms}\n", preamble]
    for name in (template, "common.lua"):
        with open(os.path.join(HERE, name)) as f:
            parts.append(f.read())
    with open(path, "w") as f:
        f.write("\n".join(parts))


def lua_script(path, token, catalog, think_ms=0, template="checkout.lua"):
    quoted = lambda xs: ",".join(f'"{x}"' for x in xs)
    lines = [f'token = "{token}"', f'run = "{uuid.uuid4().hex[:8]}"', "shops = {"]
    for shop, c in catalog.items():
        lines.append(f'  {{id = "{shop}", products = {{{quoted(c["products"])}}}, customers = {{{quoted(c["customers"])}}}}},')
    lines.append("}")
    wrk_script(path, template, "\n".join(lines) + "\n", think_ms)


def reservations(shops):
    ids = ",".join(f"'{s}'" for s in shops)
    return int(psql(f"select count(*) from stock.reservations where shop_id in ({ids})")[0][0])


def orders(shops):
    ids = ",".join(f"'{s}'" for s in shops)
    return int(psql(f"select count(*) from sales.orders where shop_id in ({ids})")[0][0])


def drained(shops, within=60):
    """Waits until no checkout is booking any more (the count of orders holds still for a second)."""
    last, start = orders(shops), time.monotonic()
    while time.monotonic() - start < within:
        time.sleep(1)
        now = orders(shops)
        if now == last:
            return
        last = now


def wrk(connections, seconds, script):
    threads = 1 if connections == 1 else 2
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", script,
         BASE + "/order/orders"],
        check=True, capture_output=True, text=True,
    ).stdout
    line = next(l for l in out.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def statements():
    """Calls per service role since the last reset, and the busiest statements."""
    roles = ",".join(f"'{r}'" for r in ROLES)
    per_role = {r: int(n) for r, n in psql(
        f"select r.rolname, sum(s.calls) from pg_stat_statements s join pg_roles r on r.oid = s.userid "
        f"where r.rolname in ({roles}) group by 1")}
    top = psql(
        f"select r.rolname, s.calls, regexp_replace(left(s.query, 110), '\\s+', ' ', 'g') "
        f"from pg_stat_statements s join pg_roles r on r.oid = s.userid "
        f"where r.rolname in ({roles}) order by s.calls desc limit 40")
    return per_role, top


def pgbench(connections, seconds):
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", DB, "-qX", "-v", "ON_ERROR_STOP=1",
                    "-f", os.path.join(HERE, "ceiling-setup.sql")], check=True, capture_output=True)
    out = subprocess.run(
        ["pgbench", "-h", "127.0.0.1", "-U", "postgres", "-n", "-M", "prepared", f"-c{connections}",
         f"-j{min(connections, 2)}", f"-T{seconds}", "-D", f"products={PRODUCTS * SHOPS}", "-D", f"shops={SHOPS}", "-f",
         os.path.join(HERE, "ceiling.sql"), DB],
        capture_output=True, text=True,
    )
    if out.returncode != 0:
        sys.exit(f"pgbench failed: {out.stderr[-2000:]}")
    out = out.stdout
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    lat = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))
    return tps, lat


def main():
    if psql("show autovacuum")[0][0] != "on":
        print("note: autovacuum is off in this PostgreSQL; the benchmark runs vacuum analyze before each cell",
              file=sys.stderr)
    if not psql("select 1 from pg_extension where extname = 'pg_stat_statements'"):
        psql("create extension pg_stat_statements")
    print(f"seeding: {SHOPS} shops, each with {PRODUCTS} products and {CUSTOMERS} customers with wallets",
          file=sys.stderr)
    email = sign_up()
    catalog = seed(email)
    shop = list(catalog)
    rows = []
    details = {}
    with tempfile.TemporaryDirectory() as tmp:
        for c, think in CELLS:
            script = os.path.join(tmp, f"checkout{c}-{think}.lua")
            lua_script(script, log_in(email), catalog, think)
            print(f"{c} connections: {WARMUP} s warm-up, {SECONDS} s measured", file=sys.stderr)
            # What autovacuum does in any real deployment (it is off on some development
            # machines, and the seeding and each cell add tens of thousands of rows at once):
            # without fresh statistics stock's reads plan seq scans and commits take 3x as long.
            psql("vacuum analyze")
            wrk(c, WARMUP, script)
            # The warm-up's checkouts in flight run to their end (a hung-up till's sale still
            # books): counted before the cell, not in it. A checkpoint now, so no cell and no
            # ceiling pays for one the cell before it set off (PostgreSQL's own checkpoints
            # come every few minutes, and the pages first written after one cost a full image
            # in the WAL).
            drained(shop)
            psql("checkpoint")
            psql("select pg_stat_statements_reset()")
            before, kms_before = orders(shop), kms_calls()
            r = wrk(c, SECONDS, script)
            # The cell's checkouts in flight at its end were sent in it: they count. Then the
            # order events' consumers and relays finish their share.
            drained(shop)
            time.sleep(1)
            per_role, top = statements()
            booked = orders(shop) - before
            kms = kms_calls() - kms_before
            r.update(connections=c, think=think, booked=booked, statements=per_role, kms=kms)
            rows.append(r)
            details[(c, think)] = top
            # Paced cells offer less than the stack can do: a ceiling beside them means nothing.
            psql("checkpoint")
            tps, lat = pgbench(min(c, 64), min(SECONDS, 20)) if not think else (None, None)
            r.update(pgbench_tps=tps, pgbench_latency_ms=lat)
        held = []
        for c in RESERVE:
            script = os.path.join(tmp, f"reserve{c}.lua")
            lua_script(script, log_in(email), catalog, 0, "reserve.lua")
            print(f"reservations, {c} connections: {WARMUP} s warm-up, {SECONDS} s measured", file=sys.stderr)
            psql("vacuum analyze")
            wrk(c, WARMUP, script)
            before = reservations(shop)
            r = wrk(c, SECONDS, script)
            r.update(connections=c, granted=reservations(shop) - before)
            held.append(r)
    print("\n| connections | orders/s | p50 | p99 | p99.9 | errors | SQL statements per order (auth/stock/order/mailer) | KMS calls per order | pgbench same writes, 1 tx | ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        n = max(r["booked"], 1)
        per = {k: r["statements"].get(k, 0) / n for k in ROLES}
        total = sum(per.values())
        split = "/".join(f"{per[k]:.1f}" for k in ROLES)
        rate = r["booked"] / r["seconds"]
        label = f"{r['connections']:,}" + (f" (think {r['think'] / 1000:g} s)" if r["think"] else "")
        ceiling = (f"{r['pgbench_tps']:,.0f} tx/s | {rate / r['pgbench_tps']:.0%}" if r["pgbench_tps"]
                   else "paced, no ceiling | –")
        print(f"| {label} | {rate:,.0f} | {r['p50'] / 1000:.1f} ms | {r['p99'] / 1000:.1f} ms "
              f"| {r['p999'] / 1000:.1f} ms | {r['errors']} | {total:.1f} ({split}) | {r['kms'] / n:.3f} "
              f"| {ceiling} |")
    for (c, think), top in details.items():
        n = max(next(r["booked"] for r in rows if (r["connections"], r["think"]) == (c, think)), 1)
        print(f"\nstatements per order at {c} connections, think {think} ms (busiest first):")
        for role, calls, q in top:
            per = int(calls) / n
            if per >= 0.05:
                print(f"  {per:6.2f}  {role:15} {q}")
    if held:
        print("\n| reservations: connections | reserved/s (3 lines each) | p50 | p99 | p99.9 | errors |")
        print("| --- | --- | --- | --- | --- | --- |")
        for r in held:
            print(f"| {r['connections']:,} | {r['granted'] / r['seconds']:,.0f} | {r['p50'] / 1000:.1f} ms "
                  f"| {r['p99'] / 1000:.1f} ms | {r['p999'] / 1000:.1f} ms | {r['errors']} |")


if __name__ == "__main__":
    main()
