#!/usr/bin/env bash
# The cashflow benchmark (issue 12): the comprehensive report's and the X report's latency and
# a shift close's duration at 10k, 100k and 1M ledger rows in the shop, through nginx.
#   bash stack/bench-cashflow.sh          (BENCH_SIZES="10000 100000 1000000", BENCH_REPEAT=50)
# Runs `make up` and leaves the stack running; writes about 2.2M ledger rows into the local
# database (two shops of a new owner). Prints a Markdown table for BENCHMARKS.md.
set -euo pipefail
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
bash "$ROOT/stack/deps.sh"
make up
exec python3 "$ROOT/stack/bench/cashflow.py"
