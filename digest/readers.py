"""Each subscriber's own digest: the day's candidates re-weighted by a reader's shows, interests and clicks.

A digest keeps its candidates (the common picks, then the runners-up that passed the quality bar, each
with its unit vector). A reader's interest vector is the sum of their interest phrases' vectors and of
their "more/less like this" clicks (±1, halving every ``readers.feedback_half_life`` days). A candidate's
score is its place in the day's order (1 for the first, falling to 0 for the last) plus
``readers.interest_weight`` times its dot product with that vector. A reader with no preferences therefore
gets exactly the common picks; nobody gets a candidate close to one they were sent before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from digest.config import Config, default
from digest.models import Digest, Insight

if TYPE_CHECKING:
    from digest.store import Store

COUNTS = (3, 5, 10)  # how many insights a reader may ask for
DAY = 86400.0


@dataclass
class ReaderSettings:
    """The ``readers.*`` settings; their defaults and help live in ``digest.config``."""

    candidates: int = default("readers.candidates")
    interest_weight: float = default("readers.interest_weight")
    feedback_half_life: float = default("readers.feedback_half_life")


@dataclass
class Candidate:
    """One of a day's candidates.

    Attributes:
        position: 1-based place in the day's order: the common picks first, then the runners-up.
        common: Whether it is one of the common picks everybody without preferences gets.
        feed_ids: The shows that said it (its own and the agreeing ones).
        insight: The insight as a reader's mail shows it.
    """

    position: int
    common: bool
    feed_ids: list[int]
    insight: Insight


@dataclass
class Preferences:
    """A reader's own settings; the defaults are the common digest.

    Attributes:
        feed_ids: The shows to take insights from; ``None`` means every followed show.
        interests: Phrases in the reader's words.
        vectors: Their unit vectors, row for row (``None`` without interests).
        count: Insights a day (3, 5 or 10); ``None`` means ``rank.top_k``.
    """

    feed_ids: list[int] | None = None
    interests: list[str] = field(default_factory=list)
    vectors: np.ndarray | None = None
    count: int | None = None


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
    """A candidate chosen for a reader, and why."""

    position: int
    why: str


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
) -> list[Pick]:
    """A reader's picks among the day's candidates, best first.

    Args:
        candidates: The day's candidates in the day's order.
        vectors: Their unit vectors, row for row.
        prefs: The reader's shows filter the candidates.
        interest: The reader's interest vector (:func:`reader_vector`), or ``None``.
        sent: Vectors of what the reader was sent before; a candidate this close (cosine ≥
            ``novelty_threshold``) is left out.
        count: How many to pick, at most.
        weight: ``readers.interest_weight``.
    """
    if not candidates:
        return []
    n = len(candidates)
    order = 1 - np.arange(n) / n
    pull = vectors @ interest if interest is not None else np.zeros(n)
    score = order + weight * pull
    stale = (vectors @ sent.T).max(axis=1) >= novelty_threshold if sent is not None and len(sent) else np.zeros(n)
    shows = None if prefs.feed_ids is None else set(prefs.feed_ids)
    open_ = [i for i, c in enumerate(candidates) if not stale[i] and (shows is None or shows.intersection(c.feed_ids))]
    chosen = sorted(open_, key=lambda i: (-score[i], i))[:count]
    return [Pick(candidates[i].position, _why(candidates[i], n, weight * float(pull[i]))) for i in chosen]


def _why(c: Candidate, n: int, pull: float) -> str:
    where = f"#{c.insight.rank} of the common digest" if c.common else f"runner-up {c.position} of {n}"
    return where + (f"; interests and feedback {pull:+.2f}" if pull else "")


def day_candidates(
    common: list[Insight], pool: list[Insight], vectors: np.ndarray, feeds: dict[int, int], threshold: float
) -> tuple[list[Candidate], np.ndarray]:
    """The day's candidates: the common picks, then those of ``pool`` (the ranker's wider pick, best first)
    that repeat none of them (cosine < ``threshold``). ``vectors`` are the unit vectors of ``common + pool``
    row for row; ``feeds`` maps claim ids to shows."""
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
        )
        for n, j in enumerate(keep, 1)
    ]
    return found, vectors[keep]


@dataclass
class ReaderDay:
    """A stored digest with its candidates, loaded once to choose for many readers."""

    digest: Digest
    candidates: list[Candidate]
    vectors: np.ndarray
    settings: ReaderSettings
    top_k: int
    novelty_threshold: float

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
        )

    def choose(self, store: Store, subscriber_id: int, now: float | None = None) -> list[Pick]:
        """A reader's picks from their stored preferences, clicks and what they were sent before."""
        prefs = store.preferences(subscriber_id)
        interest = reader_vector(prefs, store.clicks(subscriber_id), self.settings, now)
        return pick(
            self.candidates,
            self.vectors,
            prefs,
            interest,
            store.sent_vectors(subscriber_id, self.digest.date),
            count=prefs.count or self.top_k,
            novelty_threshold=self.novelty_threshold,
            weight=self.settings.interest_weight,
        )

    def picks(self, store: Store, subscriber_id: int) -> list[Pick]:
        """A reader's picks of the day, fixed on first use so that a rerun sends the same digest."""
        if not self.candidates:
            return []
        return store.picks(self.digest.date, subscriber_id) or store.save_picks(
            self.digest.date, subscriber_id, self.choose(store, subscriber_id)
        )

    def current(self, store: Store, subscriber_id: int) -> tuple[list[Pick], bool]:
        """A reader's picks of the day and whether they are fixed (sent or being sent); unfixed ones are what
        they would get now, and nothing is stored."""
        fixed = store.picks(self.digest.date, subscriber_id)
        return (fixed, True) if fixed else (self.choose(store, subscriber_id) if self.candidates else [], False)

    def digest_for(self, picks: list[Pick]) -> tuple[Digest, list[int]]:
        """The digest a reader reads, and each of its insights' candidate positions; the common digest
        (without positions) for a day stored before per-reader digests."""
        if not self.candidates:
            return self.digest, []
        by_position = {c.position: c for c in self.candidates}
        insights = [replace(by_position[p.position].insight, rank=n) for n, p in enumerate(picks, 1)]
        return replace(self.digest, insights=insights), [p.position for p in picks]
