"""The HTTP client shared by feed polling and downloads: timeouts, redirects, gzip, a User-Agent.

``file://`` URLs are read from disk, so local feeds (and the bundled demo) need no server.
"""

from __future__ import annotations

import email.utils
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from digest import __version__

USER_AGENT = f"digest/{__version__} (self-hosted podcast insight digest)"


def client(timeout: float) -> httpx.Client:
    """An HTTP client that follows redirects, accepts gzip and names the app."""
    return httpx.Client(
        follow_redirects=True,
        timeout=httpx.Timeout(timeout),
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
    )


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


def get_feed(http: httpx.Client, url: str, etag: str | None, modified: str | None) -> FeedResponse:
    """GET a feed with ``If-None-Match`` / ``If-Modified-Since``. Raises ``httpx.HTTPError``."""
    if (path := local_path(url)) is not None:
        stat = os.stat(path)
        tag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'  # finer than Last-Modified's whole seconds
        if etag == tag:
            return FeedResponse(not_modified=True, etag=etag, modified=modified)
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
    response = http.get(url, headers=headers)
    if response.status_code == 304:
        return FeedResponse(not_modified=True, etag=etag, modified=modified)
    response.raise_for_status()
    moved = any(r.status_code in (301, 308) for r in response.history)
    return FeedResponse(
        not_modified=False,
        body=response.content,
        etag=response.headers.get("ETag"),
        modified=response.headers.get("Last-Modified"),
        moved_to=str(response.url) if moved and str(response.url) != url else None,
        headers=dict(response.headers),
    )
