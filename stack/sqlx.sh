#!/usr/bin/env bash
# Compile-checked SQL (`sqlx::query!`): the offline data in .sqlx/ is what every build uses
# (.cargo/config.toml sets SQLX_OFFLINE=true), so builds need no database.
#
#   stack/sqlx.sh prepare   after adding or changing a query: rewrites .sqlx/ from the
#                           migrated check database; commit the result
#   stack/sqlx.sh check     CI: fails when .sqlx/ does not match the queries and migrations
#
# Both first (re)create the check database `cashvio_sqlx` from migrations/. Its connection's
# search_path is `bus_template`, a schema holding only copies of the tables every service
# schema has (outbox, inbox, the access projection, idempotency keys): the shared crates name those
# unqualified (they run in each service's own schema), and any other unqualified table
# fails to compile, so service queries name their schema.
set -euo pipefail
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

SQLX_CLI_VERSION=0.8.6   # the sqlx version in Cargo.lock
DB=cashvio_sqlx
SERVER="postgres://postgres@127.0.0.1:5432"
export DATABASE_URL="$SERVER/$DB?options=-c%20search_path%3Dbus_template"

if ! cargo sqlx --version 2>/dev/null | grep -q "$SQLX_CLI_VERSION"; then
  say "installing sqlx-cli $SQLX_CLI_VERSION"
  cargo install sqlx-cli --version "$SQLX_CLI_VERSION" --locked --no-default-features --features postgres,rustls
fi

psql -h 127.0.0.1 -U postgres -d postgres -qc "drop database if exists $DB with (force)" >/dev/null
psql -h 127.0.0.1 -U postgres -d postgres -qc "create database $DB" >/dev/null
cargo sqlx migrate run --source migrations --database-url "$SERVER/$DB" >/dev/null
psql -h 127.0.0.1 -U postgres -d "$DB" -q <<'SQL' >/dev/null
create schema bus_template;
create table bus_template.outbox (like sales.outbox including all);
create table bus_template.inbox (like sales.inbox including all);
create table bus_template.access_members (like sales.access_members including all);
create table bus_template.access_users (like sales.access_users including all);
create table bus_template.access_revoked_sessions (like sales.access_revoked_sessions including all);
create table bus_template.idempotency_keys (like sales.idempotency_keys including all);
SQL

case "${1:-}" in
  prepare) cargo sqlx prepare --workspace -- --all-targets --locked ;;
  check) cargo sqlx prepare --workspace --check -- --all-targets --locked ;;
  *) echo "usage: stack/sqlx.sh prepare|check" >&2; exit 2 ;;
esac
