"""Plain dataclasses that carry data between the pipeline's stages."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum


class Status(StrEnum):
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


class SubscriberStatus(StrEnum):
    """Whether a subscriber gets the daily email."""

    ACTIVE = "active"
    PENDING = "pending"  # subscribed on the web, not confirmed yet
    UNSUBSCRIBED = "unsubscribed"


class DeliveryStatus(StrEnum):
    """A send-ledger row's state; see :class:`Delivery`."""

    SENDING = "sending"
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    UNCERTAIN = "uncertain"


class HitKind(StrEnum):
    """What a search hit is."""

    INSIGHT = "insight"
    CLAIM = "claim"
    TRANSCRIPT = "transcript"


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
        body_sha256: The SHA-256 of the last document parsed; the same body again is not parsed.
        item_hashes: 8-byte hashes of the raw XML of each item of the last document parsed.
    """

    id: int
    url: str
    title: str | None = None
    etag: str | None = None
    modified: str | None = None
    last_polled: str | None = None
    last_error: str | None = None
    body_sha256: str | None = None
    item_hashes: bytes | None = None


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
        duration: Seconds, from ``itunes:duration``, when the feed states it.
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
    duration: float | None = None


@dataclass
class Segment:
    """A stretch of transcript with its time in the audio, in seconds, and its speaker when the
    publisher's transcript names one (speech recognition does not)."""

    start: float
    end: float
    text: str
    speaker: str | None = None


@dataclass
class Claim:
    """A claim-sized statement from one episode.

    Attributes:
        id: Row id (0 before it is stored).
        episode_id: The episode it was said in.
        feed_id: The show, for counting distinct shows.
        text: The statement.
        start: Seconds into the audio where it starts.
        end: Seconds into the audio where it ends.
        dropped: Why it is not a claim ("ad", "boilerplate", "joke", "reaction", "question",
            "small talk", "about the show", "needs context", "fragment"), or ``None`` for a kept claim.
        speaker: Who said it, when the transcript names speakers.
    """

    id: int
    episode_id: int
    feed_id: int
    text: str
    start: float
    end: float
    dropped: str | None = None
    speaker: str | None = None


@dataclass
class Quote:
    """One supporting quote of an insight.

    Attributes:
        url: Its second in the audio, when the episode has an http(s) enclosure.
        episode_id: The episode, once stored (0 before).
        anchor: The start second of the transcript segment that holds the quote: the episode page's
            ``#t<anchor>``.
    """

    text: str
    show: str
    episode: str
    start: float
    url: str | None
    claim_id: int = 0
    episode_id: int = 0
    anchor: int = 0

    def page(self, base: str = "") -> str:
        """The quote's segment on the archive's episode page, under ``base`` (``web.base_url``, or '' on the web)."""
        return f"{base.rstrip('/')}/episode/{self.episode_id}#t{self.anchor}"

    def link(self, base: str = "") -> str:
        """Where the quote plays: its second in the audio, else its segment on the episode page."""
        return self.url or self.page(base)


@dataclass
class Insight:
    """A ranked insight: a statement, and the statements of other shows that agree with it.

    Attributes:
        rank: 1-based position in the digest.
        text: The statement shown to readers (the LLM's rewrite when one was kept).
        statement: The extractive statement the ranker picked.
        shows: Distinct shows with a statement that agrees with it (its own included).
        episodes: Distinct episodes among them.
        novelty: 1 minus the similarity to what was heard on earlier days (0..1).
        salience: The ranker's probability that an editor would pick the statement (0..1).
        score: The ranker's log-odds.
        quotes: The statement, the agreeing statements of other shows (one per show), then supporting
            statements of the statement's own passage.
        claim_ids: The claims quoted, then every other statement of the day that makes the same point.
        show_names: Names of the shows that said it.
        why: The features that moved the score most, with their contributions in log-odds.
        reason: The language model's one-line reason for the pick (``llm.mode = select``), else empty.
    """

    rank: int
    text: str
    statement: str
    shows: int
    episodes: int
    novelty: float
    salience: float
    score: float
    quotes: list[Quote] = field(default_factory=list)
    claim_ids: list[int] = field(default_factory=list)
    show_names: list[str] = field(default_factory=list)
    why: dict[str, float] = field(default_factory=dict)
    reason: str = ""


@dataclass
class RunnerUp:
    """A candidate that did not make the digest, and why."""

    statement: str
    shows: int
    score: float
    reason: str
    why: dict[str, float] = field(default_factory=dict)


@dataclass
class KeyPointTrace:
    """A key point the language model found (``llm.mode = select``), and what became of it (``--explain``)."""

    claim: str
    show: str
    fate: str


@dataclass
class Digest:
    """One day's digest.

    Attributes:
        date: ISO date (YYYY-MM-DD).
        insights: The chosen insights, best first (at most ``rank.top_k``; fewer on quiet days).
        episodes_scanned: Episodes whose claims were considered.
        shows_scanned: Distinct shows among them.
        runners_up: Candidates that lost, with the reason (``--explain``).
        method: What picked the insights: ``ranker`` (offline) or ``llm`` (``llm.mode = select``).
        method_note: The model that picked them, or why the run fell back to the ranker.
        key_points: Every key point the model found and its fate (``llm.mode = select``; not stored).
        llm_usage: What the run spent on the model: calls, prompt and answer tokens, seconds (not stored).
    """

    date: str
    insights: list[Insight] = field(default_factory=list)
    episodes_scanned: int = 0
    shows_scanned: int = 0
    runners_up: list[RunnerUp] = field(default_factory=list)
    method: str = "ranker"
    method_note: str = ""
    key_points: list[KeyPointTrace] = field(default_factory=list)
    llm_usage: dict[str, float] = field(default_factory=dict)

    def to_json(self, explain: bool = False, base: str = "") -> dict:
        """The documented digest JSON (DESIGN.md), plus scores and runners-up when explaining; a quote
        without audio links to its segment on the episode page under ``base`` (``web.base_url``)."""
        data: dict = {
            "date": self.date,
            "episodes_scanned": self.episodes_scanned,
            "shows_scanned": self.shows_scanned,
            "method": self.method,
            "method_note": self.method_note,
            "insights": [
                {
                    "rank": i.rank,
                    "text": i.text,
                    "support": {"shows": i.shows, "episodes": i.episodes, "show_names": i.show_names},
                    "novelty": round(i.novelty, 3),
                    "quotes": [
                        {"text": q.text, "show": q.show, "episode": q.episode, "start": q.start, "url": q.link(base)}
                        for q in i.quotes
                    ],
                    **(
                        {
                            "statement": i.statement,
                            "salience": round(i.salience, 3),
                            "score": round(i.score, 3),
                            "why": i.why,
                            "reason": i.reason,
                        }
                        if explain
                        else {}
                    ),
                }
                for i in self.insights
            ],
        }
        if explain:
            data["runners_up"] = [
                {
                    "statement": r.statement,
                    "shows": r.shows,
                    "score": round(r.score, 3),
                    "reason": r.reason,
                    "why": r.why,
                }
                for r in self.runners_up
            ]
            if self.key_points or self.llm_usage:  # a run's own record, never stored
                data["key_points"] = [asdict(k) for k in self.key_points]
                data["llm_usage"] = self.llm_usage
        return data


@dataclass
class Subscriber:
    """A person who gets the daily email.

    Attributes:
        status: Active, pending (not confirmed yet) or unsubscribed.
        created: When the address was first added (UTC, ``YYYY-MM-DDTHH:MM:SSZ``).
        changed: When its status last changed; confirmation links made before it no longer work.
    """

    id: int
    email: str
    status: SubscriberStatus = SubscriberStatus.ACTIVE
    created: str | None = None
    changed: str | None = None

    def __post_init__(self) -> None:
        self.status = SubscriberStatus(self.status)


@dataclass
class Delivery:
    """One row of the send ledger.

    Attributes:
        status: ``sending`` (in flight), ``sent``, ``deferred`` (temporary failure, retried
            next run), ``failed`` (permanent), or ``uncertain`` (a run died mid-send; never
            resent automatically, so nobody gets two).
    """

    date: str
    subscriber_id: int
    email: str
    status: DeliveryStatus
    attempts: int = 0
    message_id: str | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        self.status = DeliveryStatus(self.status)


@dataclass
class Hit:
    """One search result.

    Attributes:
        kind: ``insight``, ``claim`` or ``transcript``.
        id: Row id of the insight, claim or segment.
        text: What was said.
        show: The show (for an insight, the shows joined).
        episode: The episode title (empty for an insight).
        episode_id: The episode, when there is one.
        date: The episode's publication date, or the digest's date for an insight.
        start: Seconds into the audio.
        url: Link to that second in the audio.
        score: Reciprocal-rank-fusion score; higher is better.
        anchor: The episode page's anchor (``#t<anchor>``) of the transcript segment that holds it.
    """

    kind: HitKind
    id: int
    text: str
    show: str
    episode: str
    episode_id: int | None
    date: str | None
    start: float | None
    url: str | None
    score: float = 0.0
    anchor: int = 0

    def __post_init__(self) -> None:
        self.kind = HitKind(self.kind)
