#!/usr/bin/env python3
"""Local SMTP sink standing in for Gmail's SMTP relay (loopback only).

* SMTP (aiosmtpd) on 127.0.0.1:$SMTP_PORT (default 1025), no TLS, AUTH required
  before MAIL.  Mechanisms: PLAIN, LOGIN (any user, password $SMTP_SINK_PASSWORD)
  and XOAUTH2 (only bearer tokens issued by this sink's token endpoint and not
  expired/revoked).  Failures answer "535 5.7.8 Username and Password not accepted".
* HTTP on 127.0.0.1:$SMTP_HTTP_PORT (default 8025):
    POST   /oauth2/token               refresh_token grant -> access token
    POST   /api/tokens/revoke-all      invalidate every issued access token
    GET    /api/tokens                 issued tokens with expiry / validity
    GET    /api/messages[?to=addr]     received messages (JSON array, newest last)
    DELETE /api/messages               clear messages
    GET    /api/messages/<i>/raw       raw RFC 822 bytes of message i (0-based)
    GET    /api/auth-attempts          every AUTH attempt
    DELETE /api/auth-attempts          clear the attempts list
    POST   /api/reset                  clear messages, attempts and tokens
    GET    /health                     200

Only the standard library and aiosmtpd are used.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import email
import email.policy
import email.utils
import hashlib
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
import warnings
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

log = logging.getLogger("smtp_sink")

GMAIL_535 = "535 5.7.8 Username and Password not accepted"


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def _now() -> float:
    return time.time()


def _rfc3339(ts: float) -> str:
    return (
        datetime.fromtimestamp(ts, tz=timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class Store:
    """Thread-safe in-memory state shared by the SMTP and HTTP sides."""

    def __init__(self, refresh_token: str, token_ttl: int) -> None:
        self._lock = threading.Lock()
        self.refresh_token = refresh_token
        self.token_ttl = token_ttl
        self._messages: list[dict] = []
        self._raw: list[bytes] = []
        self._attempts: list[dict] = []
        self._tokens: dict[str, dict] = {}
        self._seq = 0

    # ---- tokens -------------------------------------------------------
    def issue_token(self, client_id: str | None) -> dict:
        token = "sink-at-" + secrets.token_urlsafe(32)
        now = _now()
        with self._lock:
            self._tokens[token] = {
                "access_token": token,
                "client_id": client_id,
                "issued_at": now,
                "expires_at": now + self.token_ttl,
                "revoked": False,
            }
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl}

    def token_valid(self, token: str) -> bool:
        with self._lock:
            info = self._tokens.get(token)
            return bool(info) and not info["revoked"] and info["expires_at"] > _now()

    def revoke_all(self) -> int:
        with self._lock:
            n = 0
            for info in self._tokens.values():
                if not info["revoked"]:
                    info["revoked"] = True
                    n += 1
            return n

    def tokens(self) -> list[dict]:
        now = _now()
        with self._lock:
            return [
                {
                    "access_token": t["access_token"],
                    "client_id": t["client_id"],
                    "issued_at": _rfc3339(t["issued_at"]),
                    "expires_at": _rfc3339(t["expires_at"]),
                    "revoked": t["revoked"],
                    "valid": (not t["revoked"]) and t["expires_at"] > now,
                }
                for t in self._tokens.values()
            ]

    # ---- auth attempts --------------------------------------------------
    def record_attempt(self, mechanism: str, user: str | None, success: bool, token: str | None = None) -> None:
        entry = {
            "mechanism": mechanism,
            "user": user,
            "success": success,
            "token": token,
            "at": _rfc3339(_now()),
        }
        with self._lock:
            self._attempts.append(entry)
        log.info("AUTH %s user=%r success=%s", mechanism, user, success)

    def attempts(self) -> list[dict]:
        with self._lock:
            return list(self._attempts)

    def clear_attempts(self) -> None:
        with self._lock:
            self._attempts.clear()

    # ---- messages -------------------------------------------------------
    def add_message(self, summary: dict, raw: bytes) -> None:
        with self._lock:
            summary["index"] = len(self._messages)
            self._seq += 1
            summary["id"] = self._seq
            self._messages.append(summary)
            self._raw.append(raw)

    def messages(self) -> list[dict]:
        with self._lock:
            return [dict(m) for m in self._messages]

    def raw(self, index: int) -> bytes | None:
        with self._lock:
            if -len(self._raw) <= index < len(self._raw):
                return self._raw[index]
            return None

    def clear_messages(self) -> int:
        with self._lock:
            n = len(self._messages)
            self._messages.clear()
            self._raw.clear()
            return n

    def reset(self) -> None:
        with self._lock:
            self._messages.clear()
            self._raw.clear()
            self._attempts.clear()
            self._tokens.clear()


# ---------------------------------------------------------------------------
# MIME parsing
# ---------------------------------------------------------------------------

def _addr_list(values: list[str]) -> list[str]:
    return [addr for _name, addr in email.utils.getaddresses(values) if addr]


def _text_of(part) -> str:
    try:
        content = part.get_content()
    except Exception:  # broken charset etc.
        payload = part.get_payload(decode=True) or b""
        content = payload.decode("utf-8", "replace")
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    return content.replace("\r\n", "\n")


def summarize(raw: bytes, mail_from: str, rcpt_tos: list[str], auth: dict | None) -> dict:
    msg = email.message_from_bytes(raw, policy=email.policy.default)

    text_part = msg.get_body(preferencelist=("plain",))
    html_part = msg.get_body(preferencelist=("html",))
    body_parts = {id(p) for p in (text_part, html_part) if p is not None}

    attachments = []
    for part in msg.walk():
        if part.is_multipart() or id(part) in body_parts:
            continue
        disposition = part.get_content_disposition()
        filename = part.get_filename()
        if disposition == "attachment" or filename or (
            part is not msg and part.get_content_maintype() not in ("text", "multipart")
        ):
            data = part.get_payload(decode=True) or b""
            attachments.append(
                {
                    "filename": filename,
                    "content_type": part.get_content_type(),
                    "disposition": disposition,
                    "content_id": part.get("Content-ID"),
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )

    from_header = str(msg.get("From", "") or "")
    from_addrs = _addr_list([from_header]) if from_header else []
    auth = auth or {}
    return {
        "from": from_header,
        "from_address": from_addrs[0] if from_addrs else None,
        "envelope_from": mail_from,
        "to": list(rcpt_tos),
        "header_to": _addr_list([str(v) for v in msg.get_all("To", [])]),
        "cc": _addr_list([str(v) for v in msg.get_all("Cc", [])]),
        "reply_to": _addr_list([str(v) for v in msg.get_all("Reply-To", [])]),
        "subject": str(msg.get("Subject", "") or ""),
        "text": _text_of(text_part) if text_part is not None else "",
        "html": _text_of(html_part) if html_part is not None else "",
        "attachments": attachments,
        "content_type": msg.get_content_type(),
        "message_id": str(msg.get("Message-ID")) if msg.get("Message-ID") else None,
        "date": str(msg.get("Date")) if msg.get("Date") else None,
        "auth_mechanism": auth.get("mechanism"),
        "auth_user": auth.get("user"),
        "auth_token": auth.get("token"),
        "size": len(raw),
        "received_at": _rfc3339(_now()),
    }


# ---------------------------------------------------------------------------
# SMTP side
# ---------------------------------------------------------------------------

class SinkHandler:
    def __init__(self, store: Store, password: str, gmail_challenge: bool) -> None:
        self.store = store
        self.password = password
        self.gmail_challenge = gmail_challenge

    # PLAIN / LOGIN go through aiosmtpd's built-in mechanisms + this authenticator.
    def authenticator(self, server, session, envelope, mechanism, auth_data):
        user = None
        ok = False
        if isinstance(auth_data, LoginPassword):
            user = auth_data.login.decode("utf-8", "replace")
            ok = secrets.compare_digest(auth_data.password, self.password.encode())
        self.store.record_attempt(mechanism, user, ok)
        if ok:
            return AuthResult(
                success=True,
                auth_data={"mechanism": mechanism, "user": user, "token": None},
            )
        return AuthResult(success=False, handled=False, message=GMAIL_535)

    # Custom mechanism: aiosmtpd picks up handler methods named auth_<MECH>.
    async def auth_XOAUTH2(self, server, args):
        if len(args) == 1:
            blob = await server.challenge_auth("", encode_to_b64=False)
            if not isinstance(blob, bytes):  # MISSING: aborted / bad base64 (already answered)
                self.store.record_attempt("XOAUTH2", None, False)
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = base64.b64decode(args[1].encode(), validate=True)
            except (binascii.Error, ValueError):
                self.store.record_attempt("XOAUTH2", None, False)
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)

        user, token = None, None
        for field in blob.decode("utf-8", "replace").split("\x01"):
            if field.startswith("user="):
                user = field[len("user="):]
            elif field.lower().startswith("auth="):
                value = field[len("auth="):].strip()
                if value.lower().startswith("bearer "):
                    token = value[len("bearer "):].strip()

        ok = bool(user) and bool(token) and self.store.token_valid(token)
        self.store.record_attempt("XOAUTH2", user, ok, token)
        if ok:
            return AuthResult(
                success=True,
                auth_data={"mechanism": "XOAUTH2", "user": user, "token": token},
            )
        if self.gmail_challenge:
            # Gmail first sends a 334 with a base64 JSON error, waits for the
            # client's (empty) answer, then sends 535.
            err = json.dumps({"status": "400", "schemes": "Bearer", "scope": "https://mail.google.com/"})
            await server.push("334 " + base64.b64encode(err.encode()).decode())
            await server._reader.readline()
        await server.push(GMAIL_535)
        return AuthResult(success=False, handled=True)

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        try:
            summary = summarize(raw, envelope.mail_from, envelope.rcpt_tos, session.auth_data)
        except Exception as exc:  # never lose a message because of a parse error
            log.exception("could not parse message")
            summary = {
                "from": None, "to": list(envelope.rcpt_tos), "subject": None,
                "text": "", "html": "", "attachments": [], "parse_error": str(exc),
                "envelope_from": envelope.mail_from,
                "auth_mechanism": (session.auth_data or {}).get("mechanism"),
                "auth_user": (session.auth_data or {}).get("user"),
                "auth_token": (session.auth_data or {}).get("token"),
                "message_id": None, "received_at": _rfc3339(_now()), "size": len(raw),
            }
        self.store.add_message(summary, raw)
        log.info(
            "message #%s from=%r to=%r subject=%r auth=%s attachments=%d",
            summary.get("index"), summary.get("envelope_from"), summary.get("to"),
            summary.get("subject"), summary.get("auth_mechanism"), len(summary.get("attachments", [])),
        )
        return "250 2.0.0 OK: queued"


# ---------------------------------------------------------------------------
# HTTP side
# ---------------------------------------------------------------------------

def make_http_handler(store: Store, client_id: str | None, client_secret: str | None):
    class Handler(BaseHTTPRequestHandler):
        server_version = "smtp-sink/1"
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # route to logging/stdout
            log.info("http %s - %s", self.address_string(), fmt % args)

        # -- helpers --
        def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, obj, extra: dict | None = None) -> None:
            self._send(status, json.dumps(obj, indent=1).encode(), "application/json", extra)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length > 0 else b""

        def _path(self):
            parts = urlsplit(self.path)
            return parts.path.rstrip("/") or "/", parse_qs(parts.query)

        # -- verbs --
        def do_GET(self):
            path, query = self._path()
            if path == "/health":
                return self._json(200, {"status": "ok"})
            if path == "/api/messages":
                msgs = store.messages()
                for want in query.get("to", []):
                    want = want.strip().lower()
                    msgs = [
                        m for m in msgs
                        if want in [a.lower() for a in (m.get("to") or [])]
                        or want in [a.lower() for a in (m.get("header_to") or [])]
                    ]
                return self._json(200, msgs)
            if path.startswith("/api/messages/") and path.endswith("/raw"):
                idx = path[len("/api/messages/"):-len("/raw")]
                try:
                    raw = store.raw(int(idx))
                except ValueError:
                    raw = None
                if raw is None:
                    return self._json(404, {"error": "no such message"})
                return self._send(200, raw, "message/rfc822")
            if path.startswith("/api/messages/"):
                try:
                    idx = int(path[len("/api/messages/"):])
                    return self._json(200, store.messages()[idx])
                except (ValueError, IndexError):
                    return self._json(404, {"error": "no such message"})
            if path == "/api/auth-attempts":
                return self._json(200, store.attempts())
            if path == "/api/tokens":
                return self._json(200, store.tokens())
            return self._json(404, {"error": "not found"})

        do_HEAD = do_GET

        def do_DELETE(self):
            path, _ = self._path()
            if path == "/api/messages":
                return self._json(200, {"deleted": store.clear_messages()})
            if path == "/api/auth-attempts":
                store.clear_attempts()
                return self._json(200, {"deleted": True})
            return self._json(404, {"error": "not found"})

        def do_POST(self):
            path, _ = self._path()
            body = self._body()
            if path == "/oauth2/token":
                return self._token(body)
            if path == "/api/tokens/revoke-all":
                return self._json(200, {"revoked": store.revoke_all()})
            if path == "/api/reset":
                store.reset()
                return self._json(200, {"reset": True})
            return self._json(404, {"error": "not found"})

        def _token(self, body: bytes):
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            params: dict[str, str] = {}
            if ctype == "application/json":
                try:
                    params = {k: str(v) for k, v in json.loads(body or b"{}").items()}
                except (ValueError, AttributeError):
                    return self._json(400, {"error": "invalid_request"})
            else:
                params = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}

            cid, csecret = params.get("client_id"), params.get("client_secret")
            authz = self.headers.get("Authorization") or ""
            if authz.lower().startswith("basic "):
                try:
                    decoded = base64.b64decode(authz[6:].strip()).decode("utf-8")
                    u, _, p = decoded.partition(":")
                    cid, csecret = unquote(u), unquote(p)
                except (binascii.Error, UnicodeDecodeError):
                    return self._json(401, {"error": "invalid_client"})
            if (client_id and cid != client_id) or (client_secret and csecret != client_secret):
                log.info("token request rejected: invalid client %r", cid)
                return self._json(401, {"error": "invalid_client"})

            grant = params.get("grant_type")
            if grant != "refresh_token":
                return self._json(400, {"error": "unsupported_grant_type"})
            if params.get("refresh_token") != store.refresh_token:
                log.info("token request rejected: invalid_grant (client %r)", cid)
                return self._json(400, {"error": "invalid_grant", "error_description": "Bad Request"})
            token = store.issue_token(cid)
            log.info("issued access token for client %r (ttl %ss)", cid, token["expires_in"])
            return self._json(200, token)

    return Handler


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=_env_int("SMTP_PORT", 1025))
    parser.add_argument("--http-port", type=int, default=_env_int("SMTP_HTTP_PORT", 8025))
    args = parser.parse_args()

    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # aiosmtpd warns on every connection that AUTH is allowed without TLS; that
    # is the point here (loopback only), so keep the log readable.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")

    store = Store(
        refresh_token=os.environ.get("SMTP_SINK_REFRESH_TOKEN", "local-refresh-token"),
        token_ttl=_env_int("SMTP_SINK_TOKEN_TTL", 3600),
    )
    handler = SinkHandler(
        store,
        password=os.environ.get("SMTP_SINK_PASSWORD", "sink-password"),
        gmail_challenge=os.environ.get("SMTP_SINK_XOAUTH2_GMAIL_CHALLENGE", "") not in ("", "0", "false"),
    )

    controller = Controller(
        handler,
        hostname=args.host,
        port=args.smtp_port,
        server_hostname="smtp-sink.local",
        auth_required=True,
        auth_require_tls=False,
        authenticator=handler.authenticator,
        enable_SMTPUTF8=True,
        data_size_limit=50 * 1024 * 1024,
    )
    controller.start()
    log.info("SMTP listening on %s:%s", args.host, args.smtp_port)

    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    httpd = ThreadingHTTPServer(
        (args.host, args.http_port),
        make_http_handler(
            store,
            client_id=os.environ.get("SMTP_SINK_CLIENT_ID") or None,
            client_secret=os.environ.get("SMTP_SINK_CLIENT_SECRET") or None,
        ),
    )
    log.info("HTTP listening on http://%s:%s", args.host, args.http_port)

    def _stop(signum, _frame):
        log.info("signal %s: shutting down", signum)
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
        controller.stop()
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
