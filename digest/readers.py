"""Each subscriber's own digest: the day's candidates re-weighted by a reader's shows, interests and clicks.

A digest keeps its candidates (the common picks, then the runners-up that passed the quality bar, each
with its unit vector). A reader's interest vector is the sum of their interest phrases' vectors and of
their "more/less like this" clicks (±1, halving every ``readers.feedback_half_life`` days). A candidate's
score is its place in the day's order (1 for the first, falling to 0 for the last) plus
``readers.interest_weight`` times its *pull*: how much more related it is to the reader's interests than
the day's typical candidate. That is its cosine to the interest vector's direction less the day's mean
cosine, in standard deviations of the day's cosines, times the interest vector's length (so more interests
and clicks, and fresher clicks, pull harder). A short phrase's MiniLM cosines to conversational statements
are small and bunched together, so a raw cosine barely moves a candidate; measured against the day's spread,
the candidates of the reader's field stand out however high or low the model's cosines run. A statement
taken out of a conversation also loses its topic ("Of the employees, 159 people took the offer"), so the
pull reads each candidate in context: its vector plus that of the episodes it was said in (show and episode
title, embedded with the bundled model), normalised. On a day with nothing in the reader's field, the
candidates nearest it still lead. A reader with no preferences gets exactly the common picks; nobody gets a
candidate close to one they were sent before.

A weekly reader gets one mail a week, on the run whose digest date falls on ``readers.weekly_day``: the
week's best, chosen the same way from the candidates of that digest and of the six days before it (the pull
measured against the week's candidates). A candidate's place is its place in its own day's order (ties go
to the one said on more shows, then the higher ranker score), and no two picks of different days tell the
same story (cosine ≥ ``rank.cluster_threshold``; a day's own candidates are distinct already).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from digest.config import Config, default
from digest.models import Digest, Insight, Subscriber, SubscriberStatus

if TYPE_CHECKING:
    from digest.embed import Embedder
    from digest.store import Store

COUNTS = (3, 5, 10)  # how many insights a reader may ask for
FREQUENCIES = ("daily", "weekly")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY = 86400.0


@dataclass
class ReaderSettings:
    """The ``readers.*`` settings; their defaults and help live in ``digest.config``."""

    candidates: int = default("readers.candidates")
    interest_weight: float = default("readers.interest_weight")
    feedback_half_life: float = default("readers.feedback_half_life")
    weekly_day: str = default("readers.weekly_day")


@dataclass
class Candidate:
    """One of a day's candidates.

    Attributes:
        position: 1-based place in the day's order: the common picks first, then the runners-up.
        common: Whether it is one of the common picks everybody without preferences gets.
        feed_ids: The shows that said it (its own and the agreeing ones).
        insight: The insight as a reader's mail shows it.
        date: The date of the digest it is a candidate of.
    """

    position: int
    common: bool
    feed_ids: list[int]
    insight: Insight
    date: str = ""


@dataclass
class Preferences:
    """A reader's own settings; the defaults are the common digest.

    Attributes:
        feed_ids: The shows to take insights from; ``None`` means every followed show.
        interests: Phrases in the reader's words.
        vectors: Their unit vectors, row for row (``None`` without interests).
        count: Insights a mail (3, 5 or 10); ``None`` means as many as the common digest has (never
            padded past the common picks; a weekly reader: ``rank.top_k``).
        frequency: ``daily``, or ``weekly`` for the week's best on ``readers.weekly_day``.
    """

    feed_ids: list[int] | None = None
    interests: list[str] = field(default_factory=list)
    vectors: np.ndarray | None = None
    count: int | None = None
    frequency: str = "daily"


@dataclass
class Click:
    """A "more like this" (``direction`` 1) or "less like this" (-1) on a candidate, with its vector and
    when it was made (Unix seconds)."""

    date: str
    position: int
    direction: int
    text: str
    vector: np.ndarray
    at: float


@dataclass
class Pick:
    """A candidate chosen for a reader (its position in the digest of ``date``), and why."""

    position: int
    why: str
    date: str = ""


def reader_vector(prefs: Preferences, clicks: list[Click], settings: ReaderSettings, now: float | None = None):
    """The reader's interest vector (not normalised: more interests and clicks pull harder), or ``None``
    when they stated none and clicked nothing."""
    parts = []
    if prefs.vectors is not None and len(prefs.vectors):
        parts.append(prefs.vectors.sum(axis=0))
    now = time.time() if now is None else now
    for c in clicks:
        parts.append(c.direction * 0.5 ** (max(0.0, now - c.at) / DAY / settings.feedback_half_life) * c.vector)
    return np.sum(parts, axis=0) if parts else None


def pick(
    candidates: list[Candidate],
    vectors: np.ndarray,
    prefs: Preferences,
    interest: np.ndarray | None,
    sent: np.ndarray | None,
    *,
    count: int,
    novelty_threshold: float,
    weight: float,
    distinct: float | None = None,
    context: np.ndarray | None = None,
) -> list[Pick]:
    """A reader's picks among the candidates of a day (or of a week's days), best first.

    Args:
        candidates: The candidates in each day's order, day after day.
        vectors: Their unit vectors, row for row.
        prefs: The reader's shows filter the candidates.
        interest: The reader's interest vector (:func:`reader_vector`), or ``None``; its pull on each candidate
            is measured against all of ``candidates`` (:func:`relative_pull`).
        sent: Vectors of what the reader was sent before; a candidate this close (cosine ≥
            ``novelty_threshold``) is left out.
        count: How many to pick, at most.
        weight: ``readers.interest_weight``: the score a candidate gains for each standard deviation of pull,
            against the day's order, which counts 1 from first to last.
        distinct: Cosine at which a candidate repeats a pick of another day, which it then yields to.
        context: Unit vectors of the episodes each candidate was said in (:func:`contexts`), row for row, or
            ``None``: the pull then reads each candidate alone.
    """
    if not candidates:
        return []
    n = len(candidates)
    sizes = Counter(c.date for c in candidates)
    order = _day_order(candidates, sizes)
    read = vectors if context is None else in_context(vectors, context)
    pull = relative_pull(read, interest) if interest is not None else np.zeros(n)
    score = order + weight * pull
    stale = (vectors @ sent.T).max(axis=1) >= novelty_threshold if sent is not None and len(sent) else np.zeros(n)
    shows = None if prefs.feed_ids is None else set(prefs.feed_ids)
    open_ = [i for i, c in enumerate(candidates) if not stale[i] and (shows is None or shows.intersection(c.feed_ids))]
    chosen: list[int] = []
    for i in sorted(open_, key=lambda i: (-score[i], -candidates[i].insight.shows, -candidates[i].insight.score, i)):
        if len(chosen) == count:
            break
        if distinct is None or all(
            candidates[j].date == candidates[i].date or float(vectors[i] @ vectors[j]) < distinct for j in chosen
        ):
            chosen.append(i)
    week = len(sizes) > 1
    return [
        Pick(c.position, _why(c, sizes[c.date], weight * float(pull[i]), week), c.date)
        for i in chosen
        for c in [candidates[i]]
    ]


def relative_pull(vectors: np.ndarray, interest: np.ndarray) -> np.ndarray:
    """How much more related each candidate is to the reader's interests than the candidates' average.

    Args:
        vectors: The candidates' unit vectors, one a row.
        interest: The reader's interest vector (:func:`reader_vector`), not normalised.

    Returns:
        Each candidate's cosine to the interest vector's direction less the candidates' mean cosine, divided
        by the cosines' standard deviation, times the interest vector's length; zeros where the candidates do
        not differ in it (one candidate, or an interest vector of length 0).
    """
    length = float(np.linalg.norm(interest))
    if not length:
        return np.zeros(len(vectors))
    cosines = vectors @ (interest / length)
    spread = float(cosines.std())
    if spread < 1e-6:
        return np.zeros(len(vectors))
    return length * (cosines - cosines.mean()) / spread


def in_context(vectors: np.ndarray, context: np.ndarray) -> np.ndarray:
    """Each candidate read with the episodes it was said in: its unit vector plus its context's, normalised."""
    joint = vectors + context
    return joint / np.maximum(np.linalg.norm(joint, axis=1, keepdims=True), 1e-12)


def contexts(candidates: list[Candidate], embed: Callable[[list[str]], np.ndarray], dim: int) -> np.ndarray:
    """Unit vectors (``dim`` wide) of the episodes each candidate was said in ("show: episode title" of each of
    its quotes, embedded by ``embed`` and averaged); a row of zeros for a candidate without quotes."""
    said = [sorted({f"{q.show}: {q.episode}" for q in c.insight.quotes}) for c in candidates]
    texts = sorted({t for ts in said for t in ts})
    found = dict(zip(texts, embed(texts))) if texts else {}
    rows = np.zeros((len(candidates), dim), dtype=np.float32)
    for i, ts in enumerate(said):
        if ts:
            mean = np.mean([found[t] for t in ts], axis=0)
            rows[i] = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return rows


def _day_order(candidates: list[Candidate], sizes: Counter[str]) -> np.ndarray:
    """Each candidate's place in its own day's order: 1 for a day's first, falling towards 0 for its last."""
    seen: Counter[str] = Counter()
    order = np.empty(len(candidates))
    for i, c in enumerate(candidates):
        order[i] = 1 - seen[c.date] / sizes[c.date]
        seen[c.date] += 1
    return order


def _why(c: Candidate, n: int, pull: float, week: bool) -> str:
    where = f"#{c.insight.rank} of the common digest" if c.common else f"runner-up {c.position} of {n}"
    return where + (f" of {c.date}" if week else "") + (f"; interests and feedback {pull:+.2f}" if pull else "")


def day_candidates(
    digest: Digest, pool: list[Insight], vectors: np.ndarray, feeds: dict[int, int], threshold: float
) -> tuple[list[Candidate], np.ndarray]:
    """The day's candidates: the digest's common picks, then those of ``pool`` (the wider pick, best first)
    that repeat none of them (cosine < ``threshold``). ``vectors`` are the unit vectors of ``common + pool``
    row for row; ``feeds`` maps claim ids to shows."""
    common = digest.insights
    keep = list(range(len(common)))
    for j in range(len(common), len(vectors)):
        if not keep or float(np.max(vectors[keep] @ vectors[j])) < threshold:
            keep.append(j)
    insights = common + pool
    found = [
        Candidate(
            n,
            j < len(common),
            sorted({feeds[q.claim_id] for q in insights[j].quotes if q.claim_id in feeds}),
            insights[j],
            digest.date,
        )
        for n, j in enumerate(keep, 1)
    ]
    return found, vectors[keep]


def week_of(date: str) -> tuple[str, str]:
    """The first and last dates (YYYY-MM-DD) of the week a weekly mail sent on ``date`` covers."""
    return (dt.date.fromisoformat(date) - dt.timedelta(days=6)).isoformat(), date


def weekday(date: str) -> str:
    """The weekday of a date, as ``readers.weekly_day`` spells it."""
    return WEEKDAYS[dt.date.fromisoformat(date).weekday()]


@dataclass
class ReaderDay:
    """A stored digest with its candidates (and, on the weekly send day, the week's), loaded once to choose
    for many readers."""

    digest: Digest
    candidates: list[Candidate]
    vectors: np.ndarray
    settings: ReaderSettings
    top_k: int
    novelty_threshold: float
    cluster_threshold: float
    pages: dict[tuple[str, int], int] = field(default_factory=dict)  # archive insight ids by (date, rank)
    week: tuple[list[Candidate], np.ndarray] | None = None  # loaded on first use by a weekly reader
    embed: Callable[[list[str]], np.ndarray] | None = None  # the bundled model, for the candidates' contexts
    _contexts: dict[str, np.ndarray] = field(default_factory=dict)  # by frequency, computed on first use

    @classmethod
    def load(cls, config: Config, store: Store, digest: Digest) -> ReaderDay:
        candidates, vectors = store.candidates(digest.date)
        return cls(
            digest,
            candidates,
            vectors,
            config.section("readers", ReaderSettings),
            config["rank.top_k"],
            config["rank.novelty_threshold"],
            config["rank.cluster_threshold"],
            _pages(store, [digest.date]),
            embed=_context_embedder(config, store),
        )

    @property
    def send_day(self) -> bool:
        """Whether weekly readers get their mail with this digest (its date falls on ``readers.weekly_day``)."""
        return weekday(self.digest.date) == self.settings.weekly_day

    def due(self, prefs: Preferences) -> bool:
        """Whether a reader gets a mail with this digest: a daily reader always, a weekly one on the send day."""
        return prefs.frequency != "weekly" or self.send_day

    def pool(self, store: Store, prefs: Preferences) -> tuple[list[Candidate], np.ndarray]:
        """The candidates a reader's picks come from: the day's, or for a weekly reader the week's."""
        return self._week(store) if prefs.frequency == "weekly" else (self.candidates, self.vectors)

    def _week(self, store: Store) -> tuple[list[Candidate], np.ndarray]:
        if self.week is None:
            first, last = week_of(self.digest.date)
            self.week = store.candidates(last, since=first)
            self.pages = _pages(store, sorted({self.digest.date, *(c.date for c in self.week[0])}))
        return self.week

    def _fixed(self, store: Store, subscriber_id: int) -> list[Pick]:
        """A reader's picks fixed for this date, with the week's candidates loaded when they come from it."""
        fixed = store.picks(self.digest.date, subscriber_id)
        if any(p.date != self.digest.date for p in fixed):
            self._week(store)
        return fixed

    def choose(self, store: Store, subscriber_id: int, now: float | None = None) -> list[Pick]:
        """A reader's picks from their stored preferences, clicks and what they were sent before."""
        prefs = store.preferences(subscriber_id)
        candidates, vectors = self.pool(store, prefs)
        interest = reader_vector(prefs, store.clicks(subscriber_id), self.settings, now)
        context = None
        if interest is not None and self.embed is not None and candidates:
            if prefs.frequency not in self._contexts:
                self._contexts[prefs.frequency] = contexts(candidates, self.embed, vectors.shape[1])
            context = self._contexts[prefs.frequency]
        common = sum(c.common for c in candidates) if prefs.frequency == "daily" else self.top_k
        return pick(
            candidates,
            vectors,
            prefs,
            interest,
            store.sent_vectors(subscriber_id, self.digest.date),
            count=prefs.count or common,
            novelty_threshold=self.novelty_threshold,
            weight=self.settings.interest_weight,
            distinct=self.cluster_threshold,
            context=context,
        )

    def picks(self, store: Store, subscriber_id: int) -> list[Pick]:
        """A reader's picks of the day, fixed on first use so that a rerun sends the same digest."""
        fixed = self._fixed(store, subscriber_id)
        if fixed:
            return fixed
        chosen = self.choose(store, subscriber_id)
        return store.save_picks(self.digest.date, subscriber_id, chosen) if chosen else []

    def current(self, store: Store, subscriber_id: int) -> tuple[list[Pick], bool]:
        """A reader's picks of the day and whether they are fixed (sent or being sent); unfixed ones are what
        they would get now (nothing for a weekly reader on another day), and nothing is stored."""
        fixed = self._fixed(store, subscriber_id)
        if fixed:
            return fixed, True
        return (self.choose(store, subscriber_id) if self.due(store.preferences(subscriber_id)) else []), False

    def digest_for(self, picks: list[Pick]) -> tuple[Digest, list[tuple[str, int]]]:
        """The digest a reader reads, and each of its insights' candidate (date, position); the common digest
        (without candidates) for a day stored before per-reader digests."""
        if not picks and not self.candidates:
            return self.digest, []
        known = self.candidates + (self.week[0] if self.week else [])
        by_key = {(c.date, c.position): c for c in known}
        insights = [replace(by_key[p.date, p.position].insight, rank=n) for n, p in enumerate(picks, 1)]
        return replace(self.digest, insights=insights), [(p.date, p.position) for p in picks]


def _context_embedder(config: Config, store: Store) -> Callable[[list[str]], np.ndarray]:
    """Embeds context texts with the bundled model (as interests are), loaded on first use, through the store's
    vector cache."""
    loaded: list[Embedder] = []

    def embed(texts: list[str]) -> np.ndarray:
        from digest.embed import embed_cached, query_embedder

        if not loaded:
            loaded.append(query_embedder(config))
        return embed_cached(store, loaded[0], texts)

    return embed


def _pages(store: Store, dates: list[str]) -> dict[tuple[str, int], int]:
    """The archive's insight ids of the common picks of these dates' digests, by (date, rank)."""
    return {(d, rank): i for d in dates for rank, i in store.insight_ids(d).items()}


def weekly_readers(config: Config, store: Store, date: str) -> list[Subscriber]:
    """The active weekly readers when ``date`` falls on ``readers.weekly_day``, else none."""
    if weekday(date) != config["readers.weekly_day"]:
        return []
    active = store.subscribers(SubscriberStatus.ACTIVE)
    return [s for s in active if store.preferences(s.id).frequency == "weekly"]
