"""What the ranker knows about each candidate statement of a day: substance, centrality, support, novelty.

Every feature is computed from the day's statements, their MiniLM vectors and the archive
of what was heard before, so the same code serves the digest and ``bench/train_ranker.py``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from digest.models import Claim

AGREE = 0.6  # cosine at which two statements make the same point (topic neighbours measure 0.35-0.5)
STORY = 0.45  # cosine at which two statements are about the same story
NEIGHBOURS = 5
_YEAR = re.compile(r"^(?:19|20)\d\d$")
_NUMBER = re.compile(r"\$?\d[\d,.]*(?:%|k|m|b|x)?", re.IGNORECASE)
_NUMBER_WORDS = re.compile(
    r"\b(?:two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|thirty|forty|fifty|hundred|thousand|million"
    r"|billion|trillion|percent|half|double|twice|triple|dozen)\b",
    re.IGNORECASE,
)
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][a-zA-Z0-9]+(?:[A-Z][a-z]+)*\b")
_NOT_NAMES = {"I", "I'm", "I've", "I'd", "I'll", "OK", "Okay", "Yeah", "So", "And", "But", "Oh"}
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|i've|i'd|i'll|me|my|mine|myself)\b", re.IGNORECASE)
_HEDGE = re.compile(
    r"\b(?:maybe|perhaps|i think|i guess|i mean|kind of|sort of|you know|like i said|honestly|probably|i feel like"
    r"|whatever|or something|stuff like that|i don't know)\b",
    re.IGNORECASE,
)
# The speaker does not vouch for it: unsure, hearsay, or asking to be corrected.
_DISCLAIM = re.compile(
    r"\b(?:i[’']?m not (?:sure|certain)|i don[’']?t know (?:if|whether|what|how|why)|to be believed|i could be wrong"
    r"|don[’']?t quote me|if i remember (?:right|correctly)|i[’']?m not an expert|i have no idea|correct me if)\b",
    re.IGNORECASE,
)
_REFERENCE = re.compile(
    r"\b(?:he|she|him|his|her|they|them|their|it|its|this|that|these|those|there|again)\b", re.IGNORECASE
)
_CONNECTIVE = re.compile(r"^\W*(?:and|but|so|or|well|like|now|anyway|yeah|yes|no|oh|okay|right)\b", re.IGNORECASE)
_STOP = set(
    "the a an and or but so of to in on at for with from by as is are was were be been being it its it's "
    "this that these those there their they them we you your our i me my he she his her not no yes yeah "
    "just like really very what which who how when where why do does did have has had can could would "
    "should will if then than about into out up down over more most some any all one also get got go "
    "going know think mean thing things lot kind sort".split()
)
NAMES = (
    "words",
    "sentences",
    "numbers",
    "year_only",
    "names",
    "rare_terms",
    "first_person",
    "hedges",
    "disclaims",
    "opens_with_connective",
    "references",
    "centrality_shows",
    "centrality_episode",
    "centrality_day",
    "agreeing_shows",
    "story_shows",
    "speaker_share",
    "position",
    "edge",
    "heard",
    "dwell",
)


@dataclass
class EpisodeStats:
    """How long an episode runs and how much each speaker says in it, for position and speaker share."""

    duration: float
    words_by_speaker: dict[str, int]

    @classmethod
    def of(cls, claims: list[Claim]) -> EpisodeStats:
        words: Counter[str] = Counter()
        for c in claims:
            words[c.speaker or ""] += len(c.text.split())
        return cls(max((c.end for c in claims), default=0.0), dict(words))

    def share(self, speaker: str | None) -> float:
        total = sum(self.words_by_speaker.values())
        return self.words_by_speaker.get(speaker or "", 0) / total if total and speaker else 0.5


def tokens(text: str) -> list[str]:
    """Content words of a text, lower-cased."""
    return [
        w for w in re.findall(r"[a-z][a-z0-9'+#.-]*[a-z0-9+#]|[a-z]", text.lower()) if w not in _STOP and len(w) > 2
    ]


def document_frequencies(texts: list[str]) -> tuple[Counter[str], int]:
    """How many texts hold each content word, and how many texts there are."""
    df: Counter[str] = Counter()
    for t in texts:
        df.update(set(tokens(t)))
    return df, len(texts)


def _numbers(text: str) -> tuple[int, bool]:
    found = [n.strip(",.") for n in _NUMBER.findall(text)]
    years = [n for n in found if _YEAR.match(n)]
    count = len(found) - len(years) + len(_NUMBER_WORDS.findall(text))
    return count, bool(years) and count == 0


def first_name(text: str) -> int:
    """Where the first name (a capitalised word that does not open a sentence) starts in a text; its length
    when there is none."""
    return next((m.start() for m in _NAME.finditer(text) if m.group() not in _NOT_NAMES), len(text))


def _names(text: str) -> int:
    return sum(1 for n in _NAME.findall(text) if n not in _NOT_NAMES)


def _references(text: str) -> float:
    """Pronouns and pointers in the first half of a statement before any name: what it leans on outside itself."""
    head = " ".join(text.split()[: max(4, len(text.split()) // 2)])
    return float(len(_REFERENCE.findall(head[: first_name(head)])))


def _rare_terms(text: str, df: Counter[str], n_docs: int) -> float:
    idf = sorted((math.log((1 + n_docs) / (1 + df[w])) for w in set(tokens(text))), reverse=True)
    return float(np.mean(idf[:3])) / math.log(2 + n_docs) if idf else 0.0


def nearest(queries: np.ndarray, against: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarities and indexes of each query's ``k`` nearest unit vectors in ``against`` (FAISS)."""
    import faiss

    index = faiss.IndexFlatIP(against.shape[1])
    index.add(np.ascontiguousarray(against, dtype=np.float32))
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, len(against)))


def max_similarity(vectors: np.ndarray, against: np.ndarray | None) -> np.ndarray:
    """Each vector's highest cosine similarity to any of ``against``; 0 when there is nothing to compare."""
    if against is None or len(against) == 0:
        return np.zeros(len(vectors), dtype=np.float32)
    return nearest(vectors, against, 1)[0][:, 0]


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n else v


def features(
    claims: list[Claim],
    vectors: np.ndarray,
    stats: dict[int, EpisodeStats],
    df: tuple[Counter[str], int],
    heard: np.ndarray | None = None,
) -> np.ndarray:
    """One row of ``NAMES`` per claim.

    Args:
        claims: The day's kept statements.
        vectors: Their unit MiniLM vectors, row for row.
        stats: Duration and speaker words of each claim's episode.
        df: Document frequencies over everything heard, this day included.
        heard: Unit vectors of statements heard on earlier days.
    """
    n = len(claims)
    out = np.zeros((n, len(NAMES)), dtype=np.float32)
    if n == 0:
        return out
    feeds = np.array([c.feed_id for c in claims])
    episodes = np.array([c.episode_id for c in claims])
    sims, ids = nearest(vectors, vectors, 64)
    day_centroid = _unit(vectors.mean(axis=0))
    dwell = np.zeros(n, dtype=np.float32)
    episode_centroids = {}
    for e in set(episodes.tolist()):
        rows = np.flatnonzero(episodes == e)
        episode_centroids[e] = _unit(vectors[rows].mean(axis=0))
        dwell[rows] = (vectors[rows] @ vectors[rows].T >= STORY).mean(axis=1)
    heard_max = max_similarity(vectors, heard)
    for i, c in enumerate(claims):
        other = (ids[i] >= 0) & (feeds[np.maximum(ids[i], 0)] != c.feed_id)
        other_sims, other_ids = sims[i][other], ids[i][other]
        numbers, year_only = _numbers(c.text)
        words = len(c.text.split())
        st = stats[c.episode_id]
        position = c.start / st.duration if st.duration else 0.5
        out[i] = (
            math.log(max(words, 1)),
            len(re.findall(r"[.!?…](?:\s|$)", c.text)) or 1,
            math.log1p(numbers),
            float(year_only),
            math.log1p(_names(c.text)),
            _rare_terms(c.text, *df),
            len(_FIRST_PERSON.findall(c.text)) / max(words, 1),
            len(_HEDGE.findall(c.text)),
            float(bool(_DISCLAIM.search(c.text))),
            float(bool(_CONNECTIVE.match(c.text))),
            _references(c.text),
            float(other_sims[:NEIGHBOURS].mean()) if len(other_sims) else 0.0,
            float(vectors[i] @ episode_centroids[c.episode_id]),
            float(vectors[i] @ day_centroid),
            len(set(feeds[other_ids[other_sims >= AGREE]].tolist())),
            len(set(feeds[other_ids[other_sims >= STORY]].tolist())),
            st.share(c.speaker),
            position,
            float(position < 0.05 or position > 0.95),
            heard_max[i],
            dwell[i],
        )
    return out
