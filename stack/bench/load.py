#!/usr/bin/env python3
"""A till mix through nginx at 1,000 connections for 60 s: product look-ups by barcode
(`GET /stock/products?search=<barcode>`), complete checkouts (three lines, wallet and cash,
see checkout.py) and stock and report reads (`/stock/levels`, `/order/shop-balance`), as three
wrk processes at once with 70% / 20% / 10% of the connections. Prints, per kind, requests/s,
p50/p99/p999 and errors, and each service process's RSS before the run (idle on a freshly
started stack) and its peak (VmHWM) after. BENCH_THINK_MS: one pass per think time. Run through `bash stack/bench-load.sh`.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkout as c  # noqa: E402  (the same stack helpers: sign-up, seeding, the checkout script)

CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "1000"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "60"))
# One pass per think time (ms, mean per connection; 0 = back to back), each its own table.
THINK_MS = [int(t) for t in os.environ.get("BENCH_THINK_MS", "0 3000").split()]
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVICES = ("auth", "stock", "order", "mailer")


def rss(service):
    """(RSS now, peak RSS) in MiB of a service process, from /proc."""
    pid = open(os.path.join(ROOT, ".stack", "run", f"{service}.pid")).read().strip()
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        fields[k] = v.strip()
    kib = lambda k: int(fields[k].split()[0])
    return kib("VmRSS") / 1024, kib("VmHWM") / 1024


def get_script(path, token, paths, think_ms):
    quoted = "".join(f'  "{p}",\n' for p in paths)
    c.wrk_script(path, "till_get.lua", f'token = "{token}"\npaths = {{\n{quoted}}}\n', think_ms)


def start_wrk(connections, seconds, script, url):
    threads = 2 if connections >= 100 else 1
    return subprocess.Popen(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", script, url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def result(proc):
    out, err = proc.communicate()
    line = next((l for l in out.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        sys.exit(f"wrk failed: {out}\n{err}")
    return json.loads(line[len("RESULT "):])


def main():
    idle = {s: rss(s)[0] for s in SERVICES}
    email = c.sign_up()
    catalog = c.seed(email)
    token = c.log_in(email)
    # Barcodes for the look-ups: give each product one.
    lookups, reads = [], []
    for shop, cat in catalog.items():
        for i, p in enumerate(cat["products"]):
            code = f"B{uuid.uuid4().hex[:10]}"
            c.call("PUT", f"/stock/products/{p}", {"barcode": code}, token)
            lookups.append(f"/stock/products?shopId={shop}&search={code}")
        reads.append(f"/stock/levels?shopId={shop}&limit=20")
        reads.append(f"/order/shop-balance/{shop}")
    split = {"look-ups": int(CONNECTIONS * 0.7), "checkouts": int(CONNECTIONS * 0.2)}
    split["reads"] = CONNECTIONS - split["look-ups"] - split["checkouts"]
    tmp = tempfile.mkdtemp()
    for think in THINK_MS:
        checkout_lua, lookup_lua, read_lua = (os.path.join(tmp, f"{n}-{think}.lua") for n in ("checkout", "lookup", "read"))
        c.lua_script(checkout_lua, token, catalog, think)
        get_script(lookup_lua, token, lookups, think)
        get_script(read_lua, token, reads, think)
        plan = [("look-ups", lookup_lua, c.BASE + "/stock/products"),
                ("checkouts", checkout_lua, c.BASE + "/order/orders"),
                ("reads", read_lua, c.BASE + "/stock/levels")]
        # Warm-up, then the measured run, all three kinds at once.
        for seconds, measured in ((5, False), (SECONDS, True)):
            procs = [(kind, start_wrk(split[kind], seconds, script, url)) for kind, script, url in plan]
            results = [(kind, result(p)) for kind, p in procs]
        pace = f"think time {think / 1000:g} s (exponential) per connection" if think else "back to back (closed loop)"
        print(f"\ntill mix through nginx, {CONNECTIONS} connections "
              f"({split['look-ups']}/{split['checkouts']}/{split['reads']}), {pace}, {SECONDS} s\n")
        print("| kind | connections | requests/s | p50 | p99 | p99.9 | errors |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for kind, r in results:
            ms = lambda us: f"{us / 1000:.1f} ms"
            print(f"| {kind} | {split[kind]} | {r['requests'] / r['seconds']:,.0f} | {ms(r['p50'])} | {ms(r['p99'])} "
                  f"| {ms(r['p999'])} | {r['errors']} |")
    peak = {s: rss(s)[1] for s in SERVICES}
    # "Before": idle only when the stack was freshly started (`make down && make up`).
    print("\n| service | RSS before the run | peak RSS |")
    print("| --- | --- | --- |")
    for s in SERVICES:
        print(f"| {s} | {idle[s]:.1f} MiB | {peak[s]:.1f} MiB |")


if __name__ == "__main__":
    main()
