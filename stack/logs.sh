#!/usr/bin/env bash
# `make logs`: follows the logs of the services, nginx and the stand-ins.
set -euo pipefail
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
load_config
mkdir -p "$LOGS"
exec tail -n 20 -F "$LOGS"/*.log "$NGINX_RUNTIME_DIR"/*.log
