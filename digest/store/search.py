"""Keyword search and the rows behind vector indexes."""

from __future__ import annotations

import json

import numpy as np

from digest.models import Hit, HitKind
from digest.rank import audio_link
from digest.store.base import StoreBase


class Search(StoreBase):
    """FTS5 keyword search, search hits and the rows vector indexes are built from."""

    # search

    def keyword_search(
        self,
        kind: str,
        match: str,
        *,
        show: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 50,
    ) -> list[int]:
        """Row ids whose text matches an FTS5 query, best BM25 first, within the filters.

        Without filters only the FTS index is read; joins are paid for only when a filter needs them.
        """
        fts = {"insight": "insights_fts", "claim": "claims_fts", "transcript": "segments_fts"}[kind]
        if not (show or since or until):
            rows = self.db.execute(f"SELECT rowid FROM {fts} WHERE {fts} MATCH ? ORDER BY rank LIMIT ?", (match, limit))
            return [r[0] for r in rows]
        if kind == "insight":
            sql = (
                "SELECT x.id FROM insights_fts JOIN insights x ON x.id = insights_fts.rowid "
                "WHERE insights_fts MATCH ? AND (? IS NULL OR x.show_names LIKE ?) "
                "AND (? IS NULL OR x.date >= ?) AND (? IS NULL OR x.date <= ?) ORDER BY bm25(insights_fts) LIMIT ?"
            )
            params: tuple = (match, show, f"%{show}%", since, since, until, until, limit)
        else:
            table = "segments" if kind == "transcript" else "claims"
            sql = (
                f"SELECT x.id FROM {fts} JOIN {table} x ON x.id = {fts}.rowid "
                "JOIN episodes e ON e.id = x.episode_id JOIN feeds f ON f.id = e.feed_id "
                f"WHERE {fts} MATCH ? AND (? IS NULL OR f.title = ? OR CAST(f.id AS TEXT) = ?) "
                "AND (? IS NULL OR substr(e.published, 1, 10) >= ?) "
                f"AND (? IS NULL OR substr(e.published, 1, 10) <= ?) ORDER BY bm25({fts}) LIMIT ?"
            )
            params = (match, show, show, show, since, since, until, until, limit)
        return [r[0] for r in self.db.execute(sql, params)]

    def hits(self, kind: str, ids: list[int]) -> dict[int, Hit]:
        """Search results with their show, episode, date and audio link, by row id."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        if kind == "insight":
            rows = self.db.execute(
                f"SELECT i.id, i.text, i.show_names, i.date, c.start, e.id, e.title, e.enclosure_url "
                f"FROM insights i LEFT JOIN insight_claims ic ON ic.insight_id = i.id AND ic.quote_rank = 1 "
                f"LEFT JOIN claims c ON c.id = ic.claim_id LEFT JOIN episodes e ON e.id = c.episode_id "
                f"WHERE i.id IN ({marks})",
                ids,
            )
            return {
                r[0]: Hit(
                    HitKind.INSIGHT,
                    r[0],
                    r[1],
                    ", ".join(json.loads(r[2])),
                    r[6] or "",
                    r[5],
                    r[3],
                    r[4],
                    audio_link(r[7], r[4] or 0),
                    0.0,
                    self.segment_anchor(r[5], r[4] or 0) if r[5] else 0,
                )
                for r in rows
            }
        table = "segments" if kind == "transcript" else "claims"
        rows = self.db.execute(
            f"SELECT x.id, x.text, f.title, e.title, e.id, substr(e.published, 1, 10), x.start, e.enclosure_url "
            f"FROM {table} x JOIN episodes e ON e.id = x.episode_id JOIN feeds f ON f.id = e.feed_id "
            f"WHERE x.id IN ({marks})",
            ids,
        )
        hit_kind = HitKind(kind)
        return {
            r[0]: Hit(
                hit_kind,
                r[0],
                r[1],
                r[2] or "",
                r[3],
                r[4],
                r[5],
                r[6],
                audio_link(r[7], r[6]),
                0.0,
                self.segment_anchor(r[4], r[6]),
            )
            for r in rows
        }

    def vector_rows(self, kind: str, model: str) -> tuple[np.ndarray, np.ndarray]:
        """Ids and stored vectors of every insight or kept claim whose text has been embedded."""
        sql = {
            "insight": "SELECT i.id, m.vector FROM insights i JOIN embeddings m ON m.model = ? "
            "AND m.sha256 = i.text_sha256 ORDER BY i.id",
            "claim": "SELECT c.id, m.vector FROM claims c JOIN embeddings m ON m.model = ? "
            "AND m.sha256 = c.text_sha256 WHERE c.dropped IS NULL ORDER BY c.id",
        }[kind]
        ids, vectors = [], []
        for row_id, blob in self.db.execute(sql, (model,)):
            ids.append(row_id)
            vectors.append(np.frombuffer(blob, dtype=np.float32))
        return np.asarray(ids, dtype=np.int64), (np.stack(vectors) if vectors else np.zeros((0, 0), np.float32))

    def index_key(self, kind: str) -> str:
        """Changes whenever the rows a vector index covers change."""
        table = "insights" if kind == "insight" else "claims"
        row = self.db.execute(f"SELECT MAX(id), (SELECT MAX(rowid) FROM embeddings) FROM {table}").fetchone()
        return f"{kind}:{row[0]}:{row[1]}"
