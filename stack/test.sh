#!/usr/bin/env bash
# `make test`: the whole test suite against the real PostgreSQL and RabbitMQ (and the local
# stand-ins), then a smoke test of the stack through nginx.
set -euo pipefail
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

bash "$ROOT/stack/deps.sh"
# Stop on every exit (a failed test included) the stand-ins this run started, and only those:
# a developer's `make up` keeps its own.
started=()
for name in moto smtp oidc; do
  if bash "$ROOT/stack/standins.sh" status "$name" | grep -q ' down '; then started+=("$name"); fi
done
stop_started() {
  if ((${#started[@]})); then bash "$ROOT/stack/standins.sh" stop "${started[@]}" >/dev/null 2>&1 || true; fi
}
trap stop_started EXIT
bash "$ROOT/stack/standins.sh" start
bash "$ROOT/stack/test-broker.sh"

# Databases left by interrupted earlier runs.
for db in $(psql -h 127.0.0.1 -U postgres -d postgres -Atc "select datname from pg_database where datname like 'cashvio_test_%'"); do
  psql -h 127.0.0.1 -U postgres -d postgres -qc "drop database if exists \"$db\" with (force)" >/dev/null || true
done

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

bash "$ROOT/stack/smoke.sh"
