#!/usr/bin/env bash
# The checkout benchmark (issue 10): complete checkouts through nginx at 1, 64 and 1,000
# connections with the SQL statements and KMS calls per order, beside a pgbench run of the
# same writes as one transaction. Prints a Markdown table for BENCHMARKS.md.
#   bash stack/bench-checkout.sh            (BENCH_SECONDS=30 per cell; see stack/bench/checkout.py)
# It installs wrk if missing, loads pg_stat_statements into the local PostgreSQL (a restart,
# once: `shared_preload_libraries`), runs `make up`, and leaves the stack running.
set -euo pipefail
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
bash "$ROOT/stack/deps.sh"

if ! command -v wrk >/dev/null || ! command -v pgbench >/dev/null; then
  [[ $(id -u) -eq 0 ]] || die "wrk and pgbench are needed; run as root or install them (apt-get install wrk postgresql-client)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk postgresql-client >/dev/null
fi

# pg_stat_statements loaded, and room for pgbench's 64 clients beside the stack's pools.
q() { psql -h 127.0.0.1 -U postgres -d postgres -Atc "$1"; }
preload="$(q 'show shared_preload_libraries')"
restart=0
if [[ "$preload" != *pg_stat_statements* ]]; then
  say "loading pg_stat_statements into PostgreSQL (shared_preload_libraries)"
  q "alter system set shared_preload_libraries = '${preload:+$preload,}pg_stat_statements'" >/dev/null
  restart=1
fi
if (($(q 'show max_connections') < 200)); then
  say "raising PostgreSQL's max_connections to 200"
  q "alter system set max_connections = 200" >/dev/null
  restart=1
fi
if ((restart)); then
  say "restarting PostgreSQL (and the stack, whose connections that drops)"
  make down
  for v in $(ls /etc/postgresql); do pg_ctlcluster --skip-systemctl-redirect "$v" main restart; done
  for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
fi

# 1,000 connections from wrk plus nginx's own: raise the open-file limit for this shell's
# children (nginx is started by make up below only if it is not running already).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
make up
exec python3 "$ROOT/stack/bench/checkout.py"
