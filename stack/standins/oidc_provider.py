#!/usr/bin/env python3
"""OpenID Connect provider stand-in (plays Google for sign-in tests).

Thin wrapper around the PyPI package ``oidc-provider-mock`` that

* binds to 127.0.0.1:$OIDC_PORT (default 9090),
* lets any client_id / client_secret / redirect_uri through (no registration),
* adds PKCE (RFC 7636) *enforcement*, which oidc-provider-mock itself does not
  do: when the authorization request carried ``code_challenge`` the token
  request must carry a matching ``code_verifier`` (S256 or plain), otherwise
  the token endpoint answers 400 ``invalid_grant`` -- the way Google behaves.
  Set OIDC_REQUIRE_PKCE=1 to also reject authorization requests without a
  ``code_challenge``.

Environment:
  OIDC_PORT            port (default 9090)
  OIDC_REQUIRE_NONCE   1 -> authorization requests must carry ``nonce``
  OIDC_REQUIRE_PKCE    1 -> authorization requests must carry ``code_challenge``
  OIDC_TOKEN_TTL       access/ID token lifetime in seconds (default 3600)
  OIDC_USERS_JSON      optional JSON list of predefined users, e.g.
                       [{"sub": "u1", "email": "a@x.test", "email_verified": true}]

See README.md next to this file for the endpoints and a curl walk-through.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import sys
import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

# Plain-HTTP OAuth on loopback; must be set before authlib checks requests.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

import flask  # noqa: E402
import oidc_provider_mock  # noqa: E402
import uvicorn  # noqa: E402
from oidc_provider_mock import User  # noqa: E402

log = logging.getLogger("oidc_standin")

_VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _oauth_error(status: int, error: str, description: str):
    resp = flask.jsonify({"error": error, "error_description": description})
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    return resp


def add_pkce(app: flask.Flask, require_pkce: bool) -> None:
    """Remember code_challenge per issued code; check code_verifier at /oauth2/token."""
    lock = threading.Lock()
    challenges: dict[str, tuple[str, str]] = {}  # code -> (challenge, method)

    @app.before_request
    def _pkce_before():
        req = flask.request
        if req.path == "/oauth2/authorize":
            challenge = req.values.get("code_challenge")
            method = req.values.get("code_challenge_method") or "plain"
            if challenge is None:
                if require_pkce and req.method == "POST":
                    return _oauth_error(400, "invalid_request", "Missing 'code_challenge' (OIDC_REQUIRE_PKCE=1)")
                return None
            if method not in ("S256", "plain"):
                return _oauth_error(400, "invalid_request", f"Unsupported code_challenge_method {method!r}")
            if not _VERIFIER_RE.match(challenge) and method == "plain":
                return _oauth_error(400, "invalid_request", "Invalid 'code_challenge'")
            return None

        if req.path == "/oauth2/token" and req.method == "POST":
            if req.form.get("grant_type") != "authorization_code":
                return None
            code = req.form.get("code") or ""
            verifier = req.form.get("code_verifier")
            with lock:
                entry = challenges.get(code)
            if entry is None:
                # Code issued without a challenge (or unknown code): the provider
                # itself decides about the code; a lone verifier is ignored.
                return None
            challenge, method = entry
            if not verifier:
                log.warning("PKCE: missing code_verifier for code issued with a code_challenge")
                return _oauth_error(400, "invalid_grant", "Missing code verifier.")
            if not _VERIFIER_RE.match(verifier):
                return _oauth_error(400, "invalid_grant", "Invalid code_verifier format.")
            computed = _s256(verifier) if method == "S256" else verifier
            if computed != challenge:
                log.warning("PKCE: code_verifier does not match code_challenge (%s)", method)
                return _oauth_error(400, "invalid_grant", "Invalid code verifier.")
            return None
        return None

    @app.after_request
    def _pkce_after(response: flask.Response):
        req = flask.request
        if req.path == "/oauth2/authorize" and req.method == "POST" and response.status_code in (302, 303):
            challenge = req.values.get("code_challenge")
            location = response.headers.get("Location") or ""
            code = (parse_qs(urlsplit(location).query).get("code") or [None])[0]
            if challenge and code:
                method = req.values.get("code_challenge_method") or "plain"
                with lock:
                    challenges[code] = (challenge, method)
        elif req.path == "/oauth2/token" and req.method == "POST" and response.status_code == 200:
            code = req.form.get("code")
            if code:
                with lock:
                    challenges.pop(code, None)
        return response


def googlify_id_token_audience() -> bool:
    """Make the ID token's ``aud`` a plain string and add ``azp`` like Google does.

    oidc-provider-mock (through authlib) emits ``"aud": ["<client_id>"]``; Google
    emits ``"aud": "<client_id>", "azp": "<client_id>"``.  Patches the package's
    OpenIDCode extension when it has the hook (0.4.x with authlib >= 1.7);
    returns False (leaving the list form) otherwise.  OIDC_AUD_ARRAY=1 disables.
    """
    if _flag("OIDC_AUD_ARRAY"):
        return False
    try:
        from oidc_provider_mock import _app as mock_app
    except ImportError:
        return False
    cls = getattr(mock_app, "OpenIDCode", None)
    original = getattr(cls, "get_client_claims", None) if cls else None
    if original is None:
        return False

    def get_client_claims(self, client):
        claims = dict(original(self, client))
        client_id = client.get_client_id()
        claims["aud"] = client_id
        claims["azp"] = client_id
        return claims

    cls.get_client_claims = get_client_claims
    return True


def build_app(require_nonce: bool, require_pkce: bool, token_ttl: int, users: list[User]) -> flask.Flask:
    if not googlify_id_token_audience():
        log.info("ID token 'aud' stays a JSON array (OIDC_AUD_ARRAY set or hook unavailable)")
    app = oidc_provider_mock.app(
        require_client_registration=False,
        require_nonce=require_nonce,
        issue_refresh_token=True,
        access_token_max_age=timedelta(seconds=token_ttl),
        user_claims=users,
    )

    @app.get("/health")
    def _health():
        return {"status": "ok"}

    add_pkce(app, require_pkce)

    @app.after_request
    def _jwks_alg_use(response: flask.Response):
        # Google's JWKS carries "alg": "RS256" and "use": "sig"; the mock's
        # doesn't. Add them so JWK-consuming code written for Google works.
        if flask.request.path == "/jwks" and response.status_code == 200:
            try:
                doc = json.loads(response.get_data())
                for key in doc.get("keys", []):
                    if key.get("kty") == "RSA":
                        key.setdefault("alg", "RS256")
                        key.setdefault("use", "sig")
                response.set_data(json.dumps(doc, indent=2))
            except ValueError:
                pass
        return response

    return app


def _users_from_env() -> list[User]:
    raw = os.environ.get("OIDC_USERS_JSON", "").strip()
    if not raw:
        return []
    users = []
    for item in json.loads(raw):
        claims = {k: v for k, v in item.items() if k != "sub"}
        users.append(User(sub=str(item["sub"]), claims=claims))
    return users


def main() -> int:
    parser = argparse.ArgumentParser(description="OIDC provider stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("OIDC_PORT") or 9090))
    args = parser.parse_args()

    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    app = build_app(
        require_nonce=_flag("OIDC_REQUIRE_NONCE"),
        require_pkce=_flag("OIDC_REQUIRE_PKCE"),
        token_ttl=int(os.environ.get("OIDC_TOKEN_TTL") or 3600),
        users=_users_from_env(),
    )
    log.info(
        "oidc-provider-mock %s on http://%s:%s (issuer = http://<Host header>)",
        importlib.metadata.version("oidc-provider-mock"), args.host, args.port,
    )
    uvicorn.run(app, interface="wsgi", host=args.host, port=args.port, log_config=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
