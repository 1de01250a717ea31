#!/usr/bin/env bash
# The stack end to end: `make up` returns 0, every service answers /health and /ready
# through nginx, and `make down` leaves nothing of the stack listening. When the stack was
# already up before (a developer's), it is only checked, not stopped.
set -euo pipefail
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
# Every test below signs up and in from 127.0.0.1, as the first system's clients do from
# their one Next server (README): auth's per-IP limits are counted in PostgreSQL, shared by
# every instance and kept across restarts, so a whole test run is one IP's budget. Raised
# for the stack this script starts, before the config files are read (the caller's own
# environment still wins; the per-e-mail limits stay as configured).
export OTP_LIMIT_PER_IP="${OTP_LIMIT_PER_IP:-2000}" LOGIN_LIMIT_PER_IP="${LOGIN_LIMIT_PER_IP:-2000}"
load_config

was_up=0
# Schemathesis's findings: each service's FAILURES and ERRORS sections (an error is the
# tool failing on an operation), or the end of its log when it stopped before finding
# anything (a sign-up that failed, say).
fuzz_findings() {
  if grep -qE '= (FAILURES|ERRORS) =' "$LOGS/fuzz-api.log"; then
    sed 's/\x1b\[[0-9;]*m//g' "$LOGS/fuzz-api.log" |
      awk '/schemathesis: /{svc=$0} /= (FAILURES|ERRORS) =/{print svc; p=1} /= SUMMARY =/{p=0} p' |
      grep -v '^[[:space:]]*$' | cut -c1-300 | head -n "${1:-60}"
  else
    tail -n "${1:-25}" "$LOGS/fuzz-api.log" | cut -c1-300
  fi
}
fuzz_failed=0
pid_alive "$RUN/auth.pid" && was_up=1

bash "$ROOT/stack/up.sh"
failed=0
for s in "${SERVICES[@]}"; do
  for p in health ready; do
    if curl -fsS -o /dev/null "http://127.0.0.1:$NGINX_PORT/$s/$p"; then
      echo "ok: /$s/$p"
    else
      echo "FAILED: /$s/$p"; failed=1
    fi
  done
done
# Metrics are not public: Prometheus scrapes the services directly.
for s in "${SERVICES[@]}"; do
  got="$(curl -sS -o /dev/null -w '%{http_code} %{content_type}' "http://127.0.0.1:$NGINX_PORT/$s/metrics")"
  if [[ "$got" == "404 application/problem+json" ]]; then echo "ok: /$s/metrics not public"; else echo "FAILED: /$s/metrics answered $got"; failed=1; fi
done
# nginx's own errors are problem+json too: an unknown prefix, a URL or headers too large.
long="$(python3 -c 'print("a" * 20000)')"
for case in "404|/nosuchservice/x|" "414|/stock/$long|" "400|/stock/health|X-Big: $long$long"; do
  IFS='|' read -r want path header <<<"$case"
  args=(-sS -o /dev/null -w '%{http_code} %{content_type}')
  [[ -n "$header" ]] && args+=(-H "$header")
  got="$(curl "${args[@]}" "http://127.0.0.1:$NGINX_PORT$path")"
  if [[ "$got" == "$want application/problem+json" ]]; then echo "ok: nginx $want is problem+json"; else echo "FAILED: nginx answered $got, expected $want problem+json"; failed=1; fi
done
# The README walkthrough, end to end through nginx.
if bash "$ROOT/stack/walkthrough.sh"; then echo "ok: walkthrough"; else echo "FAILED: walkthrough"; failed=1; fi
# The first Cashvio's front ends' calls (CLIENTS.md), replayed through nginx by tests/clients;
# the admin app's calls need a super admin.
export CLIENTS_ADMIN_EMAIL="clients-admin@example.com" CLIENTS_ADMIN_PASSWORD="clients admin password"
SUPER_ADMIN_PASSWORD="$CLIENTS_ADMIN_PASSWORD" "$ROOT/target/release/cashvio-admin" create-super-admin \
  --email "$CLIENTS_ADMIN_EMAIL" --name "Clients Admin" >/dev/null
if CASHVIO_URL="http://127.0.0.1:$NGINX_PORT" cargo test --locked -q -p clients -- --ignored; then
  echo "ok: the first front ends' calls"
else
  echo "FAILED: the first front ends' calls (tests/clients)"; failed=1
fi
# A shop's day end to end (tests/e2e): the scenario, then the faults, one at a time (they stop
# and restart parts of this stack).
if CASHVIO_URL="http://127.0.0.1:$NGINX_PORT" cargo test --locked -q -p e2e -- --ignored --test-threads=1 --skip two_of_everything; then
  echo "ok: a shop's day end to end"
else
  echo "FAILED: a shop's day end to end (tests/e2e)"; failed=1
fi
# Hostile input: schemathesis against every service's OpenAPI document through nginx (about
# 2,500-6,000 generated cases per service at 20 examples per operation; no 5xx, no answer
# outside its own schema or status codes).
if bash "$ROOT/stack/fuzz-api.sh" "${FUZZ_EXAMPLES:-20}" >"$LOGS/fuzz-api.log" 2>&1; then
  echo "ok: schemathesis found nothing (cases per service: $(grep -Eo '[0-9]+ generated' "$LOGS/fuzz-api.log" | cut -d' ' -f1 | paste -sd/ -); log .stack/logs/fuzz-api.log)"
else
  # What the services said meanwhile (a 5xx is logged where it happened), then each
  # service's findings (schemathesis prints them between FAILURES and SUMMARY), or the end of
  # the log when it stopped before finding anything (a sign-up that failed, say): findings
  # last, as CI shows only the end of this output.
  grep -h '"level":"\(ERROR\|WARN\)"' "$LOGS"/{auth,stock,order,mailer}*.log 2>/dev/null | grep -v 'send failed; will retry' |
    tail -n 12 | cut -c1-300
  echo "--- schemathesis findings ---"
  fuzz_findings
  echo "FAILED: schemathesis (.stack/logs/fuzz-api.log)"; failed=1; fuzz_failed=1
fi

# A service that is down answers a problem+json 502 through nginx; `make up` again is
# harmless and brings it back.
stop_pidfile "$RUN/order.pid" order
body="$(curl -sS -w ' %{http_code} %{content_type}' "http://127.0.0.1:$NGINX_PORT/order/health")"
if [[ "$body" == *'"code":"SERVICE_UNAVAILABLE"'*' 502 application/problem+json' ]]; then
  echo "ok: stopped service answers a problem+json 502"
else
  echo "FAILED: stopped service answered: $body"; failed=1
fi
# Run again with two instances each (a stack this script started), it restarts order and
# adds a second of every service.
instances="${INSTANCES:-1}"
[[ $was_up -eq 0 ]] && instances=2
INSTANCES=$instances bash "$ROOT/stack/up.sh" >/dev/null 2>&1 || { echo "FAILED: second make up (INSTANCES=$instances)"; failed=1; }
curl -fsS -o /dev/null "http://127.0.0.1:$NGINX_PORT/order/ready" && echo "ok: make up again restarted order" \
  || { echo "FAILED: order not back after make up"; failed=1; }
# Two of everything: the oversell and wallet bursts through both instances, the stock
# instance owning the shop's shard SIGKILLed in the middle (tests/e2e/tests/instances.rs).
# Not on a developer's running stack (it kills one of its processes).
if [[ $was_up -eq 1 ]]; then
  echo "ok: two instances each skipped (the stack was already up)"
elif CASHVIO_URL="http://127.0.0.1:$NGINX_PORT" cargo test --locked -q -p e2e --test instances -- --ignored; then
  echo "ok: two instances each, the hot shard's owner killed mid-burst: nothing oversold or overspent"
else
  echo "FAILED: two instances each (tests/e2e/tests/instances.rs)"; failed=1
fi
# The request id comes back exactly once.
rid="$(curl -sS -D - -o /dev/null "http://127.0.0.1:$NGINX_PORT/stock/health" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-request-id"{print $2}')"
[[ -n "$rid" && "$rid" != *$'\n'* ]] && echo "ok: X-Request-Id $rid" || { echo "FAILED: X-Request-Id missing or repeated: $rid"; failed=1; }

if [[ $was_up -eq 0 ]]; then
  bash "$ROOT/stack/down.sh"
  for port in "$NGINX_PORT" "$AUTH_PORT" "$STOCK_PORT" "$ORDER_PORT" "$MAILER_PORT" \
    $((AUTH_PORT + 100)) $((STOCK_PORT + 100)) $((ORDER_PORT + 100)) $((MAILER_PORT + 100)) 5000 1025 8025 9090; do
    if port_open "$port"; then echo "FAILED: port $port still listening after make down"; failed=1; fi
  done
  [[ $failed -eq 0 ]] && echo "ok: nothing of the stack listens after make down"
fi
total=$((3 * ${#SERVICES[@]} + 12))
if [[ $failed -eq 0 ]]; then echo "smoke: $total passed, 0 failed"; exit 0; fi
# CI shows only the end of this output: the schemathesis findings once more, last.
if [[ $fuzz_failed -eq 1 ]]; then echo "--- schemathesis findings (again) ---"; fuzz_findings 30; fi
echo "smoke: failed"; exit 1
