#!/usr/bin/env bash
# `make down`: stops what `make up` started (by its pid files) and nothing else.
# PostgreSQL and RabbitMQ are machine services and keep running.
set -euo pipefail
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
load_config

if pid_alive "$NGINX_RUNTIME_DIR/nginx.pid"; then
  say "stopping nginx"
  nginx -p "$NGINX_RUNTIME_DIR" -c "$NGINX_RUNTIME_DIR/nginx.conf" -s quit || true
  for _ in $(seq 1 100); do pid_alive "$NGINX_RUNTIME_DIR/nginx.pid" || break; sleep 0.1; done
fi
for s in "${SERVICES[@]}"; do
  for pidfile in "$RUN/$s.pid" "$RUN/$s"-*.pid; do
    [[ -e "$pidfile" ]] || continue
    name="${pidfile##*/}"
    stop_pidfile "$pidfile" "${name%.pid}"
  done
done
bash "$ROOT/stack/standins.sh" stop
say "stack stopped"
