#!/usr/bin/env bash
# One service instance of the running stack (`make up`), without building:
#
#   stack/service.sh start NAME [K]   start instance K (default 0) if it is not running;
#                                     wait until it is ready
#   stack/service.sh kill NAME [K]    SIGKILL it (a crash, for the fault tests)
#
# NAME is auth, stock, order or mailer. Instance K listens on the service's port + 100*K
# (see instance_port in lib.sh). up.sh starts every instance through here.
set -euo pipefail
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
load_config
mkdir -p "$RUN" "$LOGS"
cmd="${1:-}" s="${2:-}" k="${3:-0}"
[[ " ${SERVICES[*]} " == *" $s "* && "$k" =~ ^[0-9]+$ ]] || die "usage: stack/service.sh start|kill auth|stock|order|mailer [instance]"
pidfile="$(instance_pidfile "$s" "$k")"
name="$(instance_name "$s" "$k")"
port="$(instance_port "$s" "$k")"
BIN="$ROOT/target/release"

case "$cmd" in
  start)
    if pid_alive "$pidfile"; then
      say "$name already running (pid $(cat "$pidfile"))"
    else
      port_var="${s^^}_PORT"
      env "$port_var=$port" LOG_FORMAT="${LOG_FORMAT:-json}" \
        setsid nohup "$BIN/cashvio-$s" >>"$LOGS/$name.log" 2>&1 </dev/null &
      echo $! >"$pidfile"
      say "started $name (pid $!, port $port, log .stack/logs/$name.log)"
    fi
    deadline=$((SECONDS + 90))
    until curl -fs -o /dev/null "http://127.0.0.1:$port/ready" 2>/dev/null; do
      if ((SECONDS > deadline)); then
        say "$name is not ready; last log lines:"
        tail -n 20 "$LOGS/$name.log" >&2 || true
        exit 1
      fi
      sleep 0.2
    done
    ;;
  kill)
    if pid_alive "$pidfile"; then
      pid="$(cat "$pidfile")"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
      while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
      say "killed $name (pid $pid)"
    fi
    rm -f "$pidfile"
    ;;
  *) die "usage: stack/service.sh start|kill auth|stock|order|mailer [instance]" ;;
esac
