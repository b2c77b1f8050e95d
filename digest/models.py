"""Plain dataclasses that carry data between the pipeline's stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Status(str, Enum):
    """Where an episode stands in the pipeline.

    ``new`` → ``fetched`` (audio on disk, or a publisher transcript stored) →
    ``transcribed``. ``failed`` keeps its error and attempt count and is retried on
    later runs up to ``pipeline.max_attempts``. ``skipped`` marks the back catalogue
    that the first poll of a feed saw but did not take.
    """

    NEW = "new"
    FETCHED = "fetched"
    TRANSCRIBED = "transcribed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class Feed:
    """A followed podcast feed.

    Attributes:
        id: Row id in the store.
        url: The URL polled; updated on permanent redirects and ``itunes:new-feed-url``.
        title: The channel title, once polled.
        etag: The last ``ETag`` seen, for conditional GET.
        modified: The last ``Last-Modified`` seen, for conditional GET.
        last_polled: ISO timestamp of the last poll attempt.
        last_error: The last poll's error, or ``None`` when it succeeded.
    """

    id: int
    url: str
    title: str | None = None
    etag: str | None = None
    modified: str | None = None
    last_polled: str | None = None
    last_error: str | None = None


@dataclass
class TranscriptLink:
    """A ``<podcast:transcript>`` link of an episode."""

    url: str
    type: str
    language: str | None = None


@dataclass
class Episode:
    """One podcast episode.

    Attributes:
        id: Row id in the store (0 before it is stored).
        feed_id: The feed it came from.
        guid: The publisher's GUID, if any.
        title: Episode title.
        published: ISO 8601 publication time (UTC), if the feed gave a parseable one.
        enclosure_url: The audio URL as published (tracking prefixes included).
        enclosure_type: The enclosure's declared MIME type.
        link: The episode's web page.
        transcripts: Every ``<podcast:transcript>`` link, from the raw XML.
        status: Pipeline state.
        attempts: Failed attempts so far.
        error: The last error, when ``status`` is ``failed``.
        show: The feed's title, filled in by queries that join it.
    """

    id: int
    feed_id: int
    title: str
    guid: str | None = None
    published: str | None = None
    enclosure_url: str | None = None
    enclosure_type: str | None = None
    link: str | None = None
    transcripts: list[TranscriptLink] = field(default_factory=list)
    status: Status = Status.NEW
    attempts: int = 0
    error: str | None = None
    audio_path: str | None = None
    audio_sha256: str | None = None
    transcript_source: str | None = None
    show: str | None = None


@dataclass
class Segment:
    """A stretch of transcript with its time in the audio, in seconds."""

    start: float
    end: float
    text: str
