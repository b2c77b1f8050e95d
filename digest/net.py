"""The HTTP client shared by feed polling and downloads: timeouts, redirects, gzip, a User-Agent,
and the rules for which URLs a feed may make us fetch.

``file://`` URLs are read from disk, so local feeds (and the bundled demo) need no server; but
only when the operator named the file, or the feed is itself a local file the operator added.
A feed from the internet can make digest fetch only ``http``/``https`` URLs on public addresses,
on every redirect too (:class:`UrlPolicy`).
"""

from __future__ import annotations

import email.utils
import ipaddress
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from digest import __version__
from digest.errors import FetchError

USER_AGENT = f"digest/{__version__} (self-hosted podcast insight digest)"
_POLICY = "digest_url_policy"  # request extension that carries a UrlPolicy through redirects


@dataclass(frozen=True)
class UrlPolicy:
    """Which URLs one feed's own links (enclosures, transcripts, redirects) may name.

    Attributes:
        allow_file: ``file://`` is allowed only for a feed the operator added as a local file.
        allow_private: Loopback, private, link-local and reserved addresses are allowed only
            for a feed that is itself on such an address or a local file (home labs, tests),
            unless ``fetch.private_addresses`` says ``allow`` or ``block``.
    """

    allow_file: bool = False
    allow_private: bool = False
    trusted: str = ""  # the feed's own URL, which the operator named

    @classmethod
    def for_feed(cls, feed_url: str, private_addresses: str = "auto") -> UrlPolicy:
        """The policy for links found in the feed at ``feed_url``."""
        local = urlsplit(feed_url).scheme == "file"
        if private_addresses == "auto":
            allow_private = local or _private_host(urlsplit(feed_url).hostname or "")
        else:
            allow_private = private_addresses == "allow"
        return cls(allow_file=local, allow_private=allow_private, trusted=feed_url)

    def check(self, url: str) -> None:
        """Raise :class:`FetchError` unless this policy allows fetching ``url``."""
        if url == self.trusted:
            return
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
        except ValueError as exc:
            raise FetchError(f"{url!r}: not a valid URL ({exc})") from None
        if parts.scheme == "file" and self.allow_file:
            return
        if parts.scheme not in {"http", "https"}:
            raise FetchError(f"{url!r}: a feed may only link to http or https URLs, found {parts.scheme or 'none'}")
        if not host:
            raise FetchError(f"{url!r}: expected a host name")
        if not self.allow_private and _private_host(host):
            raise FetchError(
                f"{url}: points at a private or loopback address, refused for a feed from the internet "
                "(fetch.private_addresses = allow permits it)"
            )


def _private_host(host: str) -> bool:
    """Whether ``host`` is, or resolves to, an address that is not on the public internet."""
    try:
        addresses = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except (socket.gaierror, UnicodeError):
            return False  # unresolvable: the request itself will fail with a clear error
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    return any(
        a.is_private or a.is_loopback or a.is_link_local or a.is_reserved or a.is_multicast or a.is_unspecified
        for a in addresses
    )


def _check_request(request: httpx.Request) -> None:
    policy = request.extensions.get(_POLICY)
    if policy is not None:
        policy.check(str(request.url))


def client(timeout: float) -> httpx.Client:
    """An HTTP client that follows redirects, accepts gzip and names the app.

    A request made with :func:`policy_extension` has every URL it visits, redirects
    included, checked against that policy before it is sent.
    """
    return httpx.Client(
        follow_redirects=True,
        timeout=httpx.Timeout(timeout),
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
        event_hooks={"request": [_check_request]},
    )


def policy_extension(policy: UrlPolicy | None) -> dict:
    """Request extensions that make :func:`client` check each URL of a request against ``policy``."""
    return {} if policy is None else {_POLICY: policy}


def read_capped(chunks: Iterator[bytes], url: str, max_bytes: int, deadline: float) -> bytes:
    """The whole body, decompressed, refusing more than ``max_bytes`` or a read past ``deadline``
    (a ``time.monotonic()`` value): a gzip bomb or a server trickling bytes cannot hold a run."""
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > max_bytes:
            raise FetchError(f"{url}: over the {max_bytes:,}-byte cap")
        if time.monotonic() > deadline:
            raise FetchError(f"{url}: still downloading when the deadline passed")
    return bytes(body)


def local_path(url: str) -> Path | None:
    """The file a ``file://`` URL names, else ``None``."""
    parts = urlsplit(url)
    return Path(unquote(parts.path)) if parts.scheme == "file" else None


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
    if (path := local_path(url)) is not None:
        stat = os.stat(path)
        tag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'  # finer than Last-Modified's whole seconds
        if etag == tag:
            return FeedResponse(not_modified=True, etag=etag, modified=modified)
        if stat.st_size > max_bytes:
            raise FetchError(f"{url}: {stat.st_size:,} bytes is over the {max_bytes:,}-byte cap")
        return FeedResponse(
            not_modified=False,
            body=path.read_bytes(),
            etag=tag,
            modified=email.utils.formatdate(stat.st_mtime, usegmt=True),
        )
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if modified:
        headers["If-Modified-Since"] = modified
    until = time.monotonic() + deadline
    with http.stream("GET", url, headers=headers, extensions=policy_extension(policy)) as response:
        if response.status_code == 304:
            return FeedResponse(not_modified=True, etag=etag, modified=modified)
        response.raise_for_status()
        body = read_capped(response.iter_bytes(1 << 16), url, max_bytes, until)
    moved = any(r.status_code in (301, 308) for r in response.history)
    return FeedResponse(
        not_modified=False,
        body=body,
        etag=response.headers.get("ETag"),
        modified=response.headers.get("Last-Modified"),
        moved_to=str(response.url) if moved and str(response.url) != url else None,
        headers=dict(response.headers),
    )
