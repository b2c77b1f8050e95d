"""Pick the day's top novel insights: score statements with the learned ranker, keep one per story, and
back each pick with the statements of other shows that agree with it and the best statements of its own
passage.

Support is a boost, not a gate: how many shows make the same point is one of the ranker's features, so
a strong point made by one show can still be picked. "Said on N shows" counts only shows with a statement
that *agrees* with the pick (cosine ≥ ``agreement``), never shows that merely share the topic.

A pick is the headline of a passage: the few minutes of conversation around it. Its quotes are the pick,
the agreeing statements of other shows, then (up to ``max_quotes``) the best-scored statements of that
passage that stay on its topic, in the order they were said, so a reader sees the point as the show
developed it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from digest.config import default
from digest.features import NAMES, EpisodeStats, features, max_similarity
from digest.models import Claim, Insight, Quote, RunnerUp
from digest.ranker import Ranker, bundled

NEAR = 0.8  # cosine above which two statements may be one script read on several shows...
COPY = 0.6  # ...and the share of character 5-grams they must share to be one (speech recognition garbles words)
POOL = 300  # best-scored statements the selection looks at
MAX_RUNNERS_UP = 20
PASSAGE = 8  # kept statements either side of a pick, in its episode, that belong to its passage...
TOPIC = 0.3  # ...when their cosine similarity with the pick is at least this


@dataclass
class ClaimInfo:
    """What ranking needs to know about a claim beyond its text: where it was said."""

    show: str
    episode: str
    audio_url: str | None


@dataclass
class RankSettings:
    """The ``rank.*`` settings; their defaults and help live in ``digest.config``."""

    top_k: int = default("rank.top_k")
    min_shows: int = default("rank.min_shows")
    cluster_threshold: float = default("rank.cluster_threshold")
    agreement: float = default("rank.agreement")
    novelty_threshold: float = default("rank.novelty_threshold")
    diversity: float = default("rank.diversity")
    min_score: float = default("rank.min_score")
    support_boost: float = default("rank.support_boost")
    min_words: int = default("rank.min_words")
    max_quotes: int = default("rank.max_quotes")


@dataclass
class DayContext:
    """What the day is compared against: episode statistics, word rarity, and the archive."""

    stats: dict[int, EpisodeStats]
    df: tuple[Counter[str], int]
    sent: np.ndarray | None = None
    heard: np.ndarray | None = None


@dataclass
class _Candidate:
    index: int
    score: float
    probability: float
    why: dict[str, float]
    heard: float  # highest similarity to anything heard on earlier days
    rejected: str | None = None
    quotes: list[int] = field(default_factory=list)  # agreeing statements of other shows
    passage: list[int] = field(default_factory=list)  # supporting statements of its own passage


def rank(
    claims: list[Claim],
    vectors: np.ndarray,
    info: dict[int, ClaimInfo],
    settings: RankSettings,
    context: DayContext,
    ranker: Ranker | None = None,
) -> tuple[list[Insight], list[RunnerUp]]:
    """Pick the top insights among the day's kept statements.

    Args:
        claims: Kept statements of the day (``dropped is None``), each with a unique ``id``.
        vectors: Their unit embeddings, row for row.
        info: Show, episode title and audio URL by ``claim.episode_id``.
        settings: Thresholds and sizes.
        context: Episode statistics, document frequencies, and what was sent and heard before.
        ranker: The statement scorer; the bundled one by default.

    Returns:
        The insights, best first, and the runners-up with the reason each lost.
    """
    if not claims:
        return [], []
    model = ranker or bundled()
    x = features(claims, vectors, context.stats, context.df, context.heard)
    scores = _scores(model, x, vectors, settings)
    order = sorted(range(len(claims)), key=lambda i: (-scores[i], claims[i].episode_id, claims[i].start))[:POOL]
    pool = vectors[order]
    stale = max_similarity(pool, context.sent)
    copies = _copies(order, vectors, claims)
    candidates = []
    for j, i in enumerate(order):
        c = _Candidate(
            i,
            float(scores[i]),
            float(1 / (1 + np.exp(-scores[i]))),
            model.explain(x[i], vectors[i]),
            float(x[i, NAMES.index("heard")]),
        )
        if stale[j] >= settings.novelty_threshold:
            c.rejected = f"already sent in an earlier digest (similarity {stale[j]:.2f})"
        elif copies[j]:
            c.rejected = "the same words on several shows: a syndicated ad or promo"
        elif len(claims[i].text.split()) < settings.min_words:
            c.rejected = f"too short to stand alone ({len(claims[i].text.split())} words)"
        elif c.probability < settings.min_score:
            c.rejected = f"below the quality bar (score {c.probability:.2f} < {settings.min_score})"
        candidates.append(c)

    chosen = _select(candidates, claims, vectors, settings)
    for c in chosen:
        room = settings.max_quotes - 1 - len(c.quotes)
        best = _passage(c.index, claims, vectors, scores, context.sent, settings)[: max(room, 0)]
        c.passage = sorted(best, key=lambda j: claims[j].start)  # read in the order they were said
    insights = [_insight(n, c, claims, vectors, info, settings) for n, c in enumerate(chosen, 1)]
    runners_up = [
        RunnerUp(claims[c.index].text, 1 + len(c.quotes), round(c.score, 4), c.rejected or "", c.why)
        for c in candidates
        if c not in chosen
    ][:MAX_RUNNERS_UP]
    return insights, runners_up


def statement_scores(
    claims: list[Claim], vectors: np.ndarray, settings: RankSettings, context: DayContext
) -> dict[int, float]:
    """The bundled ranker's log-odds for each statement, support boost included, by claim id."""
    if not claims:
        return {}
    x = features(claims, vectors, context.stats, context.df, context.heard)
    return {c.id: float(v) for c, v in zip(claims, _scores(bundled(), x, vectors, settings))}


def _scores(model: Ranker, x: np.ndarray, vectors: np.ndarray, settings: RankSettings) -> np.ndarray:
    return model.scores(x, vectors) + settings.support_boost * x[:, NAMES.index("agreeing_shows")]


def _copies(order: list[int], vectors: np.ndarray, claims: list[Claim]) -> list[bool]:
    """Whether each pooled statement is read near word for word on another show: a syndicated ad or promo.

    Paraphrases of one point are close in meaning too, so meaning only shortlists; a copy must also share
    most of its character 5-grams, which survives the odd word that speech recognition gets wrong.
    """
    feeds = np.array([c.feed_id for c in claims])
    sims = vectors[order] @ vectors.T
    found = []
    for j, i in enumerate(order):
        near = np.flatnonzero((sims[j] >= NEAR) & (feeds != claims[i].feed_id))
        mine = _shingles(claims[i].text)
        found.append(any(_overlap(mine, _shingles(claims[k].text)) >= COPY for k in near))
    return found


def _shingles(text: str, n: int = 5) -> set[str]:
    bare = " ".join("".join(ch if ch.isalnum() else " " for ch in text.lower()).split())
    return {bare[i : i + n] for i in range(max(1, len(bare) - n + 1))}


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / min(len(a), len(b)) if a and b else 0.0


def _agreeing(i: int, claims: list[Claim], vectors: np.ndarray, threshold: float) -> list[int]:
    """Per other show, its statement closest to statement ``i`` if it agrees; best first."""
    sims = vectors @ vectors[i]
    best: dict[int, int] = {}
    for j in np.flatnonzero(sims >= threshold):
        f = claims[j].feed_id
        if f != claims[i].feed_id and (f not in best or sims[j] > sims[best[f]]):
            best[f] = int(j)
    return sorted(best.values(), key=lambda j: (-sims[j], j))


def _passage(
    i: int,
    claims: list[Claim],
    vectors: np.ndarray,
    scores: np.ndarray,
    sent: np.ndarray | None,
    settings: RankSettings,
) -> list[int]:
    """The statements of pick ``i``'s passage that support it, best-scored first: within ``PASSAGE`` kept
    statements of it in its episode, on its topic (cosine ≥ ``TOPIC``), long enough to stand alone, not
    already sent, and not read word for word on another show (a syndicated ad)."""
    own = sorted(
        (j for j, c in enumerate(claims) if c.episode_id == claims[i].episode_id), key=lambda j: claims[j].start
    )
    at = own.index(i)
    near = [
        j
        for j in own[max(0, at - PASSAGE) : at + PASSAGE + 1]
        if j != i and float(vectors[i] @ vectors[j]) >= TOPIC and len(claims[j].text.split()) >= settings.min_words
    ]
    if not near:
        return []
    fresh = max_similarity(vectors[near], sent) < settings.novelty_threshold
    copies = _copies(near, vectors, claims)
    keep = [j for j, ok, copy in zip(near, fresh, copies) if ok and not copy]
    return sorted(keep, key=lambda j: (-scores[j], claims[j].start))


def _select(
    candidates: list[_Candidate], claims: list[Claim], vectors: np.ndarray, settings: RankSettings
) -> list[_Candidate]:
    """Greedy maximal marginal relevance over the pool chooses one pick per story; the picks are then
    ordered by score, best first. Relevance is the score in log-odds below the best one: probabilities
    saturate near 1, where they would tell a strong pick from a weak one only by its similarity to the
    picks so far."""
    open_ = [c for c in candidates if not c.rejected]
    chosen: list[_Candidate] = []
    repeats: list[tuple[_Candidate, _Candidate, float]] = []  # (candidate, the pick it repeats, similarity)
    top = max((c.score for c in open_), default=0.0)
    while open_ and len(chosen) < settings.top_k:

        def overlap(c: _Candidate) -> float:
            return max((float(vectors[c.index] @ vectors[s.index]) for s in chosen), default=0.0)

        best = max(open_, key=lambda c: settings.diversity * (c.score - top) - (1 - settings.diversity) * overlap(c))
        open_.remove(best)
        best.quotes = _agreeing(best.index, claims, vectors, settings.agreement)
        twin = max(chosen, key=lambda s: float(vectors[best.index] @ vectors[s.index]), default=None)
        if twin is not None and overlap(best) >= settings.cluster_threshold:
            repeats.append((best, twin, overlap(best)))
        elif 1 + len(best.quotes) < settings.min_shows:
            best.rejected = f"said on {1 + len(best.quotes)} show(s), fewer than rank.min_shows"
        else:
            chosen.append(best)
    for c in open_:
        c.rejected = f"ranked below the top {settings.top_k}"
    chosen.sort(key=lambda c: (-c.score, claims[c.index].episode_id, claims[c.index].start))
    for c, twin, similarity in repeats:
        c.rejected = f"repeats #{chosen.index(twin) + 1} (similarity {similarity:.2f})"
    return chosen


def _insight(
    rank_no: int,
    c: _Candidate,
    claims: list[Claim],
    vectors: np.ndarray,
    info: dict[int, ClaimInfo],
    settings: RankSettings,
) -> Insight:
    agreeing = [c.index, *c.quotes]  # "said on N shows" counts every one, however many are quoted
    members = [*agreeing[: settings.max_quotes], *c.passage]
    quotes = [_quote(claims[m], info) for m in members]
    # Every statement of the day that makes the same point is part of the story sent, so a later day
    # that returns to it is compared against all of them, not only the quotes.
    story = [
        int(j) for j in np.flatnonzero(vectors @ vectors[c.index] >= settings.cluster_threshold) if j not in members
    ]
    statement = claims[c.index].text
    return Insight(
        rank=rank_no,
        text=headline(statement),
        statement=statement,
        shows=len({claims[m].feed_id for m in agreeing}),
        episodes=len({claims[m].episode_id for m in agreeing}),
        novelty=round(float(np.clip(1 - c.heard, 0, 1)), 4),
        salience=round(c.probability, 4),
        score=round(c.score, 4),
        quotes=quotes,
        claim_ids=[claims[m].id for m in members + story],
        show_names=sorted({info[claims[m].episode_id].show for m in agreeing}),
        why=c.why,
    )


_LEADING_CONJUNCTION = re.compile(r"^(?:and|but|or|plus)\b[,\s]+(?=\w)", re.IGNORECASE)


def headline(statement: str) -> str:
    """A statement as a headline: a spoken "And…", "But…" or "Or…" that leans on what came before is dropped.

    >>> headline("But sodium batteries are cheap now.")
    'Sodium batteries are cheap now.'
    """
    text = _LEADING_CONJUNCTION.sub("", statement.strip(), count=1)
    return text[:1].upper() + text[1:]


def _quote(claim: Claim, info: dict[int, ClaimInfo]) -> Quote:
    where = info[claim.episode_id]
    return Quote(claim.text, where.show, where.episode, claim.start, audio_link(where.audio_url, claim.start), claim.id)


def audio_link(url: str | None, start: float) -> str | None:
    """A link to a second in the audio (Media Fragments ``#t=``); only ``http(s)`` audio is ever linked,
    so a feed's ``javascript:``, ``data:`` or ``file:`` enclosure never becomes a link in a mail or a page."""
    if not url or not url.lower().startswith(("http://", "https://")):
        return None
    return f"{url.split('#')[0]}#t={int(start)}"
