"""Fetch what an episode needs: its publisher transcript, or its audio (capped, retried, sniffed)."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from digest import net, publisher_transcripts
from digest.errors import FetchError
from digest.models import Episode, Segment

log = logging.getLogger(__name__)

_RETRY_STATUS = {404, 408, 425, 429, 500, 502, 503, 504}
_AUDIO_MAGIC = (b"ID3", b"RIFF", b"fLaC", b"OggS", b"\x1aE\xdf\xa3", b"#!AMR", b"FORM", b".snd")


def looks_like_audio(head: bytes) -> bool:
    """Whether the first bytes of a file are an audio or video container, not a web page."""
    if head.startswith(_AUDIO_MAGIC) or head[4:8] == b"ftyp":
        return True
    # A bare MPEG audio frame (MP3 / AAC ADTS) starts with an 11-bit sync word.
    return len(head) > 1 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0


@contextmanager
def _stream(
    http: httpx.Client, url: str, policy: net.UrlPolicy, until: float
) -> Iterator[tuple[int | None, Iterator[bytes]]]:
    """The body of ``url`` as chunks, with its declared length; only what ``policy`` allows is opened, only a
    regular file is read, and every read ends by ``until``."""
    policy.check(url)
    if (path := net.local_path(url)) is not None:
        with net.open_local(path, url) as (info, fh):
            yield info.st_size, iter(lambda: fh.read(1 << 16), b"")
        return
    with net.get(http, url, policy=policy, until=until) as response:
        response.raise_for_status()
        length = response.headers.get("Content-Length")
        yield (int(length) if length and length.isdigit() else None), response.iter_bytes()


def _with_retries(action, url: str, retries: int, backoff: float, until: float):
    """Run ``action`` until it succeeds; 404/5xx and timeouts are retried with doubling backoff, but never
    past ``until``: the deadline holds for all tries together."""
    for attempt in range(retries + 1):
        delay = backoff * 2**attempt
        try:
            return action()
        except httpx.HTTPStatusError as exc:
            code = exc.response.status_code
            if code not in _RETRY_STATUS or attempt == retries or time.monotonic() + delay >= until:
                raise FetchError(f"{url}: HTTP {code} after {attempt + 1} tries") from None
        except httpx.TransportError as exc:
            if attempt == retries or time.monotonic() + delay >= until:
                raise FetchError(f"{url}: {type(exc).__name__}: {exc} after {attempt + 1} tries") from None
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # redirect loops, bad gzip, bad URLs
            raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from None
        log.info("retrying %s in %.1fs", url, delay)
        time.sleep(delay)
    raise AssertionError("unreachable")


def download_audio(
    http: httpx.Client,
    url: str,
    dest_dir: Path,
    *,
    policy: net.UrlPolicy,
    max_bytes: int,
    deadline: float,
    retries: int,
    backoff: float,
) -> tuple[Path, str]:
    """Stream an enclosure to ``dest_dir/<sha256><suffix>``.

    Args:
        http: The shared client.
        url: Enclosure URL (http, https, or file where ``policy`` allows it).
        dest_dir: Where the finished file goes; partial downloads never appear there.
        policy: What the episode's feed may make us fetch, redirects included.
        max_bytes: The size cap; a larger file is refused, by its Content-Length or as it streams.
        deadline: Seconds all tries together may take, however slowly bytes arrive.
        retries: Extra tries after a 404, 5xx or network error.
        backoff: Seconds before the first retry, doubled each time.

    Returns:
        The file's path and its SHA-256. Raises :class:`FetchError` otherwise, leaving no
        temporary file behind.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    until = time.monotonic() + deadline

    def attempt() -> tuple[Path, str]:
        fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=".part-")
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            head = b""  # the first bytes, sniffed once 64 have come (chunks may be single bytes)
            with os.fdopen(fd, "wb") as out, _stream(http, url, policy, until) as (length, chunks):
                if length is not None and length > max_bytes:
                    raise FetchError(f"{url}: {length} bytes is over the {max_bytes}-byte cap")
                size = 0
                for chunk in chunks:
                    if len(head) < 64 <= len(head) + len(chunk):
                        _sniff(url, head + chunk)
                    head += chunk[: max(0, 64 - len(head))]
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError(f"{url}: over the {max_bytes}-byte cap")
                    if time.monotonic() > until:
                        raise FetchError(f"{url}: still downloading after the {deadline:g} s deadline")
                    digest.update(chunk)
                    out.write(chunk)
            if len(head) < 64:
                _sniff(url, head)
            suffix = Path(httpx.URL(url).path).suffix.lower()[:6] if "://" in url else ""
            final = dest_dir / f"{digest.hexdigest()}{suffix}"
            shutil.move(tmp, final)
            return final, digest.hexdigest()
        finally:
            tmp.unlink(missing_ok=True)

    return _with_retries(attempt, url, retries, backoff, until)


def _sniff(url: str, head: bytes) -> None:
    """:class:`FetchError` unless a download's first bytes are audio."""
    if not head:
        raise FetchError(f"{url}: expected audio, found an empty body")
    if not looks_like_audio(head[:16]):
        raise FetchError(f"{url}: expected audio, found {_describe(head)}")


def _describe(chunk: bytes) -> str:
    head = chunk[:64].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head")):
        return "an HTML page"
    if head.startswith(b"<"):
        return "an XML or HTML document"
    return f"unknown bytes {chunk[:8]!r}"


def fetch_transcript(
    http: httpx.Client,
    episode: Episode,
    *,
    policy: net.UrlPolicy,
    max_bytes: int,
    deadline: float,
    retries: int,
    backoff: float,
) -> tuple[list[Segment], str] | None:
    """The first publisher transcript that downloads and parses, best format first, with its type.

    Each is read within ``policy`` and ``max_bytes`` (after decompression); all of them, with their
    retries, within ``deadline`` seconds. Returns ``None`` when the episode has none that works, so
    the caller falls back to ASR.
    """
    until = time.monotonic() + deadline
    for link in episode.transcripts:

        def get(url: str = link.url) -> str:
            with _stream(http, url, policy, until) as (_, chunks):
                body = net.read_capped(chunks, url, max_bytes, until)
            return body.decode("utf-8", errors="replace")

        try:
            segments = publisher_transcripts.parse(_with_retries(get, link.url, retries, backoff, until), link.type)
        except Exception as exc:  # a broken or hostile transcript only sends the episode to ASR
            log.warning("episode %s: transcript %s unusable: %s", episode.id, link.url, exc)
            continue
        return segments, link.type
    return None
