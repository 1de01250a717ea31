#!/usr/bin/env bash
# `make up`: the whole stack on this machine, reachable at http://127.0.0.1:8000.
# Installs what is missing, starts PostgreSQL/RabbitMQ if needed, migrates, builds the
# release binaries, starts the stand-ins, the four services and nginx in the background,
# and returns once every /ready answers through nginx. Running it twice is harmless: what
# runs keeps running, and a service whose binary was rebuilt is restarted.
# `INSTANCES=2 make up` runs two processes of each service (see instances_of in lib.sh)
# behind nginx's upstreams.
set -euo pipefail
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
mkdir -p "$RUN" "$LOGS"

bash "$ROOT/stack/deps.sh"
load_config

say "local cloud stand-ins (moto, SMTP sink, OpenID provider)"
bash "$ROOT/stack/standins.sh" start

say "building release binaries (the first build takes about 7 minutes)"
cargo build --release --locked --bins 2>&1 | tail -n 3
BIN="$ROOT/target/release"

say "migrating database"
"$BIN/cashvio-admin" migrate

for s in "${SERVICES[@]}"; do
  n="$(instances_of "$s")"
  export "${s^^}_INSTANCES=$n" # for render-nginx below
  for ((k = 0; k < n; k++)); do
    pidfile="$(instance_pidfile "$s" "$k")"
    if pid_alive "$pidfile" && [[ "$BIN/cashvio-$s" -nt "$pidfile" ]]; then
      say "$(instance_name "$s" "$k") was rebuilt; restarting it"
      stop_pidfile "$pidfile" "$(instance_name "$s" "$k")"
    fi
    bash "$ROOT/stack/service.sh" start "$s" "$k"
  done
  # Instances past the count (an earlier `make up` asked for more) stop.
  for pidfile in "$RUN/$s"-*.pid; do
    [[ -e "$pidfile" ]] || continue
    k="${pidfile##*-}" k="${k%.pid}"
    if ((k >= n)); then stop_pidfile "$pidfile" "$s-$k"; fi
  done
done

say "nginx"
mkdir -p "$NGINX_RUNTIME_DIR"
"$BIN/cashvio-admin" render-nginx --out "$NGINX_RUNTIME_DIR/nginx.conf" >/dev/null
nginx -t -q -p "$NGINX_RUNTIME_DIR" -c "$NGINX_RUNTIME_DIR/nginx.conf"
if pid_alive "$NGINX_RUNTIME_DIR/nginx.pid"; then
  nginx -p "$NGINX_RUNTIME_DIR" -c "$NGINX_RUNTIME_DIR/nginx.conf" -s reload
else
  nginx -p "$NGINX_RUNTIME_DIR" -c "$NGINX_RUNTIME_DIR/nginx.conf"
fi

say "waiting for every service to be ready through nginx"
base="http://127.0.0.1:${NGINX_PORT}"
deadline=$((SECONDS + 90))
for s in "${SERVICES[@]}"; do
  until curl -fs -o /dev/null "$base/$s/ready" 2>/dev/null; do
    if ((SECONDS > deadline)); then
      say "$s is not ready; last log lines:"
      tail -n 20 "$LOGS/$s.log" >&2 || true
      exit 1
    fi
    sleep 0.5
  done
done

cat <<MSG

  Cashvio is up:            $base
    auth    $base/auth/      (health, ready, openapi.json; metrics on the service's own port)
    stock   $base/stock/
    order   $base/order/
    mailer  $base/mailer/
  Services direct:          auth :$AUTH_PORT  stock :$STOCK_PORT  order :$ORDER_PORT  mailer :$MAILER_PORT
  Stand-ins:                S3/KMS http://127.0.0.1:5000  SMTP 127.0.0.1:1025 (mail: http://127.0.0.1:8025/api/messages)
                            OpenID http://127.0.0.1:9090
  Logs:                     make logs   (files in .stack/logs/)
  Stop:                     make down

MSG
