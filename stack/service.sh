#!/usr/bin/env bash
# One service of the running stack (`make up`), without building:
#
#   stack/service.sh start NAME   start it if it is not running; wait until it is ready
#   stack/service.sh kill NAME    SIGKILL it (a crash, for the fault tests)
#
# NAME is auth, stock, order or mailer. up.sh starts every service through here.
set -euo pipefail
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
load_config
mkdir -p "$RUN" "$LOGS"
cmd="${1:-}" s="${2:-}"
[[ " ${SERVICES[*]} " == *" $s "* ]] || die "usage: stack/service.sh start|kill auth|stock|order|mailer"
pidfile="$RUN/$s.pid"
BIN="$ROOT/target/release"

case "$cmd" in
  start)
    if pid_alive "$pidfile"; then
      say "$s already running (pid $(cat "$pidfile"))"
    else
      LOG_FORMAT="${LOG_FORMAT:-json}" setsid nohup "$BIN/cashvio-$s" >>"$LOGS/$s.log" 2>&1 </dev/null &
      echo $! >"$pidfile"
      say "started $s (pid $!, log .stack/logs/$s.log)"
    fi
    port_var="${s^^}_PORT"
    deadline=$((SECONDS + 90))
    until curl -fs -o /dev/null "http://127.0.0.1:${!port_var}/ready" 2>/dev/null; do
      if ((SECONDS > deadline)); then
        say "$s is not ready; last log lines:"
        tail -n 20 "$LOGS/$s.log" >&2 || true
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
      say "killed $s (pid $pid)"
    fi
    rm -f "$pidfile"
    ;;
  *) die "usage: stack/service.sh start|kill auth|stock|order|mailer" ;;
esac
