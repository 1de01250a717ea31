#!/usr/bin/env bash
# Makes sure what the stack and the tests need is installed and running, on a fresh Debian
# machine too: PostgreSQL, RabbitMQ, nginx (apt-get), the Rust toolchain's presence, and
# that PostgreSQL accepts the local trust logins the stack uses. Safe to run repeatedly.
set -euo pipefail
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

apt_updated=0
apt_install() {
  if [[ $apt_updated -eq 0 ]]; then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  say "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
command -v curl >/dev/null || missing+=(curl ca-certificates)
command -v pg_ctlcluster >/dev/null || missing+=(postgresql postgresql-client)
command -v rabbitmq-server >/dev/null || missing+=(rabbitmq-server)
[[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
command -v gcc >/dev/null || missing+=(build-essential pkg-config)
if [[ ${#missing[@]} -gt 0 ]]; then
  [[ $(id -u) -eq 0 ]] || die "missing packages (${missing[*]}); run as root or install them"
  apt_install "${missing[@]}"
fi
command -v cargo >/dev/null || die "cargo not found: install the Rust toolchain (rustup) first"

# PostgreSQL: running and reachable over TCP as postgres without a password.
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  say "starting PostgreSQL"
  for v in $(ls /etc/postgresql 2>/dev/null); do
    pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
  done
  for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
  pg_isready -q -h 127.0.0.1 -p 5432 || die "PostgreSQL did not start"
fi
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
  # A fresh Debian cluster asks for passwords over TCP. Trust loopback for this dev stack
  # only (the compose/production setup uses passwords).
  hba="$(su postgres -c "psql -Atc 'show hba_file'" 2>/dev/null || true)"
  [[ -n "$hba" && -f "$hba" ]] || die "cannot log in to PostgreSQL as postgres on 127.0.0.1 and cannot find pg_hba.conf"
  say "allowing trust logins from 127.0.0.1 in $hba (local development only)"
  sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  su postgres -c "psql -Atc 'select pg_reload_conf()'" >/dev/null
  sleep 1
  psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null || die "PostgreSQL still refuses postgres@127.0.0.1"
fi

# RabbitMQ: running with the guest user on localhost.
if ! port_open 5672; then
  say "starting RabbitMQ"
  rabbitmq-server -detached >/dev/null 2>&1 || true
  for _ in $(seq 1 120); do port_open 5672 && break; sleep 0.5; done
  port_open 5672 || die "RabbitMQ did not start"
fi
