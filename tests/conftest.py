"""Shared fixtures: a data directory, a real loopback HTTP server, corpus paths."""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from digest.rss import RssItem
from digest.rss import rss as write_rss

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "corpus"  # real files from other projects; provenance in its MANIFEST.md


class _LoopbackServer(ThreadingHTTPServer):
    """Quiet when a client hangs up (the feed client closes its connections): no traceback on stderr, which a
    CLI test that captures stderr would read as output."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def serve_on_loopback(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """A threading HTTP server on a free loopback port, serving from a daemon thread."""
    httpd = _LoopbackServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def web_base(monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """A free loopback port for `digest serve`, and web.base_url (DIGEST_WEB_BASE_URL) pointing at it."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("DIGEST_WEB_BASE_URL", base)
    return port, base


@contextmanager
def serving(config, port: int) -> Iterator[None]:
    """The archive served (waitress, as `digest serve`) on a loopback port from a daemon thread."""
    from digest.web import make_server

    httpd = make_server(config, "127.0.0.1", port)
    thread = threading.Thread(target=httpd.run, daemon=True)
    thread.start()
    yield
    httpd.trigger.pull_trigger(httpd.close)  # closed by the serving thread itself, never under its select()
    thread.join(5)


@dataclass
class Route:
    """What the test server answers on one path."""

    body: bytes | Callable[[], bytes] = b""
    content_type: str = "application/octet-stream"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    fail_first: int = 0  # answer 404 this many times first, as a CDN does right after publishing
    delay: float = 0.0
    etag: bool = True
    trickle: float = 0.0  # seconds between single bytes of the body, as a stalling server sends them


class FeedServer:
    """A real HTTP server on loopback: ETag/Last-Modified with 304, gzip, redirects, flaky paths."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.log: list[tuple[str, str, int, int]] = []  # (method, path, status, body bytes)
        self.request_headers: list[dict[str, str]] = []
        self.request_bodies: list[bytes] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                server.request_bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                self.do_GET()

            def do_GET(self) -> None:
                server.request_headers.append(dict(self.headers))
                route = server.routes.get(self.path)
                if route is None:
                    return self._send(404, b"<html>not found</html>", "text/html")
                if route.delay:
                    time.sleep(route.delay)
                if route.fail_first > 0:
                    route.fail_first -= 1
                    return self._send(404, b"<html>not yet</html>", "text/html")
                if route.status in (301, 302, 307, 308):
                    return self._send(route.status, b"", "text/plain", route.headers)
                body = route.body() if callable(route.body) else route.body
                headers = dict(route.headers)
                if route.etag:
                    tag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
                    headers["ETag"] = tag
                    headers["Last-Modified"] = "Tue, 24 Nov 2026 10:00:00 GMT"
                    if self.headers.get("If-None-Match") == tag:
                        return self._send(304, b"", route.content_type, headers)
                if "gzip" in self.headers.get("Accept-Encoding", "") and route.content_type.endswith("xml"):
                    body = gzip.compress(body)
                    headers["Content-Encoding"] = "gzip"
                self._send(route.status, body, route.content_type, headers)

            def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
                # Logged before the response goes out: a client may act on it before this thread runs again.
                server.log.append(("GET", self.path, status, len(body)))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                trickle = (server.routes.get(self.path) or Route()).trickle
                try:
                    if trickle:
                        for byte in body:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(trickle)
                    else:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = serve_on_loopback(Handler)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes | Callable[[], bytes] = b"", **kwargs) -> str:
        self.routes[path] = Route(body, **kwargs)
        return self.url(path)

    def hits(self, path: str) -> list[tuple[str, str, int, int]]:
        return [h for h in self.log if h[1] == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FeedServer]:
    s = FeedServer()
    yield s
    s.close()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty DIGEST_HOME; fast retries so failure tests finish quickly."""
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("DIGEST_HOME", str(h))
    monkeypatch.setenv("DIGEST_FETCH_BACKOFF", "0.05")
    monkeypatch.setenv("DIGEST_FEEDS_TIMEOUT", "3")
    monkeypatch.setenv("DIGEST_FETCH_TIMEOUT", "3")
    for key in list(os.environ):
        if key.startswith("DIGEST_") and key not in {
            "DIGEST_HOME",
            "DIGEST_FETCH_BACKOFF",
            "DIGEST_FEEDS_TIMEOUT",
            "DIGEST_FETCH_TIMEOUT",
        }:
            monkeypatch.delenv(key)
    return h


@pytest.fixture
def config(home: Path):
    from digest.config import load

    return load(home)


@pytest.fixture
def store(config):
    from digest.store import Store

    s = Store(config.db_path)
    yield s
    s.close()


def rss(title: str, items: list[dict], extra_ns: str = "") -> bytes:
    """A small RSS document; each item dict has title, guid, date (RFC 822), url, type and optional xml."""
    return write_rss(
        title,
        [
            RssItem(
                i["title"],
                i.get("guid", ""),
                i.get("date"),
                i.get("url", ""),
                i.get("type", "audio/mpeg"),
                xml=i.get("xml", ""),
            )
            for i in items
        ],
        namespaces=extra_ns,
    ).encode()


@dataclass
class SmtpSink:
    """A real SMTP server (aiosmtpd) on loopback that keeps what it receives.

    ``reply`` makes it answer DATA with a given status (e.g. "451 try later"); ``delay``
    makes it hold each message before answering, as a slow server does.
    """

    host: str = "127.0.0.1"
    port: int = 0
    messages: list = field(default_factory=list)
    reply: str | None = None
    reply_times: int = 10**9
    delay: float = 0.0
    controller: object = None
    drop_after_data: bool = False  # keep the message, then hang up instead of answering
    hang_after_data: float = 0.0  # keep the message, then say nothing for this many seconds
    mail_reply: str | None = None  # answer MAIL FROM with this status (e.g. "421 closing")
    rcpt_reply: str | None = None  # answer RCPT TO with this status
    password: str | None = None  # when set, AUTH is offered and only this password is accepted

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        import asyncio
        import email
        import email.policy

        if self.reply and self.reply_times > 0:
            self.reply_times -= 1
            return self.reply
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        if self.drop_after_data:
            server.transport.close()
            return "250 OK"
        if self.hang_after_data:
            await asyncio.sleep(self.hang_after_data)
        if self.delay:
            await asyncio.sleep(self.delay)
        return "250 OK"

    def recipients(self) -> list[str]:
        return [m["To"] for m in self.messages]

    def start(self) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        def authenticate(server, session, envelope, mechanism, auth_data):
            return AuthResult(success=auth_data.password.decode() == self.password, handled=False)  # False: answer 535

        auth = {"authenticator": authenticate, "auth_require_tls": False, "auth_exclude_mechanism": ["LOGIN"]}
        self.controller = Controller(self, hostname=self.host, port=self.port, **(auth if self.password else {}))
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch, home: Path):
    """An SMTP server on loopback, and DIGEST_SMTP_* pointing at it."""
    import socket

    sink = SmtpSink()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        sink.port = s.getsockname()[1]
    sink.start()
    monkeypatch.setenv("DIGEST_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("DIGEST_SMTP_PORT", str(sink.port))
    monkeypatch.setenv("DIGEST_SMTP_SECURITY", "none")
    monkeypatch.setenv("DIGEST_MAIL_FROM", "digest@news.test")
    yield sink
    sink.stop()


CHROMIUM_ARGS = [  # headless on a machine with no network: no background connections, no sandbox as root
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    import shutil

    if not shutil.which("chromium"):
        pytest.skip("needs Debian's chromium (installed by .ci/run)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        yield b
        b.close()
