#!/usr/bin/env python3
"""The cashflow reports at 10k, 100k and 1M ledger rows in one shop (another shop holding as
many), through nginx: the comprehensive report's and the X report's latency (p50 and p99 of
REPEAT sequential requests) and the duration of a shift's close.

Run through `bash stack/bench-cashflow.sh` (it starts the stack). For each size it opens a
shift on the shop's register, then writes ledger rows straight into PostgreSQL (as the
bookings would, through the ledger's triggers, so the daily and shift totals are kept the
same way) until the shop holds that many, all on the register's open shift and spread over
the last 365 days; it vacuums, measures, and closes the shift (timed). The other shop gets
as many rows. Prints a Markdown table for BENCHMARKS.md.
"""

import os
import statistics
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checkout import call, log_in, psql, sign_up  # noqa: E402

SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "10000 100000 1000000").split()]
REPEAT = int(os.environ.get("BENCH_REPEAT", "50"))


def timed(method, path, body=None, token=None):
    start = time.perf_counter()
    answer = call(method, path, body, token)
    return (time.perf_counter() - start) * 1000, answer


def percentiles(samples):
    s = sorted(samples)
    return statistics.median(s), s[min(len(s) - 1, int(len(s) * 0.99))]


def fill(shop, register, rows):
    """Ledger rows for `shop` until it holds `rows`, on `register` (None: no register)."""
    have = int(psql(f"select count(*) from sales.ledger where shop_id = '{shop}'")[0][0])
    if have >= rows:
        return
    reg = f"'{register}'::uuid" if register else "null::uuid"
    # Sales in cash, card and bank with some change and expenses, like a shop's days.
    psql(f"""
        insert into sales.ledger (entry_id, shop_id, method, direction, amount_minor, currency, source, register_id,
                                  description, created_at)
        select gen_random_uuid(), '{shop}', (array['CASH','CARD','BANK'])[1 + i % 3],
               case when i % 10 = 9 then 'OUT' else 'IN' end, 100 + (i * 7919) % 50000, 'LKR',
               case when i % 10 = 9 then 'CHANGE' else 'SALE' end, {reg}, 'Order #ORD-' || i,
               now() - make_interval(secs => (i * 104729) % (365 * 86400))
          from generate_series({have + 1}::bigint, {rows}) i""")


def main():
    email = sign_up()
    token = log_in(email)
    shop = call("GET", "/auth/shops", token=token)[0]["id"]
    call("POST", "/auth/shops", {"businessName": "Other shop", "address": "Galle"}, token)
    token = log_in(email)
    other = [s["id"] for s in call("GET", "/auth/shops", token=token) if s["id"] != shop][0]
    register = str(uuid.uuid4())
    print("| ledger rows in the shop | rows in the shift | comprehensive p50 / p99 | X report p50 / p99 | shift close |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for size in SIZES:
        call("POST", f"/order/registers/{register}/open", {"float": 1000, "shopId": shop}, token)
        fill(shop, register, size)
        fill(other, None, size)
        psql("vacuum analyze sales.ledger")
        psql("vacuum analyze sales.ledger_days")
        psql("vacuum analyze sales.shift_totals")
        in_shift = psql(f"select count(*) from sales.ledger l join sales.shifts s using (shift_id) "
                        f"where s.register_id = '{register}' and s.status = 'OPEN'")[0][0]
        for _ in range(3):  # warm
            call("GET", f"/order/cash-flow/comprehensive/{shop}", token=token)
            call("GET", f"/order/registers/{register}/current", token=token)
        report = [timed("GET", f"/order/cash-flow/comprehensive/{shop}", token=token)[0] for _ in range(REPEAT)]
        x = [timed("GET", f"/order/registers/{register}/current", token=token)[0] for _ in range(REPEAT)]
        _, current = timed("GET", f"/order/registers/{register}/current", token=token)
        close_ms, _ = timed("POST", f"/order/registers/{register}/close", {"counted": current["expectedCash"]}, token)
        r50, r99 = percentiles(report)
        x50, x99 = percentiles(x)
        print(f"| {size:,} | {int(in_shift):,} | {r50:.1f} / {r99:.1f} ms | {x50:.1f} / {x99:.1f} ms | {close_ms:.1f} ms |",
              flush=True)


if __name__ == "__main__":
    main()
