#!/usr/bin/env bash
# Hostile input against the running stack (`make up`): schemathesis generates requests from
# each service's /openapi.json and sends them through nginx with a shop owner's token, with
# the checks in $CHECKS (no 5xx; status codes, content types, headers and bodies as
# documented; CHECKS=all adds schemathesis's stricter ones).
#
#   stack/fuzz-api.sh [max-examples-per-operation]   (default 50)
#
# Exits non-zero when schemathesis finds a failure. Installs schemathesis into .stack/ the
# first time (PyPI).
set -euo pipefail
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
load_config
EXAMPLES="${1:-50}"
# No 5xx, and status codes, content types, headers and bodies as documented.
CHECKS="${CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance}"
B="http://127.0.0.1:${NGINX_PORT}"
SINK="http://127.0.0.1:${SMTP_HTTP_PORT:-8025}"
VENV="$STACK/schemathesis"
if [[ ! -x "$VENV/bin/schemathesis" ]]; then
  say "installing schemathesis into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'schemathesis==4.32.5'
fi

# A shop owner, signed up the way a new shop is (the code from the SMTP sink).
j() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
EMAIL="fuzz$RANDOM$RANDOM@example.com"
curl -fsS -X POST "$B/auth/auth/otp/generate" -H 'content-type: application/json' -d "{\"email\":\"$EMAIL\",\"name\":\"Fuzz\"}" >/dev/null
OTP=""
for _ in $(seq 1 60); do
  OTP=$(curl -fsS "$SINK/api/messages?to=$EMAIL" | python3 -c "import json,sys,re; m=json.load(sys.stdin); print(re.search(r'\d{6}', m[-1]['subject']).group(0) if m else '')")
  [[ -n "$OTP" ]] && break
  sleep 0.5
done
[[ -n "$OTP" ]] || die "the sign-up code never arrived"
TOKEN=$(curl -fsS -X POST "$B/auth/auth/register" -H 'content-type: application/json' \
  -d "{\"name\":\"Fuzz\",\"email\":\"$EMAIL\",\"password\":\"a long secret\",\"otp\":\"$OTP\",\"businessName\":\"Fuzz shop\",\"address\":\"Kandy\"}" | j '["accessToken"]')

failed=0
for s in "${SERVICES[@]}"; do
  say "schemathesis: $s ($EXAMPLES examples per operation)"
  # Signing out or deleting the account would end the run's session (the tests cover
  # them); /metrics is not public through nginx by design. The stateful phase is left out:
  # it chains operations past the filters (it signed the run out). One worker: with two,
  # Hypothesis's lambda-source parsing in both threads at once crashed the tool itself on
  # Python 3.11 ("AST constructor recursion depth mismatch", a Runtime Error in the
  # coverage phase: no finding about the API, yet a failed run).
  if ! "$VENV/bin/schemathesis" run "$B/$s/openapi.json" --url "$B/$s" \
      -H "Authorization: Bearer $TOKEN" --max-examples "$EXAMPLES" --workers 1 \
      --checks "$CHECKS" --phases examples,coverage,fuzzing \
      --exclude-path-regex '.*(logout|/users/[{]id[}]$|/metrics$).*' \
      --suppress-health-check all --no-color; then
    failed=1
  fi
done
exit $failed
