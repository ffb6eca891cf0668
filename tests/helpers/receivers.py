"""Real local receivers for alarm tests: an HTTP webhook receiver (http.server on a
free loopback port) and an SMTP server with STARTTLS and AUTH (aiosmtpd)."""
from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .net import free_port


class WebhookReceiver:
    """Collects POSTs: `.posts` = [(path, headers dict, body text)]; `.status` is the answer code."""

    def __init__(self, status: int = 200) -> None:
        self.posts: list[tuple[str, dict, str]] = []
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):                       # noqa: N802 (http.server's name)
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n).decode("utf-8")
                outer.posts.append((self.path, dict(self.headers), body))
                self.send_response(outer.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "WebhookReceiver":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> list[dict]:
        """The bodies that are JSON payloads (no template)."""
        out = []
        for _, _, b in list(self.posts):
            try:
                out.append(json.loads(b))
            except ValueError:
                pass
        return out


def dead_url() -> str:
    """A loopback URL where nothing listens (a port taken and released)."""
    return f"http://127.0.0.1:{free_port()}/hook"


class SmtpServer:
    """aiosmtpd on a free loopback port: STARTTLS required, AUTH LOGIN/PLAIN with one
    user; `.messages` = [(mail from, rcpt tos, message text)]."""

    def __init__(self, tls: dict[str, Path], user: str = "gw", password: str = "s3cret-pw") -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages: list[tuple[str, list[str], str]] = []
        self.logins: list[str] = []
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):     # noqa: N802 (aiosmtpd's name)
                outer.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                       envelope.content.decode("utf-8", "replace")))
                return "250 OK"

        def auth(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login.decode() == user and auth_data.password.decode() == password
            if ok:
                outer.logins.append(auth_data.login.decode())
            return AuthResult(success=ok)

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(tls["cert"]), str(tls["key"]))
        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, tls_context=ctx,
                                     require_starttls=True, authenticator=auth, auth_require_tls=True,
                                     ready_timeout=60)

    def __enter__(self) -> "SmtpServer":
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()
