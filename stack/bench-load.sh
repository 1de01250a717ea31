#!/usr/bin/env bash
# The till-mix load test (issue 14): 1,000 connections through nginx for 60 s, 70% look-ups by
# barcode, 20% checkouts, 10% stock and report reads, with each service's idle and peak RSS.
#   bash stack/bench-load.sh       (BENCH_CONNECTIONS, BENCH_SECONDS, BENCH_SHOPS, BENCH_PRODUCTS)
# Installs wrk if missing, runs `make up`, leaves the stack running.
set -euo pipefail
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
bash "$ROOT/stack/deps.sh"
if ! command -v wrk >/dev/null; then
  [[ $(id -u) -eq 0 ]] || die "wrk is needed; run as root or apt-get install wrk"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
make up
BENCH_SHOPS="${BENCH_SHOPS:-5}" BENCH_PRODUCTS="${BENCH_PRODUCTS:-20}" BENCH_CUSTOMERS="${BENCH_CUSTOMERS:-20}" \
  exec python3 "$ROOT/stack/bench/load.py"
