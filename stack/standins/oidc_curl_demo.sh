#!/usr/bin/env bash
# Browser-less "Sign in with Google" against the OIDC stand-in, with curl only.
# Mirrors README.md section "OIDC: step by step"; a Rust test does the same.
#
#   bash stack/standins/oidc_curl_demo.sh [email] [true|false]
#
# Needs: curl, openssl, sed, tr, base64 (and python3 only to pretty-print the claims).
set -euo pipefail

OIDC="http://127.0.0.1:${OIDC_PORT:-9090}"
EMAIL="${1:-alice@example.test}"
VERIFIED="${2:-true}"
SUB="google-sub-$(date +%s%N)"              # any stable string; Google's sub is numeric
CLIENT_ID="cashvio-local"                   # any id works (no registration needed)
CLIENT_SECRET="cashvio-local-secret"        # any secret works
REDIRECT_URI="http://127.0.0.1:3000/auth/google/callback"   # any URI works

urlenc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1" 2>/dev/null \
  || printf '%s' "$1" | sed -e 's/%/%25/g' -e 's/:/%3A/g' -e 's#/#%2F#g' -e 's/@/%40/g' -e 's/ /%20/g'; }
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# 1. Discovery (issuer == "$OIDC", i.e. taken from the Host header you use).
curl -fsS "$OIDC/.well-known/openid-configuration" >/dev/null

# 2. Create/replace the user and its claims (PUT replaces all claims of that sub).
curl -fsS -X PUT "$OIDC/users/$(urlenc "$SUB")" -H 'Content-Type: application/json' \
  -d "{\"email\": \"$EMAIL\", \"email_verified\": $VERIFIED, \"name\": \"Test User\"}"

# 3. PKCE S256 + state + nonce, as the app would put them in the authorization URL.
VERIFIER="$(openssl rand -base64 48 | b64url | cut -c1-64)"
CHALLENGE="$(printf '%s' "$VERIFIER" | openssl dgst -sha256 -binary | b64url)"
STATE="st-$(openssl rand -hex 8)"
NONCE="n-$(openssl rand -hex 8)"
AUTH_QUERY="response_type=code&client_id=$CLIENT_ID&redirect_uri=$(urlenc "$REDIRECT_URI")&scope=openid%20email%20profile&state=$STATE&nonce=$NONCE&code_challenge=$CHALLENGE&code_challenge_method=S256"

# 4. "Log in": POST the authorization URL (same query string) with form field sub.
#    Answer: 302, Location: <redirect_uri>?code=...&state=...   (do NOT follow it)
LOCATION="$(curl -sS -o /dev/null -w '%{redirect_url}' -X POST "$OIDC/oauth2/authorize?$AUTH_QUERY" \
  --data-urlencode "sub=$SUB")"
echo "redirected to: $LOCATION"
CODE="$(printf '%s' "$LOCATION" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')"
GOT_STATE="$(printf '%s' "$LOCATION" | sed -n 's/.*[?&]state=\([^&]*\).*/\1/p')"
[[ -n "$CODE" && "$GOT_STATE" == "$STATE" ]] || { echo "no code / state mismatch" >&2; exit 1; }

# 5. Exchange the code (client_secret_post here; HTTP Basic works too).
TOKENS="$(curl -fsS -X POST "$OIDC/oauth2/token" \
  -d grant_type=authorization_code \
  --data-urlencode "code=$CODE" \
  --data-urlencode "redirect_uri=$REDIRECT_URI" \
  --data-urlencode "client_id=$CLIENT_ID" \
  --data-urlencode "client_secret=$CLIENT_SECRET" \
  --data-urlencode "code_verifier=$VERIFIER")"
echo "token response: $TOKENS"

# 6. Look at the ID token claims (verify the RS256 signature with $OIDC/jwks in real code).
ID_TOKEN="$(printf '%s' "$TOKENS" | sed -n 's/.*"id_token": *"\([^"]*\)".*/\1/p')"
PAYLOAD="$(printf '%s' "$ID_TOKEN" | cut -d. -f2 | tr '_-' '/+')"
while (( ${#PAYLOAD} % 4 )); do PAYLOAD="$PAYLOAD="; done
CLAIMS="$(printf '%s' "$PAYLOAD" | base64 -d)"
echo "id_token claims: $CLAIMS"
printf '%s' "$CLAIMS" | grep -q "\"nonce\": *\"$NONCE\"" || { echo "nonce missing from id_token" >&2; exit 1; }
printf '%s' "$CLAIMS" | grep -q "\"email_verified\": *$VERIFIED" || { echo "email_verified mismatch" >&2; exit 1; }

# 7. Negative check: a wrong code_verifier is refused (invalid_grant), as at Google.
LOCATION="$(curl -sS -o /dev/null -w '%{redirect_url}' -X POST "$OIDC/oauth2/authorize?$AUTH_QUERY" --data-urlencode "sub=$SUB")"
CODE="$(printf '%s' "$LOCATION" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')"
BAD="$(curl -sS -w ' HTTP %{http_code}' -X POST "$OIDC/oauth2/token" -d grant_type=authorization_code \
  --data-urlencode "code=$CODE" --data-urlencode "redirect_uri=$REDIRECT_URI" \
  -u "$CLIENT_ID:$CLIENT_SECRET" -d code_verifier=wrong-verifier-0123456789012345678901234567890123)"
echo "wrong verifier: $BAD"
[[ "$BAD" == *invalid_grant*"HTTP 400" ]] || { echo "wrong verifier was not refused" >&2; exit 1; }
echo "OK"
