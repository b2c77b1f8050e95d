"""The web archive as a WSGI application: read-only pages, plus subscribe and unsubscribe (CSRF-safe).

``create_app(config)`` is the WSGI callable any server can run
(``gunicorn 'digest.web:create_app(digest.load())'``); ``digest serve`` runs it on waitress.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date as Date
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

from digest import render, signing
from digest.archive import KINDS, Archive, Filters
from digest.config import Config
from digest.deliver import DeliveryError, send_confirmation, validate_address
from digest.errors import ConfigError, DigestError, NotFoundError
from digest.models import Episode, Quote, Segment, SubscriberStatus
from digest.proxy import client_address, trusted_networks
from digest.rank import audio_link
from digest.store import Store
from digest.web_readers import FEEDBACK, ReaderPages

log = logging.getLogger(__name__)
_MAX_FORM = 16 * 1024
_SWEEP_AT = 10_000  # client addresses remembered for the subscribe rate limit before stale ones are dropped
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass
class Request:
    """What a view sees of a request: HEAD arrives as GET."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    client: str = ""


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class App:
    """The WSGI application: routes requests to pages. One store per thread; the embedding model is
    shared behind a lock."""

    def __init__(self, config: Config):
        self.config = config
        self.local = threading.local()
        self.lock = threading.Lock()
        self._embedder = None
        self._subscribes: dict[str, list[float]] = {}  # client or target address -> times of recent subscribes
        self.proxies = trusted_networks(config["web.trusted_proxies"])
        self.readers = ReaderPages(self)
        self.routes: list[tuple[str, str, Callable[..., Response]]] = [
            ("GET", r"/", self.home),
            ("GET", r"/archive", self.archive),
            ("GET", r"/digest/(\d{4}-\d{2}-\d{2})", self.digest_page),
            ("GET", r"/digest/(\d{4}-\d{2}-\d{2})\.json", self.digest_json),
            ("GET", r"/insight/(\d+)", self.insight_page),
            ("GET", r"/episode/(\d+)", self.episode_page),
            ("GET", r"/show/(\d+)", self.show_page),
            ("GET", r"/search", self.search_page),
            ("GET", r"/api/search", self.search_json),
            ("GET", r"/feed\.xml", self.atom),
            ("GET", r"/feed\.json", self.json_feed),
            ("GET", r"/subscribe", self.subscribe_form),
            ("POST", r"/subscribe", self.subscribe),
            ("GET", r"/confirm/([\w.-]+)", self.confirm_form),
            ("POST", r"/confirm/([\w.-]+)", self.confirm),
            ("GET", r"/unsubscribe/([\w.-]+)", self.unsubscribe_form),
            ("POST", r"/unsubscribe/([\w.-]+)", self.unsubscribe),
            ("GET", r"/preferences/([\w.-]+)", self.readers.preferences_form),
            ("POST", r"/preferences/([\w.-]+)", self.readers.preferences),
            ("GET", FEEDBACK, self.readers.feedback_form),
            ("POST", FEEDBACK, self.readers.feedback),
        ]

    # plumbing

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        try:
            response = self.handle(self._request(environ, method))
        except _BadRequest as exc:
            response = Response(exc.status, str(exc).encode(), "text/plain; charset=utf-8")
        except Exception:  # one bad request must not take the server down
            log.exception("error serving %s %s", method, environ.get("PATH_INFO"))
            response = Response(500, b"internal error", "text/plain; charset=utf-8")
        headers = {
            **SECURITY_HEADERS,
            "Content-Type": response.content_type,
            "Content-Length": str(len(response.body)),
            **response.headers,
        }
        start_response(f"{response.status} {HTTPStatus(response.status).phrase}", list(headers.items()))
        return [b"" if method == "HEAD" else response.body]

    def _request(self, environ: dict[str, Any], method: str) -> Request:
        """The request's parts, read within bounds: a bad length or an oversized form is a 4xx, not a hang."""
        path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace")
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        form: dict[str, str] = {}
        if method == "POST":
            raw = environ.get("CONTENT_LENGTH") or "0"
            if not raw.isdigit():
                raise _BadRequest(400, f"expected a Content-Length in bytes, found {raw!r}")
            if int(raw) > _MAX_FORM:
                raise _BadRequest(413, f"forms here are at most {_MAX_FORM} bytes")
            body = environ["wsgi.input"].read(int(raw)).decode("utf-8", "replace")
            form = {k: v[0] for k, v in parse_qs(body).items()}
        try:
            cookies = {k: m.value for k, m in SimpleCookie(environ.get("HTTP_COOKIE", "")).items()}
        except CookieError:
            cookies = {}
        return Request(
            "GET" if method == "HEAD" else method,
            path.rstrip("/") or "/",
            query,
            form,
            cookies,
            client_address(environ.get("REMOTE_ADDR", ""), environ.get("HTTP_X_FORWARDED_FOR", ""), self.proxies),
        )

    @property
    def store(self) -> Store:
        if not hasattr(self.local, "store"):
            self.local.store = Store(self.config.db_path)
        return self.local.store

    def archive_search(self) -> Archive:
        """This thread's archive, which keeps its vector indexes loaded between requests."""
        if not hasattr(self.local, "archive"):
            self.local.archive = Archive(self.config, self.store, self.embedder())
        return self.local.archive

    def embedder(self):
        with self.lock:
            if self._embedder is None:
                from digest.embed import get_embedder

                self._embedder = _LockedEmbedder(get_embedder(self.config))
            return self._embedder

    def handle(self, request: Request) -> Response:
        allowed = []
        for method, pattern, view in self.routes:
            match = re.fullmatch(pattern, request.path)
            if match and method != request.method:
                allowed.append(method)
            elif match:
                try:
                    return view(request, *match.groups())
                except NotFoundError as exc:
                    return self.form_page(404, "Not found", str(exc))
                except signing.BadToken as exc:
                    return self.form_page(400, "That link does not work", message=str(exc))
        if allowed:
            return Response(405, b"method not allowed", "text/plain", {"Allow": ", ".join(allowed)})
        return self.form_page(404, "Not found", message="There is no page here.")

    def page(self, status: int, template: str, **context) -> Response:
        html = render.environment().get_template(template).render(**context)
        return Response(status, html.encode())

    def form_page(
        self,
        status: int,
        heading: str,
        message: str | None = None,
        *,
        action: str | None = None,
        button: str = "",
        csrf: str | None = None,
        ask_email: bool = False,
        one_click: bool = False,
    ) -> Response:
        """A message, optionally with a one-button form."""
        return self.page(
            status,
            "web_form.html.j2",
            heading=heading,
            message=message,
            action=action,
            button=button,
            csrf=csrf,
            ask_email=ask_email,
            one_click=one_click,
        )

    def json(self, data) -> Response:
        return Response(200, json.dumps(data, ensure_ascii=False, indent=2).encode(), "application/json")

    # pages

    def home(self, request: Request) -> Response:
        dates = self.store.digest_dates()
        if not dates:
            return self.page(200, "web_empty.html.j2")
        return self.digest_page(request, dates[0])

    def digest_page(self, request: Request, day: str) -> Response:
        digest = self.store.digest(day)
        return self.page(
            200,
            "web_digest.html.j2",
            digest=digest,
            date_long=render.long_date(day),
            insight_ids=self.store.insight_ids(day),
        )

    def digest_json(self, request: Request, day: str) -> Response:
        return self.json(self.store.digest(day).to_json(base=self.config.url("")))

    def archive(self, request: Request) -> Response:
        digests = [(d, len(self.store.insight_ids(d))) for d in self.store.digest_dates()]
        return self.page(200, "web_archive.html.j2", digests=digests, feeds=self.store.feeds())

    def insight_page(self, request: Request, insight_id: str) -> Response:
        """One story: the insight, the shows that said it, and each quote within its passage."""
        day, insight = self.store.insight_row(int(insight_id))
        sources = [self._source(q) for q in insight.quotes]
        first = min(sources, key=lambda s: s.episode.published or day, default=None)
        others = [name for name in insight.show_names if first is None or name != first.quote.show]
        return self.page(
            200,
            "web_insight.html.j2",
            date=day,
            insight=insight,
            sources=sources,
            first=first,
            others=others,
            feedback=self.readers.actions(request, day, insight.rank),
        )

    def _source(self, quote: Quote) -> Source:
        segments = self.store.segments(quote.episode_id)
        at = max((n for n, s in enumerate(segments) if int(s.start) <= quote.anchor), default=0)
        return Source(quote, self.store.episode(quote.episode_id), segments[max(0, at - 1) : at + 2])

    def episode_page(self, request: Request, episode_id: str) -> Response:
        episode = self.store.episode(int(episode_id))
        return self.page(
            200, "web_episode.html.j2", episode=episode, segments=self.store.segments(episode.id), audio_link=audio_link
        )

    def show_page(self, request: Request, feed_id: str) -> Response:
        feed = self.store.feed(int(feed_id))
        return self.page(200, "web_show.html.j2", feed=feed, episodes=self.store.feed_episodes(feed.id))

    def _search(self, request: Request):
        q = request.query.get("q", "").strip()[:500]
        kind = request.query.get("kind") or None
        f = Filters(
            kind if kind in KINDS else None,
            request.query.get("show") or None,
            _date(request.query.get("since")),
            _date(request.query.get("until")),
            limit=min(100, int(limit)) if (limit := request.query.get("limit", "")).isdigit() else 20,
        )
        hits = self.archive_search().search(q, f) if q else []
        return q, f, hits

    def search_page(self, request: Request) -> Response:
        q, f, hits = self._search(request)
        return self.page(200, "web_search.html.j2", q=q, filters=f, hits=hits, kinds=KINDS, error=None)

    def search_json(self, request: Request) -> Response:
        q, _, hits = self._search(request)
        return self.json({"query": q, "hits": [h.__dict__ for h in hits]})

    # feeds of the daily digests

    def _recent(self, n: int = 30):
        return [self.store.digest(d) for d in self.store.digest_dates()[:n]]

    def atom(self, request: Request) -> Response:
        digests = self._recent()
        entries = [(d, _title(d), self._feed_html(d)[1]) for d in digests]
        body = (
            render.environment()
            .get_template("web_atom.xml.j2")
            .render(base=self.config.url(""), entries=entries, updated=digests[0].date if digests else "1970-01-01")
        )
        return Response(200, body.encode(), "application/atom+xml; charset=utf-8")

    def json_feed(self, request: Request) -> Response:
        base = self.config.url("").rstrip("/")
        items = []
        for d in self._recent():
            text, html = self._feed_html(d)
            items.append(
                {
                    "id": f"{base}/digest/{d.date}",
                    "url": f"{base}/digest/{d.date}",
                    "title": _title(d),
                    "content_html": html,
                    "content_text": text,
                    "date_published": f"{d.date}T06:00:00Z",
                }
            )
        feed = {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "Daily podcast insights",
            "home_page_url": f"{base}/",
            "feed_url": f"{base}/feed.json",
            "items": items,
        }
        return Response(200, json.dumps(feed, ensure_ascii=False).encode(), "application/feed+json")

    def _feed_html(self, d) -> tuple[str, str]:
        env = render.environment()
        card = getattr(env.get_template("_insight.html.j2").module, "insight_card")  # noqa: B009
        html = "".join(card(i, base=self.config.url("")) for i in d.insights)
        text = "\n".join(f"{i.rank}. {i.text} (said on {i.shows} shows)" for i in d.insights)
        return text, html

    # subscribe, confirm, unsubscribe: the only writes

    def csrf_pair(self) -> tuple[str, str]:
        nonce = secrets.token_urlsafe(16)
        return nonce, signing.sign(self.config, "csrf", nonce)

    def subscribe_form(self, request: Request, message: str | None = None, status: int = 200) -> Response:
        nonce, token = self.csrf_pair()
        response = self.form_page(
            status,
            "Subscribe to the daily digest",
            action="/subscribe",
            csrf=token,
            ask_email=True,
            button="Subscribe",
            message=message or "Five insights a day, each with its quotes and a link to the second in the audio.",
        )
        response.headers["Set-Cookie"] = f"csrf={nonce}; Path=/; HttpOnly; SameSite=Strict"
        return response

    def csrf_ok(self, request: Request) -> bool:
        """Whether a form's signed CSRF token matches the nonce of its cookie."""
        try:
            nonce = signing.verify(self.config, "csrf", request.form.get("csrf", ""))
        except signing.BadToken:
            return False
        return bool(nonce) and secrets.compare_digest(nonce, request.cookies.get("csrf", ""))

    def subscribe(self, request: Request) -> Response:
        if not self.csrf_ok(request):
            return self.subscribe_form(request, "The form expired; please try again.", status=403)
        try:
            email = validate_address(request.form.get("email", ""))
        except DeliveryError as exc:
            return self.subscribe_form(request, str(exc), status=400)
        if not (self._within_rate(f"client {request.client}") and self._within_rate(f"to {email}")):
            return self.form_page(429, "Too many requests", message="Please try again in an hour.")
        sub, _ = self.store.add_subscriber(email, status=SubscriberStatus.PENDING)
        if sub.status is SubscriberStatus.PENDING and self.store.claim_confirmation(
            email, self.config["web.confirm_interval"] * 60
        ):
            link = self.config.url(f"confirm/{signing.sign_confirmation(self.config, email)}")
            try:
                send_confirmation(self.config, email, link)
            except DigestError as exc:
                log.warning("confirmation mail to %s failed: %s", email, exc)
                self.store.release_confirmation(email)
                return self.form_page(
                    503, "Try again later", message="We could not send the confirmation mail just now."
                )
        if not self.config.smtp_enabled:
            return self.form_page(
                200,
                "Almost done",
                message=f"This archive sends no mail yet, so the confirmation link for {email} waits in its "
                "outbox folder. Ask whoever runs it to confirm you.",
            )
        return self.form_page(200, "Check your inbox", message=f"We sent a confirmation link to {email}.")

    def _within_rate(self, client: str) -> bool:
        """At most ``web.subscribe_rate`` subscribe requests an hour per key (a client's address, or the
        address to subscribe). Keys with nothing in the last hour are forgotten, so many clients over
        weeks cannot grow the table."""
        now = time.monotonic()
        with self.lock:
            if len(self._subscribes) > _SWEEP_AT:
                self._subscribes = {c: ts for c, ts in self._subscribes.items() if ts and now - ts[-1] < 3600}
            recent = [t for t in self._subscribes.get(client, []) if now - t < 3600]
            allowed = len(recent) < self.config["web.subscribe_rate"]
            self._subscribes[client] = recent + [now] if allowed else recent
        return allowed

    def confirm_form(self, request: Request, token: str) -> Response:
        email = self._confirmable(token)
        return self.form_page(
            200,
            "Confirm your subscription",
            action=f"/confirm/{token}",
            message=f"Send the daily digest to {email}?",
            button="Confirm subscription",
        )

    def _confirmable(self, token: str) -> str:
        """The address of a confirmation link that is unexpired and newer than the address's last change."""
        email, issued = signing.verify_confirmation(self.config, token, self.config["web.confirm_ttl"] * 3600)
        try:
            sub = self.store.subscriber(email)
        except NotFoundError:
            raise signing.BadToken("this confirmation link is no longer valid; please subscribe again") from None
        if sub.status is SubscriberStatus.ACTIVE:
            return email
        if sub.status is not SubscriberStatus.PENDING or issued < signing.epoch(sub.changed or sub.created):
            raise signing.BadToken("this confirmation link is no longer valid; please subscribe again")
        return email

    def confirm(self, request: Request, token: str) -> Response:
        email = self._confirmable(token)
        self.store.add_subscriber(email, status=SubscriberStatus.ACTIVE)
        return self.form_page(200, "You are subscribed", message=f"The next digest goes to {email}.")

    def unsubscribe_form(self, request: Request, token: str) -> Response:
        email = signing.verify(self.config, "unsubscribe", token)
        return self.form_page(
            200,
            "Unsubscribe",
            action=f"/unsubscribe/{token}",
            message=f"Stop sending the daily digest to {email}?",
            button="Unsubscribe",
            one_click=True,
        )

    def unsubscribe(self, request: Request, token: str) -> Response:
        """RFC 8058 one-click: a POST to the link itself; the signed token is the authority."""
        email = signing.verify(self.config, "unsubscribe", token)
        try:
            self.store.set_subscriber_status(email, SubscriberStatus.UNSUBSCRIBED)
        except NotFoundError:
            pass  # already removed: unsubscribing is still done
        return self.form_page(200, "Unsubscribed", message=f"{email} will get no more mail.")


@dataclass
class Source:
    """A quote of an insight page, its episode, and the transcript passage around it."""

    quote: Quote
    episode: Episode
    passage: list[Segment]


class _LockedEmbedder:
    """Serialises a shared embedding model across request threads."""

    def __init__(self, embedder):
        self.inner, self.lock = embedder, threading.Lock()
        self.model_id = embedder.model_id

    def embed(self, texts):
        with self.lock:
            return self.inner.embed(texts)


def _date(value: str | None) -> str | None:
    try:
        return Date.fromisoformat(value).isoformat() if value else None
    except ValueError:
        return None


class _BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _title(d) -> str:
    return f"Top {len(d.insights)} podcast insights — {render.long_date(d.date)}"


def create_app(config: Config) -> App:
    """The WSGI application for ``config``'s archive."""
    return App(config)


def base_url_mismatch(config: Config, host: str, port: int) -> str | None:
    """Why links in mail and pages (``web.base_url``) may not reach a server on ``host:port``, or ``None``."""
    base = urlsplit(config["web.base_url"])
    try:
        base_port = base.port or (443 if base.scheme == "https" else 80)
    except ValueError:
        return f"web.base_url {config['web.base_url']!r} has no valid port"
    loopback = {"127.0.0.1", "localhost", "::1"}
    same_host = base.hostname == host or host in {"0.0.0.0", "::"} or {base.hostname, host} <= loopback
    if base_port == port and same_host:
        return None
    return (
        f"links in mail and pages name {config['web.base_url']} (web.base_url), but this server listens on "
        f"{host}:{port}; set web.base_url (DIGEST_WEB_BASE_URL) to the address readers use, unless a proxy "
        "forwards that one here"
    )


def make_server(config: Config, host: str, port: int) -> Any:
    """A waitress server for the archive, bound and not yet serving: ``.run()`` serves, ``.close()`` stops
    (from another thread, ``.trigger.pull_trigger(server.close)``, so the serving loop closes itself).

    Slow clients cannot hold it: up to ``web.max_connections`` connections are watched with poll()
    (select() stops at 1,024), a connection idle for ``web.timeout`` seconds is closed, and so is one
    whose request has not arrived whole ``web.timeout`` seconds after its first byte. At most
    ``web.threads`` requests run at once; waitress answers malformed requests itself.
    """
    from waitress import create_server
    from waitress.channel import HTTPChannel
    from waitress.server import BaseWSGIServer

    timeout = config["web.timeout"]

    class DeadlineChannel(HTTPChannel):
        """A connection closed when its request is still arriving ``web.timeout`` seconds after it began."""

        began = 0.0

        def received(self, data: bytes) -> bool:
            now = time.monotonic()
            if self.request is None:
                self.began = now
            elif now - self.began > timeout:
                self.will_close = True
                return False
            return super().received(data)

    if not 0 <= port <= 65535:
        raise ConfigError(f"expected a port from 0 to 65535, found {port}")
    _allow_open_files(config["web.max_connections"] + 64)
    listeners: dict = {}
    try:
        server = create_server(
            create_app(config),
            map=listeners,
            host=host,
            port=port,
            threads=config["web.threads"],
            channel_timeout=timeout,
            cleanup_interval=max(1, timeout // 2),
            connection_limit=config["web.max_connections"],
            asyncore_use_poll=True,
            max_request_body_size=_MAX_FORM,
            ident="digest",
            clear_untrusted_proxy_headers=False,  # X-Forwarded-For is read from web.trusted_proxies alone
        )
    except (OSError, ValueError) as exc:  # waitress says ValueError for an address that is not one
        raise ConfigError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    for listener in listeners.values():
        if isinstance(listener, BaseWSGIServer):
            listener.channel_class = DeadlineChannel
    return server


def _allow_open_files(count: int) -> None:
    """Raise this process's open-file limit towards ``count`` as far as the hard limit allows: each
    connection is an open file, and the usual soft limit of 1,024 is below ``web.max_connections``."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (count if hard == resource.RLIM_INFINITY else min(count, hard), hard)
        )
