#!/usr/bin/env python3
"""Self-test of the running stand-ins (start them first: bash stack/standins.sh start).

    .stack/venv/bin/python stack/standins/selftest.py

Checks the SMTP sink (XOAUTH2 with a token from /oauth2/token, PLAIN, LOGIN,
failures -> 535, revoke-all, HTTP API, MIME parsing), moto (S3 + KMS through
boto3) and the OIDC provider (authorization code + PKCE S256 + state + nonce,
RS256 ID token verified against the JWKS, email_verified true/false).

NOTE: it clears the sink's messages / auth attempts and revokes its tokens.
Prints "N passed, N failed" at the end; exit status 0 only if all passed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import smtplib
import sys
import traceback
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage

HOST = "127.0.0.1"
SMTP_PORT = int(os.environ.get("SMTP_PORT") or 1025)
SINK = f"http://{HOST}:{int(os.environ.get('SMTP_HTTP_PORT') or 8025)}"
MOTO = f"http://{HOST}:{int(os.environ.get('MOTO_PORT') or 5000)}"
OIDC = f"http://{HOST}:{int(os.environ.get('OIDC_PORT') or 9090)}"
SINK_PASSWORD = os.environ.get("SMTP_SINK_PASSWORD", "sink-password")
REFRESH_TOKEN = os.environ.get("SMTP_SINK_REFRESH_TOKEN", "local-refresh-token")

# Plain loopback HTTP: no proxies, never follow redirects (we read Location).


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def http(method: str, url: str, data=None, headers=None, form=None, js=None):
    """Returns (status, headers, body_bytes)."""
    headers = dict(headers or {})
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    elif js is not None:
        data = json.dumps(js).encode()
        headers.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with _opener.open(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def http_json(method: str, url: str, **kw):
    status, _h, body = http(method, url, **kw)
    return status, (json.loads(body) if body else None)


# ---------------------------------------------------------------- harness ---
RESULTS: list[tuple[str, bool]] = []


def check(name: str, cond: bool, detail: object = "") -> None:
    RESULTS.append((name, bool(cond)))
    print(("ok   " if cond else "FAIL ") + name + ("" if cond or detail == "" else f"  -- {detail}"))


def section(fn):
    print(f"\n== {fn.__name__}")
    try:
        fn()
    except Exception:
        traceback.print_exc()
        check(f"{fn.__name__} raised", False)
    return fn


# ------------------------------------------------------------------- SMTP ---
PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def build_mail(to: str, subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Cashvio <no-reply@cashvio.test>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{secrets.token_hex(8)}@cashvio.test>"
    msg.set_content("Hello in plain text.\nSecond line.\n")
    msg.add_alternative("<html><body><p>Hello in <b>HTML</b>.</p></body></html>\n", subtype="html")
    # adding an attachment turns multipart/alternative into mixed(alternative, pdf)
    msg.add_attachment(PDF_BYTES, maintype="application", subtype="pdf", filename="invoice-42.pdf")
    return msg


def xoauth2(user: str, token: str):
    return lambda challenge=None: f"user={user}\x01auth=Bearer {token}\x01\x01"


def smtp_xoauth2_and_plain() -> None:
    http("DELETE", f"{SINK}/api/messages")
    http("DELETE", f"{SINK}/api/auth-attempts")
    check("GET /health", http("GET", f"{SINK}/health")[0] == 200)

    # token endpoint: client credentials as HTTP Basic
    basic = base64.b64encode(b"local-client:local-secret").decode()
    st, tok = http_json("POST", f"{SINK}/oauth2/token", headers={"Authorization": f"Basic {basic}"},
                        form={"grant_type": "refresh_token", "refresh_token": REFRESH_TOKEN})
    check("token endpoint issues a Bearer token", st == 200 and tok.get("token_type") == "Bearer"
          and tok.get("access_token") and isinstance(tok.get("expires_in"), int), tok)
    token = tok["access_token"]
    st, bad = http_json("POST", f"{SINK}/oauth2/token", form={
        "grant_type": "refresh_token", "refresh_token": "nope", "client_id": "c", "client_secret": "s"})
    check("wrong refresh token -> 400 invalid_grant", st == 400 and bad.get("error") == "invalid_grant", (st, bad))

    alice = "alice@example.test"
    with smtplib.SMTP(HOST, SMTP_PORT, timeout=10) as s:
        s.ehlo("selftest.local")
        mechs = s.esmtp_features.get("auth", "").split()
        check("EHLO advertises PLAIN LOGIN XOAUTH2", {"PLAIN", "LOGIN", "XOAUTH2"} <= set(mechs), mechs)
        code, _ = s.mail("x@y.test")
        check("MAIL before AUTH -> 530", code == 530, code)
        s.rset()
        try:
            s.auth("XOAUTH2", xoauth2(alice, "not-a-real-token"))
            check("XOAUTH2 with unknown token -> 535", False, "accepted")
        except smtplib.SMTPAuthenticationError as e:
            check("XOAUTH2 with unknown token -> 535", e.smtp_code == 535, e)
    with smtplib.SMTP(HOST, SMTP_PORT, timeout=10) as s:
        s.ehlo("selftest.local")
        code, _ = s.auth("XOAUTH2", xoauth2(alice, token))
        check("XOAUTH2 with issued token -> 235", code == 235, code)
        s.send_message(build_mail("bob@example.test", "XOAUTH2 mail"), to_addrs=["bob@example.test", "carol@example.test"])

    with smtplib.SMTP(HOST, SMTP_PORT, timeout=10) as s:
        s.ehlo("selftest.local")
        code, _ = s.login("plain-user@example.test", SINK_PASSWORD)  # smtplib picks PLAIN
        check("PLAIN login -> 235", code == 235, code)
        plain = EmailMessage()
        plain["From"] = "plain-user@example.test"
        plain["To"] = "dave@example.test"
        plain["Subject"] = "Plain mail ü"
        plain.set_content("just text ü\n")
        s.send_message(plain)

    with smtplib.SMTP(HOST, SMTP_PORT, timeout=10) as s:
        s.ehlo("selftest.local")
        s.user, s.password = "login-user", SINK_PASSWORD
        code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        check("LOGIN -> 235", code == 235, code)
    with smtplib.SMTP(HOST, SMTP_PORT, timeout=10) as s:
        s.ehlo("selftest.local")
        try:
            s.login("plain-user@example.test", "wrong")
            check("PLAIN with wrong password -> 535", False, "accepted")
        except smtplib.SMTPAuthenticationError as e:
            check("PLAIN with wrong password -> 535", e.smtp_code == 535, e)

    # revoke-all: the old token stops working, a fresh one works
    st, rv = http_json("POST", f"{SINK}/api/tokens/revoke-all")
    check("revoke-all", st == 200 and rv.get("revoked", 0) >= 1, rv)
    with smtplib.SMTP(HOST, SMTP_PORT, timeout=10) as s:
        s.ehlo("selftest.local")
        try:
            s.auth("XOAUTH2", xoauth2(alice, token))
            check("revoked token -> 535", False, "accepted")
        except smtplib.SMTPAuthenticationError as e:
            check("revoked token -> 535", e.smtp_code == 535 and b"Username and Password not accepted" in e.smtp_error, e)
    st, tok2 = http_json("POST", f"{SINK}/oauth2/token", form={
        "grant_type": "refresh_token", "refresh_token": REFRESH_TOKEN, "client_id": "c", "client_secret": "s"})
    with smtplib.SMTP(HOST, SMTP_PORT, timeout=10) as s:
        s.ehlo("selftest.local")
        code, _ = s.auth("XOAUTH2", xoauth2(alice, tok2["access_token"]))
        check("fresh token after revoke -> 235", code == 235, code)

    # read back
    st, msgs = http_json("GET", f"{SINK}/api/messages")
    check("two messages stored", st == 200 and len(msgs) == 2, len(msgs or []))
    m = msgs[0]
    check("xoauth2 mail: from", m["from"] == "Cashvio <no-reply@cashvio.test>" and m["from_address"] == "no-reply@cashvio.test", m["from"])
    check("xoauth2 mail: to = envelope recipients", m["to"] == ["bob@example.test", "carol@example.test"], m["to"])
    check("xoauth2 mail: subject", m["subject"] == "XOAUTH2 mail", m["subject"])
    check("xoauth2 mail: text part", m["text"] == "Hello in plain text.\nSecond line.\n", repr(m["text"]))
    check("xoauth2 mail: html part", "<b>HTML</b>" in m["html"], m["html"])
    att = m["attachments"]
    check("xoauth2 mail: pdf attachment", len(att) == 1 and att[0]["filename"] == "invoice-42.pdf"
          and att[0]["content_type"] == "application/pdf" and att[0]["size"] == len(PDF_BYTES)
          and att[0]["sha256"] == hashlib.sha256(PDF_BYTES).hexdigest(), att)
    check("xoauth2 mail: auth fields", m["auth_mechanism"] == "XOAUTH2" and m["auth_user"] == alice
          and m["auth_token"] == token, (m["auth_mechanism"], m["auth_user"], m["auth_token"]))
    check("xoauth2 mail: message_id, received_at", (m["message_id"] or "").endswith("@cashvio.test>")
          and m["received_at"].endswith("Z"), (m["message_id"], m["received_at"]))
    check("xoauth2 mail: content_type multipart/mixed", m["content_type"] == "multipart/mixed", m["content_type"])
    p = msgs[1]
    check("plain mail: fields", p["auth_mechanism"] == "PLAIN" and p["auth_user"] == "plain-user@example.test"
          and p["auth_token"] is None and p["subject"] == "Plain mail ü" and p["text"] == "just text ü\n"
          and p["html"] == "" and p["attachments"] == [], p)

    st, only = http_json("GET", f"{SINK}/api/messages?to=" + urllib.parse.quote("carol@example.test"))
    check("?to= filter", st == 200 and len(only) == 1 and only[0]["subject"] == "XOAUTH2 mail", len(only or []))
    st, hdrs, raw = http("GET", f"{SINK}/api/messages/0/raw")
    check("raw endpoint", st == 200 and b"Subject: XOAUTH2 mail" in raw and b"invoice-42.pdf" in raw, st)
    check("raw of missing index -> 404", http("GET", f"{SINK}/api/messages/99/raw")[0] == 404)

    st, attempts = http_json("GET", f"{SINK}/api/auth-attempts")
    summary = [(a["mechanism"], a["success"]) for a in attempts]
    # smtplib.login() with a wrong password tries PLAIN, then LOGIN.
    check("auth attempts recorded", summary == [
        ("XOAUTH2", False), ("XOAUTH2", True), ("PLAIN", True), ("LOGIN", True), ("PLAIN", False),
        ("LOGIN", False), ("XOAUTH2", False), ("XOAUTH2", True)], summary)
    check("auth attempt fields", attempts[1]["user"] == alice and attempts[1]["token"] == token, attempts[1])

    st, deleted = http_json("DELETE", f"{SINK}/api/messages")
    check("DELETE /api/messages", st == 200 and http_json("GET", f"{SINK}/api/messages")[1] == [], deleted)


# ------------------------------------------------------------------- moto ---
def moto_s3_kms() -> None:
    import boto3

    kw = dict(endpoint_url=MOTO, region_name="us-east-1",
              aws_access_key_id="test", aws_secret_access_key="test")
    s3 = boto3.client("s3", **kw)
    bucket = "cashvio-selftest-" + secrets.token_hex(4)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="docs/hello.txt", Body=b"hello moto", ContentType="text/plain")
    got = s3.get_object(Bucket=bucket, Key="docs/hello.txt")
    check("S3 CreateBucket/PutObject/GetObject", got["Body"].read() == b"hello moto")
    check("S3 ListBuckets has bucket", bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]])

    kms = boto3.client("kms", **kw)
    key_id = kms.create_key(Description="selftest")["KeyMetadata"]["KeyId"]
    dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    check("KMS GenerateDataKey", len(dk["Plaintext"]) == 32 and len(dk["CiphertextBlob"]) > 0)
    back = kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"]
    check("KMS Decrypt(data key) round-trip", back == dk["Plaintext"])


# ------------------------------------------------------------------- OIDC ---
def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _oidc_login(sub: str, claims: dict, client_id: str, client_secret: str, verifier_override=None):
    """PUT user, POST authorize form, exchange code. Returns (token_status, token_json, nonce, state)."""
    redirect_uri = "http://127.0.0.1:3000/auth/google/callback"
    st, _h, _b = http("PUT", f"{OIDC}/users/{urllib.parse.quote(sub, safe='')}", js=claims)
    check(f"PUT /users/{sub} -> 204", st == 204, st)

    verifier = _b64url(secrets.token_bytes(32))
    challenge = _b64url(hashlib.sha256(verifier.encode()).digest())
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
        "scope": "openid email profile", "state": state, "nonce": nonce,
        "code_challenge": challenge, "code_challenge_method": "S256",
    })
    st, headers, _b = http("POST", f"{OIDC}/oauth2/authorize?{query}", form={"sub": sub})
    location = headers.get("Location", "")
    params = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    check("authorize -> 302 to redirect_uri with code & state", st == 302 and location.startswith(redirect_uri)
          and params.get("state") == [state] and params.get("code"), (st, location))
    code = params["code"][0]
    st, tok = http_json("POST", f"{OIDC}/oauth2/token", form={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
        "client_id": client_id, "client_secret": client_secret,
        "code_verifier": verifier_override or verifier})
    return st, tok, nonce, code, redirect_uri, verifier


def oidc_code_flow() -> None:
    from joserfc import jwk, jwt

    st, conf = http_json("GET", f"{OIDC}/.well-known/openid-configuration")
    check("discovery document", st == 200 and conf["issuer"] == OIDC
          and conf["token_endpoint"] == f"{OIDC}/oauth2/token", conf)
    st, jwks = http_json("GET", conf["jwks_uri"])
    keyset = jwk.KeySet.import_key_set(jwks)
    check("JWKS has an RSA key", st == 200 and jwks["keys"][0]["kty"] == "RSA", jwks)

    client_id, client_secret = "cashvio-local", "cashvio-local-secret"
    for verified in (True, False):
        sub = f"user-{'v' if verified else 'u'}-{secrets.token_hex(3)}"
        email_addr = f"{sub}@example.test"
        st, tok, nonce, *_ = _oidc_login(sub, {"email": email_addr, "email_verified": verified, "name": "Test User"},
                                         client_id, client_secret)
        check(f"token exchange (email_verified={verified})", st == 200 and tok.get("id_token"), (st, tok))
        token = jwt.decode(tok["id_token"], keyset, algorithms=["RS256"])
        c = token.claims
        check(f"id_token RS256 + claims (email_verified={verified})",
              token.header["alg"] == "RS256" and c["iss"] == OIDC and client_id in (c["aud"] if isinstance(c["aud"], list) else [c["aud"]])
              and c["sub"] == sub and c["email"] == email_addr and c["email_verified"] is verified
              and c["nonce"] == nonce, c)
        if isinstance(c["aud"], str):
            check("id_token aud is a string and azp = client_id (Google-like)", c["aud"] == client_id and c.get("azp") == client_id, c)
        else:
            print("note: id_token aud is a JSON array (oidc-provider-mock fallback / OIDC_AUD_ARRAY)")
        st, ui = http_json("GET", conf["userinfo_endpoint"], headers={"Authorization": f"Bearer {tok['access_token']}"})
        check("userinfo", st == 200 and ui.get("email") == email_addr, ui)

    # PKCE is enforced (by our wrapper): a wrong verifier is rejected, and the
    # code stays usable with the right one.
    st, tok, _n, code, redirect_uri, verifier = _oidc_login(
        "pkce-user", {"email": "pkce@example.test", "email_verified": True}, client_id, client_secret,
        verifier_override=_b64url(secrets.token_bytes(32)))
    check("wrong code_verifier -> 400 invalid_grant", st == 400 and tok.get("error") == "invalid_grant", (st, tok))
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    st, tok = http_json("POST", f"{OIDC}/oauth2/token", headers={"Authorization": f"Basic {basic}"}, form={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier})
    check("right code_verifier (client_secret_basic) -> 200", st == 200 and tok.get("id_token"), (st, tok))
    st, ref = http_json("POST", f"{OIDC}/oauth2/token", headers={"Authorization": f"Basic {basic}"}, form={
        "grant_type": "refresh_token", "refresh_token": tok.get("refresh_token", "")})
    check("refresh_token grant", st == 200 and ref.get("access_token"), (st, ref))


def main() -> int:
    section(smtp_xoauth2_and_plain)
    section(moto_s3_kms)
    section(oidc_code_flow)
    passed = sum(1 for _n, ok in RESULTS if ok)
    failed = len(RESULTS) - passed
    print(f"\n{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
