"""Per-reader data: a digest's candidates, each reader's preferences, clicks and picks."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np

from digest.errors import NotFoundError
from digest.models import Insight, Quote
from digest.readers import Candidate, Click, Pick, Preferences
from digest.signing import epoch
from digest.store.base import StoreBase


def _insight(data: dict) -> Insight:
    quotes = [Quote(**q) for q in data.pop("quotes")]
    return Insight(**data, quotes=quotes)


class Readers(StoreBase):
    """Candidates of each digest, and what each reader chose, clicked and was sent."""

    # candidates

    def save_candidates(self, date: str, candidates: list[Candidate], vectors: np.ndarray) -> None:
        """Replace a stored digest's candidates (the digest row must exist)."""
        with self.transaction() as db:
            db.execute("DELETE FROM candidates WHERE date = ?", (date,))
            db.executemany(
                "INSERT INTO candidates (date, position, common, feed_ids, insight, vector) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        date,
                        c.position,
                        int(c.common),
                        json.dumps(c.feed_ids),
                        json.dumps(asdict(c.insight)),
                        np.asarray(v, dtype=np.float32).tobytes(),
                    )
                    for c, v in zip(candidates, vectors)
                ],
            )

    def candidates(self, date: str, since: str | None = None) -> tuple[list[Candidate], np.ndarray]:
        """A digest's candidates in the day's order (or those of the digests from ``since`` to ``date``, day
        after day), and their vectors row for row (none for digests made before per-reader digests)."""
        rows = self.db.execute(
            "SELECT position, common, feed_ids, insight, vector, date FROM candidates WHERE date BETWEEN ? AND ? "
            "ORDER BY date, position",
            (since or date, date),
        ).fetchall()
        found = [Candidate(r[0], bool(r[1]), json.loads(r[2]), _insight(json.loads(r[3])), r[5]) for r in rows]
        vectors = np.stack([np.frombuffer(r[4], dtype=np.float32) for r in rows]) if rows else np.zeros((0, 0))
        return found, vectors.astype(np.float32)

    # preferences and clicks

    def preferences(self, subscriber_id: int) -> Preferences:
        row = self.db.execute(
            "SELECT feed_ids, interests, vectors, count, frequency FROM preferences WHERE subscriber_id = ?",
            (subscriber_id,),
        ).fetchone()
        if row is None:
            return Preferences()
        interests = json.loads(row[1])
        vectors = np.frombuffer(row[2], dtype=np.float32).reshape(len(interests), -1) if row[2] else None
        return Preferences(None if row[0] is None else json.loads(row[0]), interests, vectors, row[3], row[4])

    def save_preferences(self, subscriber_id: int, prefs: Preferences) -> None:
        vectors = None if prefs.vectors is None else np.asarray(prefs.vectors, dtype=np.float32).tobytes()
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO preferences (subscriber_id, feed_ids, interests, vectors, count, frequency) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    subscriber_id,
                    None if prefs.feed_ids is None else json.dumps(prefs.feed_ids),
                    json.dumps(prefs.interests),
                    vectors,
                    prefs.count,
                    prefs.frequency,
                ),
            )

    def record_click(self, subscriber_id: int, date: str, position: int, direction: int) -> Candidate:
        """Store a reader's "more" (1) or "less" (-1) on a candidate; a second click on it replaces the first."""
        row = self.db.execute(
            "SELECT insight, vector FROM candidates WHERE date = ? AND position = ?", (date, position)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no insight {position} in the digest of {date}")
        insight = _insight(json.loads(row[0]))
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO clicks (subscriber_id, date, position, direction, text, vector) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (subscriber_id, date, position, direction, insight.text, row[1]),
            )
        return Candidate(position, False, [], insight, date)

    def clicks(self, subscriber_id: int) -> list[Click]:
        rows = self.db.execute(
            "SELECT date, position, direction, text, vector, at FROM clicks WHERE subscriber_id = ? ORDER BY at, date",
            (subscriber_id,),
        )
        return [Click(r[0], r[1], r[2], r[3], np.frombuffer(r[4], dtype=np.float32), epoch(r[5])) for r in rows]

    # picks: what each reader was sent (a weekly reader's, in the mail of the send day)

    def picks(self, date: str, subscriber_id: int) -> list[Pick]:
        """A reader's picks in their mail of a date."""
        rows = self.db.execute(
            "SELECT position, why, source FROM picks WHERE date = ? AND subscriber_id = ? ORDER BY rank",
            (date, subscriber_id),
        )
        return [Pick(*r) for r in rows]

    def save_picks(self, date: str, subscriber_id: int, picks: list[Pick]) -> list[Pick]:
        """Fix a reader's picks in their mail of a date unless some are fixed already; returns the fixed ones."""
        with self.transaction() as db:
            if not db.execute(
                "SELECT 1 FROM picks WHERE date = ? AND subscriber_id = ? LIMIT 1", (date, subscriber_id)
            ).fetchone():
                db.executemany(
                    "INSERT INTO picks (date, subscriber_id, rank, source, position, why) VALUES (?, ?, ?, ?, ?, ?)",
                    [(date, subscriber_id, n, p.date, p.position, p.why) for n, p in enumerate(picks, 1)],
                )
        return self.picks(date, subscriber_id)

    def sent_vectors(self, subscriber_id: int, before: str) -> np.ndarray | None:
        """Vectors of the candidates a reader was sent in mails before a date."""
        rows = self.db.execute(
            "SELECT c.vector FROM picks p JOIN candidates c ON c.date = p.source AND c.position = p.position "
            "WHERE p.subscriber_id = ? AND p.date < ?",
            (subscriber_id, before),
        ).fetchall()
        return np.stack([np.frombuffer(r[0], dtype=np.float32) for r in rows]) if rows else None

    def revoke_links(self, subscriber_id: int) -> None:
        """Make every preferences and feedback link signed so far for a reader stop working."""
        with self.transaction() as db:
            db.execute(
                "UPDATE subscribers SET links_revoked = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?",
                (subscriber_id,),
            )

    def links_revoked(self, subscriber_id: int) -> int:
        """Unix seconds before which a reader's links no longer work (0: none revoked)."""
        row = self.db.execute("SELECT links_revoked FROM subscribers WHERE id = ?", (subscriber_id,)).fetchone()
        return epoch(row[0] if row else None)

    def reader_data(self, subscriber_id: int) -> dict:
        """Everything kept about a reader, as JSON-ready data (``digest subscribers export``)."""
        sub = self.db.execute(
            "SELECT email, status, created, changed FROM subscribers WHERE id = ?", (subscriber_id,)
        ).fetchone()
        prefs = self.preferences(subscriber_id)
        clicks = [
            {"date": c.date, "insight": c.position, "direction": "more" if c.direction > 0 else "less", "text": c.text}
            for c in self.clicks(subscriber_id)
        ]
        picks = self.db.execute(
            "SELECT p.date, p.rank, json_extract(c.insight, '$.text'), p.why FROM picks p "
            "JOIN candidates c ON c.date = p.source AND c.position = p.position WHERE p.subscriber_id = ? "
            "ORDER BY p.date, p.rank",
            (subscriber_id,),
        )
        deliveries = self.db.execute(
            "SELECT date, status, attempts, updated FROM deliveries WHERE subscriber_id = ? ORDER BY date",
            (subscriber_id,),
        )
        return {
            "email": sub[0],
            "status": sub[1],
            "created": sub[2],
            "changed": sub[3],
            "preferences": {
                "shows": prefs.feed_ids,
                "interests": prefs.interests,
                "count": prefs.count,
                "frequency": prefs.frequency,
            },
            "clicks": clicks,
            "sent": [{"date": d, "rank": r, "text": t, "why": w} for d, r, t, w in picks],
            "deliveries": [{"date": d, "status": s, "attempts": a, "updated": u} for d, s, a, u in deliveries],
        }
