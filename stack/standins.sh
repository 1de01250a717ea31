#!/usr/bin/env bash
# Local stand-ins for cloud services, on loopback only:
#   moto  - moto server (S3, KMS, ...)            http://127.0.0.1:${MOTO_PORT:-5000}
#   smtp  - SMTP sink (Gmail-like AUTH incl. XOAUTH2) smtp://127.0.0.1:${SMTP_PORT:-1025}
#           + its HTTP API / OAuth2 token endpoint   http://127.0.0.1:${SMTP_HTTP_PORT:-8025}
#   oidc  - OpenID Connect provider (plays Google)  http://127.0.0.1:${OIDC_PORT:-9090}
#
# Usage: stack/standins.sh install
#        stack/standins.sh start   [moto|smtp|oidc ...]   (all when no name given)
#        stack/standins.sh stop    [moto|smtp|oidc ...]
#        stack/standins.sh restart [moto|smtp|oidc ...]
#        stack/standins.sh status  [moto|smtp|oidc ...]
#        stack/standins.sh env       (prints export lines for tests)
#
# State lives under <root>/.stack/ (venv/, run/*.pid, logs/*.log).
# See stack/standins/README.md for the APIs.
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(dirname -- "$SCRIPT_DIR")"
STANDINS_DIR="$SCRIPT_DIR/standins"
STACK_DIR="$ROOT/.stack"
VENV="$STACK_DIR/venv"
RUN_DIR="$STACK_DIR/run"
LOG_DIR="$STACK_DIR/logs"
REQ="$STANDINS_DIR/requirements.txt"
STAMP="$VENV/.standins-requirements.sha256"

HOST=127.0.0.1
MOTO_PORT="${MOTO_PORT:-5000}"
SMTP_PORT="${SMTP_PORT:-1025}"
SMTP_HTTP_PORT="${SMTP_HTTP_PORT:-8025}"
OIDC_PORT="${OIDC_PORT:-9090}"
START_TIMEOUT="${STANDINS_START_TIMEOUT:-30}"
ALL_SERVICES=(moto smtp oidc)

log() { printf '[standins] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- install ---

# py_at_least PYTHON MINOR -> true if PYTHON runs and is >= 3.MINOR
py_at_least() {
  "$1" -c "import sys; sys.exit(0 if sys.version_info >= (3, $2) else 1)" >/dev/null 2>&1
}

# Print the real path of the interpreter to build the venv with.
# Prefers Python >= 3.12 (oidc-provider-mock 0.4.x needs it), else >= 3.10.
find_python() {
  local c
  if [[ -n "${STANDINS_PYTHON:-}" ]]; then
    py_at_least "$STANDINS_PYTHON" 10 || die "STANDINS_PYTHON=$STANDINS_PYTHON is not a working Python >= 3.10"
    "$STANDINS_PYTHON" -c 'import sys; print(sys.executable)'
    return 0
  fi
  local pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
  local candidates=()
  for c in python3.12 python3.13 python3.14 python3; do
    if command -v "$c" >/dev/null 2>&1; then candidates+=("$(command -v "$c")"); fi
  done
  for c in "$pyenv_root"/versions/3.1[2-9]*/bin/python3 /usr/local/bin/python3.1[2-9] /usr/bin/python3.1[2-9]; do
    [[ -x "$c" ]] && candidates+=("$c")
  done
  for c in "${candidates[@]}"; do
    if py_at_least "$c" 12; then "$c" -c 'import sys; print(sys.executable)'; return 0; fi
  done
  for c in python3 /usr/bin/python3; do
    if command -v "$c" >/dev/null 2>&1 && py_at_least "$c" 10; then
      log "warning: no Python >= 3.12 found; using $("$c" -V 2>&1) (oidc-provider-mock falls back to 0.3.4)"
      "$c" -c 'import sys; print(sys.executable)'
      return 0
    fi
  done
  return 1
}

apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "need to install $* but apt-get is not available"
  log "apt-get update && apt-get install -y $*"
  DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2
}

req_hash() {
  local pyver
  pyver="$("$VENV/bin/python" -c 'import sys; print(sys.version)' 2>/dev/null || echo none)"
  { cat "$REQ"; printf '%s\n' "$pyver"; } | sha256sum | cut -d' ' -f1
}

cmd_install() {
  [[ -f "$REQ" ]] || die "missing $REQ"
  mkdir -p "$STACK_DIR" "$RUN_DIR" "$LOG_DIR"

  if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    local py
    if ! py="$(find_python)"; then
      apt_install python3 python3-venv
      py="$(find_python)" || die "no usable python3 found"
    fi
    if ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
      # Debian splits venv/ensurepip into python3-venv (and python3.X-venv).
      local minor
      minor="$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
      apt_install python3-venv "python${minor}-venv"
    fi
    log "creating virtualenv $VENV with $("$py" -V 2>&1) ($py)"
    rm -rf "$VENV"
    "$py" -m venv "$VENV" || { rm -rf "$VENV"; die "python -m venv failed"; }
  fi

  local want
  want="$(req_hash)"
  if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    log "requirements up to date ($VENV)"
    return 0
  fi
  log "pip install -r $REQ (this takes a minute the first time)"
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install -q -r "$REQ" >&2
  printf '%s\n' "$want" >"$STAMP"
  log "installed: $("$VENV/bin/python" -m pip list 2>/dev/null | grep -Ei '^(moto|aiosmtpd|oidc-provider-mock|boto3) ' | tr -s ' ' | paste -sd ',' -)"
}

ensure_installed() {
  if [[ ! -x "$VENV/bin/python" || ! -f "$STAMP" || "$(cat "$STAMP" 2>/dev/null)" != "$(req_hash)" ]]; then
    cmd_install
  fi
}

# --------------------------------------------------------------- services ---

valid_service() {
  case "$1" in moto|smtp|oidc) return 0 ;; *) return 1 ;; esac
}

pid_file() { printf '%s/%s.pid\n' "$RUN_DIR" "$1"; }
log_file() { printf '%s/%s.log\n' "$LOG_DIR" "$1"; }

# A string that must appear in /proc/<pid>/cmdline of our process.
cmd_marker() {
  case "$1" in
    moto) echo "moto_server" ;;
    smtp) echo "smtp_sink.py" ;;
    oidc) echo "oidc_provider.py" ;;
  esac
}

describe() {
  case "$1" in
    moto) echo "moto server http://$HOST:$MOTO_PORT" ;;
    smtp) echo "SMTP sink smtp://$HOST:$SMTP_PORT, http://$HOST:$SMTP_HTTP_PORT" ;;
    oidc) echo "OIDC provider http://$HOST:$OIDC_PORT" ;;
  esac
}

health_url() {
  case "$1" in
    moto) echo "http://$HOST:$MOTO_PORT/" ;;
    smtp) echo "http://$HOST:$SMTP_HTTP_PORT/api/messages" ;;
    oidc) echo "http://$HOST:$OIDC_PORT/.well-known/openid-configuration" ;;
  esac
}

# http_code URL -> prints the HTTP status code, 000 when nothing answered.
http_code() {
  if command -v curl >/dev/null 2>&1; then
    curl -s --noproxy '*' -o /dev/null -m 3 -w '%{http_code}' "$1" 2>/dev/null || true
  elif [[ -x "$VENV/bin/python" ]]; then
    "$VENV/bin/python" - "$1" <<'PY' 2>/dev/null || echo 000
import sys, urllib.request, urllib.error
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(sys.argv[1], timeout=3) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
PY
  else
    echo 000
  fi
}

# answers NAME -> true if the stand-in answers its health check.
answers() {
  local code
  code="$(http_code "$(health_url "$1")")"
  case "$1" in
    moto) [[ -n "$code" && "$code" != 000 ]] ;;          # any HTTP answer
    smtp)
      [[ "$code" == 2* ]] || return 1
      (exec 3<>"/dev/tcp/$HOST/$SMTP_PORT") 2>/dev/null   # SMTP port accepts too
      ;;
    *) [[ "$code" == 2* ]] ;;
  esac
}

# our_pid NAME -> prints the pid from our pid file if that process is alive
# and is really our stand-in; removes stale pid files.
our_pid() {
  local pf pid
  pf="$(pid_file "$1")"
  [[ -f "$pf" ]] || return 1
  pid="$(tr -dc '0-9' <"$pf")"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null \
     && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$(cmd_marker "$1")"; then
    echo "$pid"
    return 0
  fi
  rm -f "$pf"
  return 1
}

launch() {
  local name="$1" lf py="$VENV/bin/python"
  lf="$(log_file "$name")"
  printf '\n===== %s starting %s =====\n' "$(date -Is)" "$name" >>"$lf"
  case "$name" in
    moto)
      setsid nohup "$VENV/bin/moto_server" -H "$HOST" -p "$MOTO_PORT" \
        </dev/null >>"$lf" 2>&1 &
      ;;
    smtp)
      PYTHONUNBUFFERED=1 \
        setsid nohup "$py" "$STANDINS_DIR/smtp_sink.py" --host "$HOST" \
        --smtp-port "$SMTP_PORT" --http-port "$SMTP_HTTP_PORT" \
        </dev/null >>"$lf" 2>&1 &
      ;;
    oidc)
      PYTHONUNBUFFERED=1 NO_COLOR=1 \
        setsid nohup "$py" "$STANDINS_DIR/oidc_provider.py" --host "$HOST" --port "$OIDC_PORT" \
        </dev/null >>"$lf" 2>&1 &
      ;;
  esac
  echo "$!" >"$(pid_file "$name")"
}

show_log_tail() {
  local lf
  lf="$(log_file "$1")"
  log "---- last lines of $lf ----"
  tail -n 40 "$lf" >&2 2>/dev/null || true
  log "---- end of $lf ----"
}

cmd_start() {
  local names=("$@") name pid
  ensure_installed
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  local waiting=()
  for name in "${names[@]}"; do
    if pid="$(our_pid "$name")"; then
      if answers "$name"; then
        log "$name: already running (pid $pid) - $(describe "$name")"
      else
        log "$name: process $pid exists, waiting for it to answer"
        waiting+=("$name")
      fi
    elif answers "$name"; then
      log "$name: something not started by this script already answers - $(describe "$name"); leaving it alone"
    else
      launch "$name"
      log "$name: started (pid $(cat "$(pid_file "$name")"), log $(log_file "$name"))"
      waiting+=("$name")
    fi
  done

  local deadline=$((SECONDS + START_TIMEOUT)) failed=() pending
  while ((${#waiting[@]})); do
    pending=()
    for name in "${waiting[@]}"; do
      if answers "$name"; then
        log "$name: up - $(describe "$name")"
      elif ! our_pid "$name" >/dev/null; then
        log "$name: process exited during start-up"
        failed+=("$name")
      else
        pending+=("$name")
      fi
    done
    waiting=("${pending[@]+"${pending[@]}"}")
    ((${#waiting[@]})) || break
    if ((SECONDS >= deadline)); then
      for name in "${waiting[@]}"; do log "$name: did not answer within ${START_TIMEOUT}s"; done
      failed+=("${waiting[@]}")
      break
    fi
    sleep 0.3
  done

  if ((${#failed[@]})); then
    for name in "${failed[@]}"; do show_log_tail "$name"; done
    die "failed to start: ${failed[*]}"
  fi
}

stop_one() {
  local name="$1" pid pgid i
  if ! pid="$(our_pid "$name")"; then
    log "$name: not running (no live pid file)"
    return 0
  fi
  pgid="$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ' || true)"
  if [[ "$pgid" == "$pid" ]]; then
    kill -TERM -- "-$pgid" 2>/dev/null || true    # whole process group (setsid)
  else
    kill -TERM "$pid" 2>/dev/null || true
  fi
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name: still alive after 10s, sending SIGKILL"
    if [[ "$pgid" == "$pid" ]]; then kill -KILL -- "-$pgid" 2>/dev/null || true; else kill -KILL "$pid" 2>/dev/null || true; fi
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$(pid_file "$name")"
  log "$name: stopped (pid $pid)"
}

cmd_stop() {
  local name
  for name in "$@"; do stop_one "$name"; done
}

cmd_status() {
  local name pid
  for name in "$@"; do
    if pid="$(our_pid "$name")"; then
      if answers "$name"; then
        printf '%-5s up    pid %-7s %s\n' "$name" "$pid" "$(describe "$name")"
      else
        printf '%-5s down  pid %-7s not answering yet - %s\n' "$name" "$pid" "$(describe "$name")"
      fi
    elif answers "$name"; then
      printf '%-5s up    (not started by standins.sh) %s\n' "$name" "$(describe "$name")"
    else
      printf '%-5s down  %s\n' "$name" "$(describe "$name")"
    fi
  done
}

cmd_env() {
  cat <<EOF
export AWS_ENDPOINT_URL=http://$HOST:$MOTO_PORT
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export SMTP_SINK_SMTP=$HOST:$SMTP_PORT
export SMTP_SINK_HTTP=http://$HOST:$SMTP_HTTP_PORT
export SMTP_SINK_TOKEN_URL=http://$HOST:$SMTP_HTTP_PORT/oauth2/token
export SMTP_SINK_PASSWORD=${SMTP_SINK_PASSWORD:-sink-password}
export SMTP_SINK_REFRESH_TOKEN=${SMTP_SINK_REFRESH_TOKEN:-local-refresh-token}
export OIDC_ISSUER=http://$HOST:$OIDC_PORT
EOF
}

usage() {
  sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  local names=("$@") name
  if ((${#names[@]} == 0)); then names=("${ALL_SERVICES[@]}"); fi
  for name in "${names[@]}"; do
    valid_service "$name" || die "unknown stand-in '$name' (expected: ${ALL_SERVICES[*]})"
  done
  case "$cmd" in
    install) cmd_install ;;
    start) cmd_start "${names[@]}" ;;
    stop) cmd_stop "${names[@]}" ;;
    restart) cmd_stop "${names[@]}"; cmd_start "${names[@]}" ;;
    status) cmd_status "${names[@]}" ;;
    env) cmd_env ;;
    -h|--help|help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
