# Shared by the stack scripts: paths, configuration loading, process helpers.
# Sourced, not run.

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
STACK="$ROOT/.stack"
RUN="$STACK/run"
LOGS="$STACK/logs"
SERVICES=(auth stock order mailer)

say() { printf '\033[1m[cashvio]\033[0m %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# .env.example gives every default; .env (optional, ignored by git) overrides it; variables
# already in the environment win over both. Lines are plain KEY=value (no quoting).
declare -A FROM_FILE=()
load_env_file() {
  local line key
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" =~ ^[[:space:]]*# || "$line" != *=* ]] && continue
    key="${line%%=*}"
    if [[ -n "${!key+x}" && -z "${FROM_FILE[$key]+x}" ]]; then
      continue # set by the caller's environment
    fi
    export "$key=${line#*=}"
    FROM_FILE[$key]=1
  done <"$1"
}
load_config() {
  load_env_file "$ROOT/.env.example"
  [[ -f "$ROOT/.env" ]] && load_env_file "$ROOT/.env"
  export NGINX_RUNTIME_DIR="${NGINX_RUNTIME_DIR:-$STACK/nginx}"
}

# Instances (issue 15): instance 0 of a service is NAME (pid file NAME.pid, log NAME.log,
# the service's port); instance K > 0 is NAME-K on the service's port + 100*K.
instance_name() { if (($2 == 0)); then echo "$1"; else echo "$1-$2"; fi; }
instance_pidfile() { echo "$RUN/$(instance_name "$1" "$2").pid"; }
instance_port() { local v="${1^^}_PORT"; echo $((${!v} + 100 * $2)); }
# How many instances of NAME `make up` runs: NAME_INSTANCES, else INSTANCES, else 1. Stock's
# instances share its shards (STOCK_SHARDS queues, one active consumer each: see
# docs/ARCHITECTURE.md, "Several instances").
instances_of() {
  local v="${1^^}_INSTANCES"
  local n="${!v:-${INSTANCES:-1}}"
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "$v/INSTANCES must be a positive number, not '$n'"
  echo "$n"
}

# pid_alive FILE: the pid in FILE runs.
pid_alive() {
  [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

# stop_pidfile FILE NAME: SIGTERM the process group we started, wait, then SIGKILL.
stop_pidfile() {
  local file="$1" name="$2" pid i
  pid_alive "$file" || { rm -f "$file"; return 0; }
  pid="$(cat "$file")"
  say "stopping $name (pid $pid)"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 250); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name did not stop in 25 s; killing"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
