"""Cluster claims with FAISS and pick the top novel insights: support × novelty × salience, then MMR."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from digest.models import Claim, Insight, Quote, RunnerUp

VERBATIM = 0.85  # claims this close across shows are one script read everywhere (an ad), not an insight;
# paraphrases of one point by different people measure 0.45-0.75 with MiniLM
MIN_SALIENCE = 0.3
MAX_RUNNERS_UP = 20
_NUMBER_WORDS = (
    r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|twenty|thirty|forty|fifty|hundred|thousand"
    r"|million|billion|percent|half|double|twice)\b"
)
_DANGLING = re.compile(r"^\W*(?:and|but|so|because|which|that|or|also|then|plus)\b", re.IGNORECASE)
_CONTEXTUAL = re.compile(r"^\W*(?:it|this|they|these|those|that|he|she|them|their|there)\b", re.IGNORECASE)
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|my|me|mine)\b", re.IGNORECASE)
_HEDGE = re.compile(r"\b(?:maybe|i think|kind of|sort of|i guess|you know|like i said|honestly)\b", re.IGNORECASE)


@dataclass
class ClaimInfo:
    """What ranking needs to know about a claim beyond its text: where it was said."""

    show: str
    episode: str
    audio_url: str | None


@dataclass
class RankSettings:
    """The ``rank.*`` settings."""

    top_k: int = 5
    min_shows: int = 2
    cluster_threshold: float = 0.45
    novelty_threshold: float = 0.6
    diversity: float = 0.7


@dataclass
class Cluster:
    """Claims that say the same thing."""

    members: list[int]
    centroid: np.ndarray
    representative: int = 0
    shows: int = 0
    episodes: int = 0
    salience: float = 0.0
    novelty: float = 1.0
    score: float = 0.0
    rejected: str | None = None
    show_names: list[str] = field(default_factory=list)


def salience(text: str) -> float:
    """How claim-like and self-contained a statement is, from 0 to 1."""
    words = len(text.split())
    score = 1.0
    if words < 8:
        score *= 0.5 + words / 16
    elif words > 35:
        score *= max(0.4, 1 - (words - 35) / 50)
    if not (re.search(r"\d", text) or re.search(_NUMBER_WORDS, text, re.IGNORECASE)):
        score *= 0.85
    if _DANGLING.match(text):
        score *= 0.6
    if _CONTEXTUAL.match(text):
        score *= 0.7
    if _FIRST_PERSON.search(text):
        score *= 0.6
    if _HEDGE.search(text):
        score *= 0.8
    return round(score, 4)


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n else v


def cluster(vectors: np.ndarray, threshold: float, order_key: list[float]) -> list[list[int]]:
    """Leader clustering over FAISS range search: the best-connected claim absorbs its neighbours.

    Deterministic: ties are broken by ``order_key`` (higher first), then by index.
    """
    import faiss

    n = len(vectors)
    if n == 0:
        return []
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    lims, _, ids = index.range_search(vectors, threshold)
    neighbours = [ids[lims[i] : lims[i + 1]] for i in range(n)]
    order = sorted(range(n), key=lambda i: (-len(neighbours[i]), -order_key[i], i))
    assigned = np.zeros(n, dtype=bool)
    groups = []
    for i in order:
        if assigned[i]:
            continue
        members = sorted({i, *(int(j) for j in neighbours[i] if not assigned[j])})
        assigned[members] = True
        groups.append(members)
    return groups


def _cross_show_similarity(vectors: np.ndarray, feeds: list[int]) -> float:
    """Mean cosine similarity between members from different shows (0 when there are none)."""
    owners = np.asarray(feeds)
    other = owners[:, None] != owners[None, :]
    return float((vectors @ vectors.T)[other].mean()) if other.any() else 0.0


def _max_similarity(vector: np.ndarray, against: np.ndarray | None) -> float:
    if against is None or len(against) == 0:
        return 0.0
    return float(np.max(against @ vector))


def rank(
    claims: list[Claim],
    vectors: np.ndarray,
    info: dict[int, ClaimInfo],
    settings: RankSettings,
    sent: np.ndarray | None = None,
    heard: np.ndarray | None = None,
) -> tuple[list[Insight], list[RunnerUp]]:
    """Pick the top insights among the day's kept claims.

    Args:
        claims: Kept claims of the day (``dropped is None``), each with a unique ``id``.
        vectors: Their unit embeddings, row for row.
        info: Show, episode title and audio URL by ``claim.episode_id``.
        settings: Thresholds and sizes.
        sent: Unit vectors of what earlier digests sent; a candidate close to them is stale.
        heard: Unit vectors of claims heard on earlier days; closeness lowers novelty.

    Returns:
        The insights, best first, and the runners-up with the reason each lost.
    """
    sal = [salience(c.text) for c in claims]
    clusters = []
    for members in cluster(vectors, settings.cluster_threshold, sal):
        centroid = _unit(vectors[members].mean(axis=0))
        c = Cluster(members, centroid)
        centrality = dict(zip(members, (vectors[members] @ centroid).tolist()))
        c.representative = max(members, key=lambda m: (centrality[m] * sal[m], -m))
        c.salience = sal[c.representative]
        feeds = sorted({claims[m].feed_id for m in members})
        c.shows, c.episodes = len(feeds), len({claims[m].episode_id for m in members})
        c.show_names = sorted({info[claims[m].episode_id].show for m in members})
        probe = np.stack([centroid, vectors[c.representative]])
        stale = max(_max_similarity(p, sent) for p in probe)
        old = max(_max_similarity(p, heard) for p in probe)
        c.novelty = float(np.clip(1 - max(stale, 0.5 * old), 0, 1))
        c.score = (c.shows + 0.25 * (c.episodes - c.shows)) * c.novelty * c.salience
        if c.shows < settings.min_shows:
            c.rejected = f"said on {c.shows} show{'s' if c.shows != 1 else ''} only"
        elif stale >= settings.novelty_threshold:
            c.rejected = f"already sent in an earlier digest (similarity {stale:.2f})"
        elif _cross_show_similarity(vectors[members], [claims[m].feed_id for m in members]) >= VERBATIM:
            c.rejected = "the same words on several shows: a syndicated ad or promo"
        elif c.salience < MIN_SALIENCE:
            c.rejected = f"not a self-contained claim (salience {c.salience:.2f})"
        clusters.append(c)

    candidates = sorted(
        (c for c in clusters if not c.rejected), key=lambda c: (-c.score, claims[c.representative].text)
    )
    chosen: list[Cluster] = []
    top = candidates[0].score if candidates else 1.0
    while candidates and len(chosen) < settings.top_k:

        def mmr(c: Cluster) -> float:
            overlap = max((float(c.centroid @ s.centroid) for s in chosen), default=0.0)
            return settings.diversity * c.score / top - (1 - settings.diversity) * overlap

        best = max(candidates, key=lambda c: (mmr(c), -candidates.index(c)))
        candidates.remove(best)
        twin = max(chosen, key=lambda s: float(best.centroid @ s.centroid), default=None)
        if twin is not None and float(best.centroid @ twin.centroid) >= settings.cluster_threshold:
            best.rejected = f"repeats #{chosen.index(twin) + 1} (similarity {float(best.centroid @ twin.centroid):.2f})"
            continue
        chosen.append(best)
    for c in candidates:
        c.rejected = c.rejected or f"ranked below the top {settings.top_k}"

    insights = [_insight(rank_no, c, claims, vectors, info) for rank_no, c in enumerate(chosen, 1)]
    losers = sorted((c for c in clusters if c.rejected and c.shows >= 1), key=lambda c: (-c.score, c.members[0]))
    runners_up = [
        RunnerUp(claims[c.representative].text, c.shows, round(c.score, 4), c.rejected or "")
        for c in losers[:MAX_RUNNERS_UP]
    ]
    return insights, runners_up


def _insight(rank_no: int, c: Cluster, claims: list[Claim], vectors: np.ndarray, info: dict[int, ClaimInfo]) -> Insight:
    by_centrality = sorted(c.members, key=lambda m: (-float(vectors[m] @ c.centroid), m))
    quotes: list[Quote] = []
    seen_shows: set[str] = set()
    for pass_no in (0, 1):  # distinct shows first, then other episodes
        for m in by_centrality:
            where = info[claims[m].episode_id]
            if len(quotes) == 3 or any(q.claim_id == claims[m].id for q in quotes):
                continue
            if pass_no == 0 and where.show in seen_shows:
                continue
            seen_shows.add(where.show)
            quotes.append(
                Quote(
                    claims[m].text,
                    where.show,
                    where.episode,
                    claims[m].start,
                    audio_link(where.audio_url, claims[m].start),
                    claims[m].id,
                )
            )
    statement = claims[c.representative].text
    return Insight(
        rank=rank_no,
        text=statement,
        statement=statement,
        shows=c.shows,
        episodes=c.episodes,
        novelty=round(c.novelty, 4),
        salience=c.salience,
        score=round(c.score, 4),
        quotes=quotes,
        claim_ids=[claims[m].id for m in c.members],
        show_names=c.show_names,
    )


def audio_link(url: str | None, start: float) -> str | None:
    """A link to a second in the audio (Media Fragments ``#t=``); only ``http(s)`` audio is ever linked,
    so a feed's ``javascript:``, ``data:`` or ``file:`` enclosure never becomes a link in a mail or a page."""
    if not url or not url.lower().startswith(("http://", "https://")):
        return None
    return f"{url.split('#')[0]}#t={int(start)}"
