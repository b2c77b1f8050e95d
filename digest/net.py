"""The HTTP client shared by feed polling and downloads: timeouts, deadlines, redirects, gzip, a
User-Agent, and the rules for which URLs a feed may make us fetch.

``file://`` URLs are read from disk, so local feeds (and the bundled demo) need no server; but
only regular files, and only when the operator named the file or the feed is itself a local file
the operator added. Every other URL a feed yields (its own new URL, enclosures, transcripts,
redirects) passes :class:`UrlPolicy`, and the connection goes to the very address the policy
checked, so a DNS answer that changes between check and connect cannot reach a private address.
A deadline bounds every read of a download, so a server that trickles bytes cannot hold a run.
"""

from __future__ import annotations

import email.utils
import ipaddress
import os
import re
import socket
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import SplitResult, unquote, urlsplit

import httpcore
import httpx

from digest import __version__
from digest.errors import FetchError

USER_AGENT = f"digest/{__version__} (self-hosted podcast insight digest)"
_POLICY = "digest_url_policy"  # request extension that carries a UrlPolicy through redirects
_UNTIL: ContextVar[float | None] = ContextVar("digest_until", default=None)  # this thread's download deadline
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _public(address: str) -> bool:
    """Whether an IP address is on the public internet (not loopback, private, link-local, shared, reserved)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    return ip.is_global and not ip.is_multicast


def _literal(host: str) -> str | None:
    """``host`` as an IP address when it is one, else ``None``."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def _localhost(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


def _named_private(host: str) -> bool:
    """Whether a host is written as a non-public address (``127.0.0.1``, ``10.0.0.5``, ``localhost``)."""
    address = _literal(host)
    return _localhost(host) or (address is not None and not _public(address))


@dataclass(frozen=True)
class UrlPolicy:
    """Which URLs one feed's URLs (its own, its new one, enclosures, transcripts, redirects) may name.

    Attributes:
        allow_file: ``file://`` is allowed only for a feed the operator added as a local file.
        allow_private: Loopback, private, link-local, shared and reserved addresses are allowed only
            for a feed the operator added as a local file or by such an address (``127.0.0.1``,
            ``10.0.0.5``, ``localhost``: home labs, tests), unless ``fetch.private_addresses`` says
            ``allow`` or ``block``. A host *name* never unlocks them: DNS is the feed author's.
        own_url: The feed's URL as the operator gave it: the one URL that may carry credentials, and be
            written as a private address even under ``block``.
    """

    allow_file: bool = False
    allow_private: bool = False
    own_url: str = ""

    @classmethod
    def for_feed(cls, feed_url: str, private_addresses: str = "auto") -> UrlPolicy:
        """The policy for the URLs of the feed at ``feed_url``."""
        try:
            parts = urlsplit(feed_url)
            host = parts.hostname or ""
        except ValueError:
            return cls()
        local = parts.scheme == "file"
        if private_addresses == "auto":
            allow_private = local or _named_private(host)
        else:
            allow_private = private_addresses == "allow"
        return cls(allow_file=local, allow_private=allow_private, own_url=feed_url)

    def check(self, url: str) -> SplitResult:
        """The parts of ``url``; :class:`FetchError` unless its form is allowed: http(s) (or ``file`` where
        allowed), no credentials, no control characters, and an address literal only where allowed.
        Host names are checked when they are resolved (:meth:`addresses`)."""
        if _CONTROL.search(url):
            raise FetchError(f"{url!r}: a URL may not hold control characters")
        try:
            parts = urlsplit(url)
            host, port = parts.hostname or "", parts.port
        except ValueError as exc:
            raise FetchError(f"{url!r}: not a valid URL ({exc})") from None
        if parts.scheme == "file" and self.allow_file:
            return parts
        if parts.scheme not in {"http", "https"}:
            raise FetchError(f"{url!r}: a feed may only link to http or https URLs, found {parts.scheme or 'none'}")
        if not host or port == 0:
            raise FetchError(f"{url!r}: expected a host name")
        if (parts.username is not None or parts.password is not None) and url != self.own_url:
            raise FetchError(f"{url!r}: a URL from a feed may not carry credentials")
        address = _literal(host)
        if address is not None or _localhost(host):
            self._allowed(url, address or "127.0.0.1")
        return parts

    def addresses(self, url: str, host: str, *, unresolved_ok: bool = False) -> list[str]:
        """``host`` resolved once, to the addresses this policy allows; :class:`FetchError` when any is
        refused (a name that resolves to a private address is not a public server), or when the name
        does not resolve, unless ``unresolved_ok``."""
        if (address := _literal(host)) is not None:
            return [self._allowed(url, address)]
        try:
            infos, why = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM), "no address"
        except (OSError, UnicodeError) as exc:
            infos, why = [], str(exc)
        found = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not found and not unresolved_ok:
            raise FetchError(f"{url}: cannot resolve {host}: {why}")
        return [self._allowed(url, a) for a in found]

    def _allowed(self, url: str, address: str) -> str:
        own = url == self.own_url and _named_private(urlsplit(url).hostname or "")
        if not (self.allow_private or own or _public(address)):
            raise FetchError(
                f"{url}: points at a private or loopback address ({address}), refused for a feed from the internet "
                "(fetch.private_addresses = allow permits it)"
            )
        return address

    def check_target(self, url: str) -> None:
        """:meth:`check` and, for http(s), :meth:`addresses` of its host (a name that does not resolve now
        is let through: connecting checks it again): what a feed's new URL and OPML entries must pass."""
        parts = self.check(url)
        if parts.scheme in {"http", "https"}:
            self.addresses(url, parts.hostname or "", unresolved_ok=True)


def _remaining(timeout: float | None) -> float | None:
    """``timeout`` cut to the time left before this thread's deadline (a read at the deadline times out)."""
    until = _UNTIL.get()
    if until is None:
        return timeout
    left = max(until - time.monotonic(), 0.001)
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every read and write waits no longer than the deadline allows."""

    def __init__(self, inner: httpcore.NetworkStream):
        self.inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, _remaining(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, _remaining(timeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(self, ssl_context, server_hostname: str | None = None, timeout: float | None = None):
        return _DeadlineStream(self.inner.start_tls(ssl_context, server_hostname, _remaining(timeout)))

    def get_extra_info(self, info: str):
        return self.inner.get_extra_info(info)


class _DeadlineBackend(httpcore.SyncBackend):
    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        return _DeadlineStream(super().connect_tcp(host, port, _remaining(timeout), local_address, socket_options))


class _CheckedTransport(httpx.HTTPTransport):
    """Checks each request (every redirect too) against its policy, resolves its host once and connects
    to the address it checked; the name still goes in ``Host`` and in TLS (SNI and certificate)."""

    def __init__(self) -> None:
        super().__init__(trust_env=False)
        # httpx takes no network backend, so its pool is replaced by one whose sockets keep the deadline. No
        # connection is kept for reuse: one is keyed by the address, and another host name there needs its own TLS.
        self._pool = httpcore.ConnectionPool(network_backend=_DeadlineBackend(), max_keepalive_connections=0)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        policy = request.extensions.get(_POLICY)
        if policy is not None:
            url = str(request.url)
            policy.check(url)
            host = request.url.raw_host.decode("ascii")
            address = policy.addresses(url, host)[0]
            if address != _literal(host):
                request = httpx.Request(
                    request.method,
                    request.url.copy_with(host=address),
                    headers=request.headers,
                    stream=request.stream,
                    extensions={**request.extensions, "sni_hostname": host},
                )
        return super().handle_request(request)


def client(timeout: float) -> httpx.Client:
    """An HTTP client that follows redirects, accepts gzip and names the app.

    A request made through :func:`get` has every URL it visits, redirects included, checked
    against its policy and connected to the address checked, within its deadline. Proxy
    variables are ignored: a proxy would resolve names itself.
    """
    return httpx.Client(
        follow_redirects=True,
        timeout=httpx.Timeout(timeout),
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
        transport=_CheckedTransport(),
        trust_env=False,
    )


@contextmanager
def get(
    http: httpx.Client, url: str, *, policy: UrlPolicy, until: float, headers: dict[str, str] | None = None
) -> Iterator[httpx.Response]:
    """A streamed GET of ``url`` within ``policy``; every connect, read and write ends by ``until`` (a
    ``time.monotonic()`` value), however slowly bytes arrive. Raises :class:`FetchError` at the deadline."""
    token = _UNTIL.set(until)
    try:
        with http.stream("GET", url, headers=headers, extensions={_POLICY: policy}) as response:
            yield response
    except httpx.TimeoutException:
        if time.monotonic() < until:
            raise
        raise FetchError(f"{url}: still downloading when the deadline passed") from None
    finally:
        _UNTIL.reset(token)


def read_capped(chunks: Iterator[bytes], url: str, max_bytes: int, until: float) -> bytes:
    """The whole body, decompressed, refusing more than ``max_bytes`` or a read past ``until``
    (a ``time.monotonic()`` value): a gzip bomb or a fast endless body cannot hold a run."""
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > max_bytes:
            raise FetchError(f"{url}: over the {max_bytes:,}-byte cap")
        if time.monotonic() > until:
            raise FetchError(f"{url}: still downloading when the deadline passed")
    return bytes(body)


def local_path(url: str) -> Path | None:
    """The file a ``file://`` URL names, else ``None``."""
    parts = urlsplit(url)
    return Path(unquote(parts.path)) if parts.scheme == "file" else None


@contextmanager
def open_local(path: Path, url: str) -> Iterator[tuple[os.stat_result, IO[bytes]]]:
    """A regular file opened for reading, with its status. Devices, FIFOs, sockets and directories are
    refused without being read (``/dev/zero`` reports size 0 and never ends)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # O_NONBLOCK: opening a FIFO must not wait for a writer
    except OSError as exc:
        raise FetchError(f"{url}: cannot open it: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise FetchError(f"{url}: not a regular file")
    with os.fdopen(fd, "rb") as fh:
        yield info, fh


@dataclass
class FeedResponse:
    """The outcome of a conditional GET of a feed.

    Attributes:
        not_modified: The server answered 304; ``body`` is empty.
        body: The feed document.
        etag: Validator to send next time.
        modified: Validator to send next time.
        moved_to: Set when a permanent redirect (301/308) points elsewhere.
        headers: Response headers, for feedparser's encoding detection.
    """

    not_modified: bool
    body: bytes = b""
    etag: str | None = None
    modified: str | None = None
    moved_to: str | None = None
    headers: dict[str, str] | None = None


def get_feed(
    http: httpx.Client,
    url: str,
    etag: str | None,
    modified: str | None,
    *,
    policy: UrlPolicy,
    max_bytes: int,
    deadline: float,
) -> FeedResponse:
    """GET a feed with ``If-None-Match`` / ``If-Modified-Since``, at most ``max_bytes`` after
    decompression and within ``deadline`` seconds. Raises ``httpx.HTTPError`` or :class:`FetchError`."""
    policy.check(url)
    if (path := local_path(url)) is not None:
        with open_local(path, url) as (info, fh):
            tag = f'"{info.st_mtime_ns:x}-{info.st_size:x}"'  # finer than Last-Modified's whole seconds
            if etag == tag:
                return FeedResponse(not_modified=True, etag=etag, modified=modified)
            body = fh.read(max_bytes + 1)
        if len(body) > max_bytes:
            raise FetchError(f"{url}: over the {max_bytes:,}-byte cap")
        return FeedResponse(
            not_modified=False, body=body, etag=tag, modified=email.utils.formatdate(info.st_mtime, usegmt=True)
        )
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if modified:
        headers["If-Modified-Since"] = modified
    until = time.monotonic() + deadline
    with get(http, url, policy=policy, until=until, headers=headers) as response:
        if response.status_code == 304:
            return FeedResponse(not_modified=True, etag=etag, modified=modified)
        response.raise_for_status()
        body = read_capped(response.iter_bytes(), url, max_bytes, until)
    moved = any(r.status_code in (301, 308) for r in response.history)
    return FeedResponse(
        not_modified=False,
        body=body,
        etag=response.headers.get("ETag"),
        modified=response.headers.get("Last-Modified"),
        moved_to=str(response.url) if moved and str(response.url) != url else None,
        headers=dict(response.headers),
    )
