"""Poll feeds: conditional GET, feedparser, episode identity, transcript links, OPML."""

from __future__ import annotations

import calendar
import codecs
import email.utils
import hashlib
import html
import logging
import re
import time
import unicodedata
import xml.etree.ElementTree as ET
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin, urlsplit

import feedparser
import httpx

from digest import net
from digest.config import Config
from digest.errors import DigestError, FeedError, FetchError
from digest.models import Episode, Feed, Status, TranscriptLink
from digest.rss import PODCAST_NAMESPACE
from digest.store import Store

log = logging.getLogger(__name__)

# Measurement services that wrap the real enclosure URL: host/path prefixes, stripped repeatedly.
_TRACKING_PREFIX = re.compile(
    r"^(?:"
    r"(?:www\.|dts\.)?podtrac\.com/(?:pts/)?redirect\.[a-z0-9]+/"
    r"|chrt\.fm/track/[^/]+/"
    r"|chtbl\.com/track/[^/]+/"
    r"|op3\.dev/e(?:,[^/]*)?/"
    r"|pdst\.fm/e/"
    r"|pfx\.vpixl\.com/[^/]+/"
    r"|mgln\.ai/e/[^/]+/"
    r"|arttrk\.com/p/[^/]+/"
    r"|verifi\.podscribe\.com/rss/p/"
    r"|prfx\.byspotify\.com/e/"
    r"|claritaspod\.com/measure/"
    r"|media\.blubrry\.com/[^/]+/(?:p/)?"
    r"|tracking\.feedpress\.it/link/\d+/\d+/"
    r"|pscrb\.fm/rss/p/"
    r")",
    re.IGNORECASE,
)
_TRANSCRIPT_RANK = {
    "application/json": 0,
    "text/vtt": 1,
    "application/x-subrip": 2,
    "application/srt": 2,
    "text/srt": 2,
    "text/html": 3,
    "text/plain": 4,
}


# Query parameters that track, bust caches or expire; every other parameter may select the content
# (``download.php?ep=7``, ``uc?export=download&id=FILE1``) and stays in the identity.
_VOLATILE_PARAM = re.compile(
    r"^(?:utm_\w+|updated|ts|timestamp|cb|cache|_|source|ref|from|aid|awcollectionid|awepisodeid|expires?|exp"
    r"|signature|sig|token|key-pair-id|policy|x-amz-[\w-]+|hmac|hash)$",
    re.IGNORECASE,
)


def normalize_enclosure_url(url: str) -> str:
    """The stable part of an enclosure URL: no scheme, tracking prefixes, fragment, or query parameters
    that track or expire; parameters that select the content are kept, sorted.

    >>> normalize_enclosure_url("https://chrt.fm/track/38DGD/traffic.megaphone.fm/X.mp3?updated=1")
    'traffic.megaphone.fm/X.mp3'
    >>> normalize_enclosure_url("https://example.com/uc?id=FILE1&export=download&utm_source=rss")
    'example.com/uc?export=download&id=FILE1'
    """
    rest = re.sub(r"^[a-z][a-z0-9+.-]*://", "", url.strip(), flags=re.IGNORECASE)
    rest, _, query = rest.split("#", 1)[0].partition("?")
    params = sorted(p for p in query.split("&") if p and not _VOLATILE_PARAM.match(p.split("=", 1)[0]))
    while True:
        stripped = _TRACKING_PREFIX.sub("", rest, count=1)
        stripped = re.sub(r"^[a-z][a-z0-9+.-]*://", "", stripped, flags=re.IGNORECASE)
        if stripped == rest:
            break
        rest = stripped
    host, _, path = rest.partition("/")
    host = re.sub(r":(80|443)$", "", host.lower()).removeprefix("www.")
    return f"{host}/{path}" + (f"?{'&'.join(params)}" if params else "")


def _normalize_title(title: str) -> str:
    text = unicodedata.normalize("NFKC", html.unescape(title)).casefold()
    return " ".join(re.findall(r"\w+", text))


def identity_keys(episode: Episode) -> list[str]:
    """The identities an episode is known by, strongest first: GUID, enclosure URL, title + exact time.

    The rules, applied by :meth:`digest.store.Store.ingest` and :func:`store_episodes`:

    1. The same GUID is the same episode, whatever its URL or title (a moved file stays one episode).
    2. Two different GUIDs are two episodes, whatever their URLs or titles: a weaker key never merges
       episodes whose stronger keys conflict.
    3. Without a conflicting GUID, the same enclosure URL (tracking prefixes and volatile query
       parameters removed, content-selecting ones kept) is the same episode.
    4. Without a conflicting GUID, the same title at the same exact time is the same episode.
    5. A GUID repeated within one feed document is told apart by its enclosure URL, not merged.
    """
    keys = []
    if episode.guid:
        keys.append(f"guid:{episode.guid.strip()}")
    if episode.enclosure_url:
        keys.append(f"url:{normalize_enclosure_url(episode.enclosure_url)}")
    if episode.title and episode.published:
        keys.append(f"title:{_normalize_title(episode.title)}|{episode.published}")
    return keys


@dataclass
class ParsedFeed:
    """What a feed document holds, ready to store."""

    title: str | None
    new_feed_url: str | None
    episodes: list[Episode] = field(default_factory=list)


def _iso(struct: time.struct_time | None) -> str | None:
    if not struct:
        return None
    try:
        stamp = calendar.timegm(struct)
    except (OverflowError, ValueError):
        return None
    return datetime.fromtimestamp(stamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _enclosure(entry: feedparser.FeedParserDict) -> tuple[str | None, str | None]:
    """The item's audio: its ``<enclosure>``, else an audio or video ``<media:content>``."""
    candidates = [e for e in entry.get("enclosures", []) if e.get("href")]
    media = [e for e in candidates if str(e.get("type", "")).startswith(("audio/", "video/"))]
    chosen = (media or candidates or [None])[0]
    if chosen is not None:
        return chosen["href"].strip(), chosen.get("type")
    for content in entry.get("media_content", []):
        kind = str(content.get("type") or content.get("medium") or "")
        if content.get("url") and kind.startswith(("audio", "video")):
            return content["url"].strip(), content.get("type")
    return None, None


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")


def _clean(text: str | None) -> str | None:
    """A text field from a feed without control characters and NULs (they would break XML, terminals, logs)."""
    return None if text is None else _CONTROL.sub("", text)


def _title(title: str | None, enclosure_url: str | None) -> str:
    """The item's title on one line (``itunes:title`` before ``<title>``, as Apple Podcasts shows it);
    without one, the audio file's name, as podcast apps show it."""
    if text := " ".join((_clean(title) or "").split()):
        return text
    stem = urlsplit(enclosure_url or "").path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return stem or "(untitled)"


def _duration(value: str | None) -> float | None:
    """``itunes:duration`` in seconds: ``HH:MM:SS``, ``MM:SS`` or plain seconds; ``None`` when unreadable."""
    parts = (value or "").strip().split(":")
    if not parts[0] or len(parts) > 3:
        return None
    try:
        seconds = 0.0
        for part in parts:
            seconds = seconds * 60 + float(part)
    except ValueError:
        return None
    return seconds if 0 < seconds < 7 * 24 * 3600 else None


def _resolve(base: str, href: str) -> str:
    """A link relative to the feed made absolute; a malformed one is kept as written, to fail on its own."""
    try:
        return urljoin(base, href)
    except ValueError:
        return href


def _published(entry: feedparser.FeedParserDict) -> str | None:
    """The item's date as ISO 8601 UTC; a date written as epoch seconds too (feedparser misreads those),
    and the broken RFC 822 dates podcast apps still read (:func:`_recover_date`)."""
    raw = str(entry.get("published") or entry.get("updated") or "").strip()
    if raw.isdigit() and 9 <= len(raw) <= 11:
        return datetime.fromtimestamp(int(raw), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return _iso(entry.get("published_parsed") or entry.get("updated_parsed")) or _recover_date(raw)


_BROKEN_TIME = re.compile(r"\b(\d{1,2}):(\d{2})(?::(\d{2})\d*)?\b")


def _recover_date(raw: str) -> str | None:
    """An RFC 822 date with an impossible time, as some publishers write it: hour 24 is midnight of the
    next day ("Tue, 03 Nov 2020 24:28:20 CST"), and extra digits of seconds are dropped ("15:12:352")."""
    match = _BROKEN_TIME.search(raw)
    if not match:
        return None
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    extra = timedelta(days=hour // 24)
    fixed = raw[: match.start()] + f"{hour % 24:02d}:{minute:02d}:{min(second, 59):02d}" + raw[match.end() :]
    parts = email.utils.parsedate_tz(fixed)
    if parts is None or minute > 59:
        return None
    try:
        when = datetime.fromtimestamp(email.utils.mktime_tz(parts), tz=UTC) + extra
    except (OverflowError, ValueError):
        return None
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(match: re.Match[str] | None) -> str | None:
    if match is None:
        return None
    value = re.sub(r"^<!\[CDATA\[(.*)\]\]>$", r"\1", match.group(1).strip(), flags=re.DOTALL)
    return html.unescape(value).strip() or None


def _decoded(body: bytes, encoding: str | None) -> str:
    """The document as text, in the encoding feedparser found (UTF-16 feeds exist), else UTF-8."""
    try:
        return body.decode(encoding or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


_XML_BASE = re.compile(r"""\bxml:base\s*=\s*["']([^"']+)["']""")


def _bases(text: str, url: str, count: int) -> list[str]:
    """The URL each of ``count`` items' relative links resolve against: the feed's URL, then any ``xml:base``
    on ``<rss>``, ``<feed>`` or ``<channel>``, then on the item itself (read from the raw XML, which
    feedparser does not apply to enclosures)."""
    first = re.search(r"<(?:item|entry)\b", text)
    root = url
    for opening in re.finditer(r"<(?:rss|feed|channel)\b([^>]*)>", text[: first.start() if first else len(text)]):
        if found := _XML_BASE.search(opening.group(1)):
            root = _resolve(root, html.unescape(found.group(1)))
    items = re.findall(r"<(?:item|entry)\b([^>]*)>", text)
    if len(items) != count:  # a document the patterns cannot follow: the channel's base for all
        return [root] * count
    return [_resolve(root, html.unescape(m.group(1))) if (m := _XML_BASE.search(a)) else root for a in items]


def raw_transcript_links(text: str) -> dict[str, list[TranscriptLink]]:
    """Every ``<podcast:transcript>`` of every item, keyed by GUID and by enclosure URL.

    feedparser keeps only the last transcript tag of an item, so this reads the raw
    XML with patterns that also work on malformed documents.
    """
    namespace = re.escape(PODCAST_NAMESPACE.split("://", 1)[1])
    prefixes = re.findall(rf'xmlns:([\w.-]+)\s*=\s*["\']https?://{namespace}/?["\']', text)
    prefix = "|".join(re.escape(p) for p in prefixes or ["podcast"])
    tag = re.compile(rf"<(?:{prefix}):transcript\b([^>]*)/?>", re.IGNORECASE)
    found: dict[str, list[TranscriptLink]] = {}
    for item in re.findall(r"<item\b.*?</item>", text, flags=re.DOTALL | re.IGNORECASE):
        links = []
        for attrs in tag.findall(item):
            values = dict(re.findall(r'([\w:-]+)\s*=\s*["\']([^"\']*)["\']', attrs))
            if values.get("url"):
                links.append(
                    TranscriptLink(
                        html.unescape(values["url"]), values.get("type", "text/plain").lower(), values.get("language")
                    )
                )
        if not links:
            continue
        links.sort(key=lambda t: _TRANSCRIPT_RANK.get(t.type, 9))
        guid = _text(re.search(r"<guid\b[^>]*>(.*?)</guid>", item, flags=re.DOTALL))
        enclosure = re.search(r'<enclosure\b[^>]*\burl\s*=\s*["\']([^"\']+)', item)
        if guid:
            found[f"guid:{guid}"] = links
        if enclosure:
            found[f"url:{html.unescape(enclosure.group(1)).strip()}"] = links
    return found


# What feedparser falls back to for a document that is not UTF-8 and declares nothing; detection adds nothing.
_WESTERN = {"cp1252", "windows-1252", "latin_1", "iso-8859-1", "iso8859_15", "ascii", "utf_8"}


def _undeclared_encoding(body: bytes, headers: dict[str, str]) -> bytes | None:
    """A document in a legacy encoding that neither its XML declaration nor HTTP names (Shift_JIS, say),
    re-encoded as UTF-8; ``None`` when the document is UTF-8 or says what it is."""
    if body.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in body[:4]:
        return None  # UTF-8 with a BOM, or UTF-16/32: feedparser reads those itself
    try:
        body.decode("utf-8")
        return None
    except UnicodeDecodeError:
        pass
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    declaration = re.match(rb"\s*<\?xml[^>]*\?>", body)
    if "charset=" in content_type.lower() or (declaration and b"encoding" in declaration.group(0)):
        return None
    import charset_normalizer

    guess = charset_normalizer.from_bytes(body[:200_000]).best()
    if guess is None or guess.encoding.lower() in _WESTERN:
        return None
    rest = body[declaration.end() :] if declaration else body
    return b'<?xml version="1.0" encoding="utf-8"?>' + rest.decode(guess.encoding, errors="replace").encode()


def parse_feed(body: bytes, feed_id: int, url: str, headers: dict[str, str] | None = None) -> ParsedFeed:
    """Parse a feed document; raises :class:`FeedError` when nothing can be recovered."""
    body = _undeclared_encoding(body, headers or {}) or body
    # Descriptions are never shown, so their HTML is neither sanitised nor has its links resolved.
    parsed = feedparser.parse(
        body,
        response_headers={"content-location": url, **(headers or {})},
        resolve_relative_uris=False,
        sanitize_html=False,
    )
    valid_but_empty = bool(parsed.get("version"))  # an RSS or Atom document, even a sloppy one
    if not parsed.entries and not parsed.feed.get("title") and not valid_but_empty:
        cause = parsed.get("bozo_exception")
        raise FeedError(
            f"{url}: expected an RSS or Atom feed, found nothing recoverable" + (f" ({cause})" if cause else "")
        )
    text = _decoded(body, parsed.get("encoding"))
    links = raw_transcript_links(text)
    # feedparser resolves a GUID that looks like a relative URL against the feed's URL; an identity must not
    # change when the feed moves, so each GUID is taken back to what the document says.
    guids = (_text(m) for m in re.finditer(r"<guid\b[^>]*>(.*?)</guid>", text, re.DOTALL))
    as_written = {_resolve(url, g): g for g in guids if g}
    episodes = []
    for entry, base in zip(parsed.entries, _bases(text, url, len(parsed.entries))):
        raw_enclosure, enclosure_type = _enclosure(entry)
        enclosure_url = _resolve(base, raw_enclosure) if raw_enclosure else None
        guid = _clean(as_written.get(entry.get("id") or "", entry.get("id"))) or None
        ep = Episode(
            id=0,
            feed_id=feed_id,
            title=_title(html.unescape(entry.get("itunes_title") or "") or entry.get("title"), enclosure_url),
            guid=guid,
            published=_published(entry),
            enclosure_url=enclosure_url,
            enclosure_type=_clean(enclosure_type),
            link=_clean(entry.get("link")),
            duration=_duration(entry.get("itunes_duration")),
        )
        ep.transcripts = links.get(f"guid:{guid}") or links.get(f"url:{raw_enclosure}") or []
        if not ep.transcripts and (pt := entry.get("podcast_transcript")):
            ep.transcripts = [TranscriptLink(pt["url"], pt.get("type", "text/plain"))]
        for t in ep.transcripts:
            t.url = _resolve(base, t.url)
        if enclosure_url or ep.transcripts:
            episodes.append(ep)
    new_url = (parsed.feed.get("itunes_new-feed-url") or "").strip() or None
    return ParsedFeed(_clean(parsed.feed.get("title")), new_url if new_url != url else None, episodes)


_ITEM = re.compile(rb"<(item|entry)\b[^>]*>.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_RAW_GUID = re.compile(rb"<(?:guid|id)\b[^>]*>(.*?)</(?:guid|id)\s*>", re.DOTALL | re.IGNORECASE)


def unseen_items(body: bytes, seen: bytes | None) -> tuple[bytes | None, bytes]:
    """The document with the items parsed at an earlier poll cut out, and an 8-byte hash of every item's raw XML.

    A big feed with a few new items then costs a parse of those few. The document is parsed whole
    (``None``) on a first poll, when it cannot be cut safely (UTF-16, no items), or when a new item
    has no GUID or shares its GUID with another item: telling those apart needs the whole document.
    """
    items = list(_ITEM.finditer(body))
    digests = [hashlib.blake2b(m.group(0), digest_size=8).digest() for m in items]
    if not seen or not items or b"\x00" in body[:4]:
        return None, b"".join(digests)
    known = {seen[i : i + 8] for i in range(0, len(seen), 8)}
    fresh = [m for m, d in zip(items, digests) if d not in known]
    guids = Counter(g.strip() for g in _RAW_GUID.findall(body))
    for m in fresh:
        guid = _RAW_GUID.search(m.group(0))
        if guid is None or guids[guid.group(1).strip()] > 1:
            return None, b"".join(digests)
    reduced = body[: items[0].start()] + b"".join(m.group(0) for m in fresh) + body[items[-1].end() :]
    return reduced, b"".join(digests)


@dataclass
class Fetched:
    """One feed's download: the response, the parse (``None`` when not modified), and the hashes to keep."""

    response: net.FeedResponse
    parsed: ParsedFeed | None
    body_sha256: str | None = None
    item_hashes: bytes | None = None
    refused: str | None = None  # why the feed's new URL was not taken


@dataclass
class PollResult:
    """One feed's poll: new episode ids, or the error that stopped it."""

    feed: Feed
    new_episodes: list[int] = field(default_factory=list)
    not_modified: bool = False
    error: str | None = None
    first_poll: bool = False  # the feed's first poll: its new episodes may go into today's digest


def _download(http: httpx.Client, feed: Feed, first_poll: bool, config: Config) -> Fetched:
    """Fetch and parse one feed: ``None`` for the parse when the server says the feed is not modified, or
    sends the very body parsed last time; only the items not seen before otherwise (:func:`unseen_items`).
    A new URL the feed names (``itunes:new-feed-url``) must pass the feed's URL policy, or it is refused.
    After an error or a refusal the document is read whole again, so a refusal stays shown while it holds.
    Whatever goes wrong comes out as a :class:`FeedError` for this feed alone."""
    policy = net.UrlPolicy.for_feed(feed.url, config["fetch.private_addresses"])
    whole = first_poll or feed.last_error is not None
    try:
        response = net.get_feed(
            http,
            feed.url,
            None if whole else feed.etag,
            None if whole else feed.modified,
            policy=policy,
            max_bytes=int(config["feeds.max_mb"] * 1024 * 1024),
            deadline=config["feeds.deadline"],
        )
        if response.not_modified:
            return Fetched(response, None)
        body_hash = hashlib.sha256(response.body).hexdigest()
        if not whole and body_hash == feed.body_sha256 and not response.moved_to:
            return Fetched(response, None, body_hash)
        reduced, item_hashes = unseen_items(response.body, None if first_poll else feed.item_hashes)
        url = response.moved_to or feed.url
        parsed = parse_feed(reduced or response.body, feed.id, url, response.headers)
        refused = None
        if parsed.new_feed_url:
            try:
                policy.check_target(parsed.new_feed_url)
            except FetchError as exc:
                refused, parsed.new_feed_url = f"its new URL was refused, {url} is kept: {exc}", None
        return Fetched(response, parsed, body_hash, item_hashes, refused)
    except FeedError:
        raise
    except httpx.TimeoutException:
        raise FeedError(f"{feed.url}: timed out") from None
    except httpx.HTTPStatusError as exc:
        raise FeedError(f"{feed.url}: HTTP {exc.response.status_code}") from None
    except DigestError as exc:
        raise FeedError(str(exc)) from None
    except Exception as exc:  # a hostile or broken feed must never stop the other feeds
        raise FeedError(f"{feed.url}: {type(exc).__name__}: {exc}") from None


def store_episodes(store: Store, feed: Feed, parsed: ParsedFeed, take: int | None = None) -> list[int]:
    """Store a parsed feed's episodes; returns the ids of those that are new.

    Args:
        take: Take only the newest ``take`` as new and mark the rest skipped (first poll).

    Two items of one document that share a title and time but not a GUID or URL are
    different episodes (a republished correction, say), so for them title + time is
    not used as an identity; two that share a GUID are told apart by their enclosure
    (rule 5 of :func:`identity_keys`).
    """
    episodes = sorted(parsed.episodes, key=lambda e: e.published or "", reverse=True)
    keyed = [(ep, identity_keys(ep)) for ep in episodes]
    counts = Counter(k for _, keys in keyed for k in keys if k.startswith(("title:", "guid:")))
    new = []
    with store.transaction():  # one commit for the whole document, and nothing of it on a crash
        for i, (ep, keys) in enumerate(keyed):
            ep.feed_id = feed.id
            url = next((k for k in keys if k.startswith("url:")), "")
            keys = [
                f"{k}|{url}" if k.startswith("guid:") and counts[k] > 1 else k
                for k in keys
                if not k.startswith("title:") or counts[k] == 1
            ]
            status = Status.NEW if take is None or i < take else Status.SKIPPED
            if (episode_id := store.ingest(ep, keys, status)) and status is Status.NEW:
                new.append(episode_id)
    return new


def poll(store: Store, config: Config, feeds: list[Feed] | None = None) -> list[PollResult]:
    """Poll feeds concurrently; the caller's thread alone writes the store.

    A feed that fails is recorded with its error (shown by ``digest feeds list``) and
    the others go on. The first poll of a feed takes its newest
    ``feeds.initial_episodes`` episodes and marks the rest ``skipped``; the run puts those
    of the last ``feeds.backfill_days`` into the day's digest.
    """
    feeds = store.feeds() if feeds is None else feeds
    first = {f.id: f.last_polled is None or not store.episodes(feed_id=f.id, limit=1) for f in feeds}
    results = []
    with (
        net.client(config["feeds.timeout"]) as http,
        ThreadPoolExecutor(max_workers=max(1, config["feeds.concurrency"])) as pool,
    ):
        futures = {f.id: pool.submit(_download, http, f, first[f.id], config) for f in feeds}
        for feed in feeds:
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            try:
                fetched = futures[feed.id].result()
            except FeedError as exc:
                log.info("feed %s failed: %s", feed.url, exc)  # the run's report prints it
                store.record_poll(feed.id, polled_at=now, error=str(exc))
                results.append(PollResult(feed, error=str(exc)))
                continue
            response, parsed = fetched.response, fetched.parsed
            if parsed is None:
                store.record_poll(feed.id, polled_at=now, etag=response.etag, modified=response.modified)
                log.info("feed %s not modified", feed.url)
                results.append(PollResult(feed, not_modified=True))
                continue
            try:
                new = store_episodes(store, feed, parsed, config["feeds.initial_episodes"] if first[feed.id] else None)
            except Exception as exc:  # one feed's bad data must not stop the others
                log.warning("feed %s: could not store its episodes: %s", feed.url, exc)
                store.record_poll(feed.id, polled_at=now, error=f"{type(exc).__name__}: {exc}")
                results.append(PollResult(feed, error=str(exc)))
                continue
            store.record_poll(
                feed.id,
                polled_at=now,
                title=parsed.title,
                etag=response.etag,
                modified=response.modified,
                new_url=parsed.new_feed_url or response.moved_to,
                body_sha256=fetched.body_sha256,
                item_hashes=fetched.item_hashes,
                warning=fetched.refused,
            )
            results.append(PollResult(store.feed(feed.id), new_episodes=new, first_poll=first[feed.id]))
    return results


def import_opml(document: bytes, private_addresses: str = "auto") -> list[str]:
    """Feed URLs of an OPML document, in order, without duplicates, once every one has passed the URL policy
    of a feed from the internet (``private_addresses`` is ``fetch.private_addresses``). Raises
    :class:`FeedError` listing each refused outline with its reason; then none is to be added."""
    try:
        root = ET.fromstring(document)
    except ET.ParseError as exc:
        raise FeedError(f"expected an OPML document: {exc}") from None
    urls = list(dict.fromkeys(u for o in root.iter("outline") if (u := o.get("xmlUrl", "").strip())))
    policy = net.UrlPolicy(allow_private=private_addresses == "allow")
    refused = []
    for url in urls:
        try:
            policy.check_target(url)
        except FetchError as exc:
            refused.append(str(exc))
    if refused:
        raise FeedError(f"{len(refused)} of {len(urls)} outlines refused, none imported: " + "; ".join(refused))
    return urls


def export_opml(feeds: list[Feed]) -> str:
    """An OPML 2.0 document listing the feeds."""
    root = ET.Element("opml", version="2.0")
    ET.SubElement(ET.SubElement(root, "head"), "title").text = "digest subscriptions"
    body = ET.SubElement(root, "body")
    for f in feeds:
        ET.SubElement(body, "outline", type="rss", text=f.title or f.url, title=f.title or f.url, xmlUrl=f.url)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def probe(url: str, config: Config) -> tuple[str, ParsedFeed]:
    """Fetch and parse a feed once, storing nothing: its URL after redirects, and what it holds.
    Raises :class:`FeedError` when it cannot be fetched or is not a feed."""
    with net.client(config["feeds.timeout"]) as http:
        fetched = _download(http, Feed(0, url), True, config)
    assert fetched.parsed is not None  # a first poll sends no validators, so it is never "not modified"
    return fetched.response.moved_to or url, fetched.parsed


def check_url(url: str) -> str:
    """Validate a feed URL given by a user: http(s) or file, with a host or a path; without a scheme,
    ``https://`` is assumed."""
    url = url.strip()
    if url and not re.match(r"[a-z][a-z0-9+.-]*:(?!\d)", url, re.IGNORECASE):  # "host:port/…" has no scheme
        url = f"https://{url}"
    try:
        parts = net.UrlPolicy(allow_file=True, allow_private=True, own_url=url).check(url)
    except FetchError as exc:
        raise FeedError(f"expected an http(s) or file URL, found {exc}") from None
    if parts.scheme == "file" and not parts.path:
        raise FeedError(f"expected an http(s) or file URL, found {url!r}")
    return url.strip()
