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
def _stream(http: httpx.Client, url: str, policy: net.UrlPolicy) -> Iterator[tuple[int | None, Iterator[bytes]]]:
    """The body of ``url`` as chunks, with its declared length; only what ``policy`` allows is opened."""
    policy.check(url)
    if (path := net.local_path(url)) is not None:
        if not path.is_file():
            raise FetchError(f"{url}: no such file")
        with path.open("rb") as fh:
            yield path.stat().st_size, iter(lambda: fh.read(1 << 16), b"")
        return
    with http.stream("GET", url, extensions=net.policy_extension(policy)) as response:
        response.raise_for_status()
        length = response.headers.get("Content-Length")
        yield (int(length) if length and length.isdigit() else None), response.iter_bytes(1 << 16)


def _with_retries(action, url: str, retries: int, backoff: float):
    """Run ``action`` until it succeeds; 404/5xx and timeouts are retried with doubling backoff."""
    for attempt in range(retries + 1):
        try:
            return action()
        except httpx.HTTPStatusError as exc:
            code = exc.response.status_code
            if code not in _RETRY_STATUS or attempt == retries:
                raise FetchError(f"{url}: HTTP {code} after {attempt + 1} tries") from None
        except httpx.TransportError as exc:
            if attempt == retries:
                raise FetchError(f"{url}: {type(exc).__name__}: {exc} after {attempt + 1} tries") from None
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # redirect loops, bad gzip, bad URLs
            raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from None
        delay = backoff * 2**attempt
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
        deadline: Seconds one try may take in all.
        retries: Extra tries after a 404, 5xx or network error.
        backoff: Seconds before the first retry, doubled each time.

    Returns:
        The file's path and its SHA-256. Raises :class:`FetchError` otherwise, leaving no
        temporary file behind.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)

    def attempt() -> tuple[Path, str]:
        fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=".part-")
        tmp = Path(tmp_name)
        until = time.monotonic() + deadline
        try:
            digest = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as out, _stream(http, url, policy) as (length, chunks):
                if length is not None and length > max_bytes:
                    raise FetchError(f"{url}: {length} bytes is over the {max_bytes}-byte cap")
                for chunk in chunks:
                    if size == 0 and not looks_like_audio(chunk[:16]):
                        raise FetchError(f"{url}: expected audio, found {_describe(chunk)}")
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError(f"{url}: over the {max_bytes}-byte cap")
                    if time.monotonic() > until:
                        raise FetchError(f"{url}: still downloading after the {deadline:g} s deadline")
                    digest.update(chunk)
                    out.write(chunk)
            if size == 0:
                raise FetchError(f"{url}: expected audio, found an empty body")
            suffix = Path(httpx.URL(url).path).suffix.lower()[:6] if "://" in url else ""
            final = dest_dir / f"{digest.hexdigest()}{suffix}"
            shutil.move(tmp, final)
            return final, digest.hexdigest()
        finally:
            tmp.unlink(missing_ok=True)

    return _with_retries(attempt, url, retries, backoff)


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

    Each is read within ``policy``, ``max_bytes`` (after decompression) and ``deadline`` seconds.
    Returns ``None`` when the episode has none that works, so the caller falls back to ASR.
    """
    for link in episode.transcripts:

        def get(url: str = link.url) -> str:
            with _stream(http, url, policy) as (_, chunks):
                body = net.read_capped(chunks, url, max_bytes, time.monotonic() + deadline)
            return body.decode("utf-8", errors="replace")

        try:
            segments = publisher_transcripts.parse(_with_retries(get, link.url, retries, backoff), link.type)
        except Exception as exc:  # a broken or hostile transcript only sends the episode to ASR
            log.warning("episode %s: transcript %s unusable: %s", episode.id, link.url, exc)
            continue
        return segments, link.type
    return None
