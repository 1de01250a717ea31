#!/usr/bin/env python3
"""CPU per checkout by process, while a checkout benchmark runs: every WINDOW seconds (5),
the `utime + stime` each group of processes spent (/proc/<pid>/stat) divided by the orders
booked in that window (`sales.orders`), and PostgreSQL's commits per order. Windows with
fewer than 200 orders (warm-ups, pgbench, seeding) are not printed. Runs until stopped:

    python3 stack/bench/cpu.py > cpu.log &   # then stack/bench-checkout.sh; kill it after

BENCHMARKS.md's CPU tables are the steady windows of its output.
"""

import os
import subprocess
import time

WINDOW = float(os.environ.get("WINDOW", "5"))
DB = os.environ.get("BENCH_DATABASE", "cashvio")
# (command name prefix, group); the kernel keeps 15 characters of a command's name.
GROUPS = [("postgres", "postgres"), ("beam.smp", "rabbitmq"), ("cashvio-order", "order"),
          ("cashvio-stock", "stock"), ("cashvio-auth", "auth"), ("cashvio-mailer", "mailer"),
          ("nginx", "nginx"), ("wrk", "wrk")]
TICK = os.sysconf("SC_CLK_TCK")


def cpu_ticks():
    out = {g: 0 for _, g in GROUPS}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        for prefix, group in GROUPS:
            if name.startswith(prefix[:15]):
                out[group] += int(fields[11]) + int(fields[12])
    return out


def scalar(sql):
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", DB, "-Atc", sql],
                         capture_output=True, text=True).stdout.strip()
    return int(out or 0)


def main():
    commits = f"select xact_commit from pg_stat_database where datname = '{DB}'"
    c0, o0, x0 = cpu_ticks(), scalar("select count(*) from sales.orders"), scalar(commits)
    while True:
        time.sleep(WINDOW)
        c1, o1, x1 = cpu_ticks(), scalar("select count(*) from sales.orders"), scalar(commits)
        n = o1 - o0
        if n >= 200:
            ms = {g: (c1[g] - c0[g]) * 1000 / TICK / n for _, g in GROUPS}
            total = sum(v for g, v in ms.items() if g != "wrk")
            parts = " ".join(f"{g}={v:.2f}" for g, v in ms.items())
            print(f"{n / WINDOW:.0f} orders/s, ms per order: all={total:.2f} {parts}, "
                  f"commits per order={(x1 - x0) / n:.1f}", flush=True)
        c0, o0, x0 = c1, o1, x1


if __name__ == "__main__":
    main()
