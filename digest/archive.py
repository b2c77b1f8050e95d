"""Search the archive: FTS5 keyword hits and FAISS semantic hits, fused by reciprocal rank."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from digest.config import Config
from digest.embed import Embedder
from digest.models import Hit, HitKind
from digest.store import Store
from digest.vectorindex import load_or_build

KINDS = tuple(k.value for k in HitKind)
# transcript sentences are searched semantically through their claims
SEMANTIC_KINDS = (HitKind.INSIGHT.value, HitKind.CLAIM.value)
RRF_K = 60
MIN_SEMANTIC = 0.3  # below this cosine similarity a "semantic hit" is noise
_TOKEN = re.compile(r'"([^"]+)"|([\w]+(?:[\'’]\w+)?)', re.UNICODE)


def fts_query(query: str) -> str | None:
    """The FTS5 query for what a user typed: every word and quoted phrase, all required.

    Each is quoted for FTS5, so operators and punctuation a user types (``NEAR``, ``*``,
    ``-``, ``AND``, stray quotes) are searched as text, never parsed as syntax. Returns
    ``None`` when nothing searchable is left. Recall beyond the exact words comes from
    the semantic half of the search.
    """
    terms = []
    for phrase, word in _TOKEN.findall(query):
        words = re.findall(r"\w+", phrase or word, re.UNICODE)
        if words:
            terms.append('"' + " ".join(words) + '"')
    return " ".join(terms) or None


@dataclass
class Filters:
    """Search filters shared by the CLI and the web archive."""

    kind: str | None = None
    show: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int = 20


class Archive:
    """Hybrid search over a store; vector indexes are built from SQLite on first use and when stale."""

    def __init__(self, config: Config, store: Store, embedder: Embedder | None = None):
        self.config, self.store = config, store
        self._embedder = embedder
        self._indexes: dict[str, tuple[str, object]] = {}

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from digest.embed import get_embedder

            self._embedder = get_embedder(self.config)
        return self._embedder

    def index(self, kind: str):
        """The FAISS index of a kind, rebuilt from SQLite when missing, corrupt or out of date."""
        key = f"{self.embedder.model_id}|{self.store.index_key(kind)}"
        cached = self._indexes.get(kind)
        if cached and cached[0] == key:
            return cached[1]
        index = load_or_build(
            self.config.home / "index" / f"search-{kind}.faiss",
            key,
            lambda: self.store.vector_rows(kind, self.embedder.model_id),
        )
        self._indexes[kind] = (key, index)
        return index

    def _semantic(self, kind: str, vector: np.ndarray, f: Filters, depth: int) -> list[int]:
        index = self.index(kind)
        if index.ntotal == 0:
            return []
        sims, ids = index.search(vector[None, :], min(index.ntotal, depth))
        found = [int(i) for i, sim in zip(ids[0], sims[0]) if i >= 0 and sim >= MIN_SEMANTIC]
        if f.show or f.since or f.until:  # filters apply to what the vectors found, through the store
            hits = self.store.hits(kind, found)
            found = [i for i in found if i in hits and _passes(hits[i], f)]
        return found

    def search(self, query: str, filters: Filters | None = None) -> list[Hit]:
        """Hits for a query, best first: keyword and semantic ranks fused (RRF, k=60)."""
        f = filters or Filters()
        kinds = [f.kind] if f.kind else list(KINDS)
        depth = max(50, f.limit * 5)
        scores: dict[tuple[str, int], float] = {}
        match = fts_query(query)
        if match is None:
            return []  # nothing but punctuation: nothing to look for
        vector = self.embedder.embed([query])[0] if any(k in SEMANTIC_KINDS for k in kinds) else None
        for kind in kinds:
            ranked = [self.store.keyword_search(kind, match, show=f.show, since=f.since, until=f.until, limit=depth)]
            if vector is not None and kind in SEMANTIC_KINDS:
                ranked.append(self._semantic(kind, vector, f, depth))
            for ids in ranked:
                for rank_no, row_id in enumerate(ids):
                    scores[(kind, row_id)] = scores.get((kind, row_id), 0.0) + 1.0 / (RRF_K + rank_no + 1)
        best = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[: f.limit * 3]
        by_kind: dict[str, list[int]] = {}
        for (kind, row_id), _ in best:
            by_kind.setdefault(kind, []).append(row_id)
        details = {(kind, i): h for kind, ids in by_kind.items() for i, h in self.store.hits(kind, ids).items()}
        results: list[Hit] = []
        said: list[str] = []
        for key, score in best:
            words = re.findall(r"\w+", details[key].text.casefold()) if key in details else []
            text = f" {' '.join(words)} " if words else ""
            # an insight is also a claim and a transcript line: the best-ranked of them stands for all
            if text and not any(text in s or s in text for s in said) and len(results) < f.limit:
                details[key].score = round(score, 6)
                results.append(details[key])
                said.append(text)
        return results


def _passes(hit: Hit, f: Filters) -> bool:
    if f.show and f.show.lower() not in hit.show.lower() and str(hit.episode_id) != f.show:
        return False
    if f.since and (hit.date or "") < f.since:
        return False
    return not (f.until and (hit.date or "9999") > f.until)
