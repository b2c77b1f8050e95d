"""Claims, embeddings and digests."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np

from digest.errors import NotFoundError
from digest.models import Claim, Digest, Episode, Insight, Quote, RunnerUp
from digest.rank import audio_link
from digest.store.base import StoreBase


class Insights(StoreBase):
    """Claims, their embeddings, and the digests built from them."""

    # claims and embeddings

    def save_claims(self, episode_id: int, claims: list[Claim]) -> list[Claim]:
        """Replace an episode's claims; returns them with their ids."""
        with self.transaction() as db:
            db.execute("DELETE FROM claims WHERE episode_id = ?", (episode_id,))
            for i, c in enumerate(claims):
                cur = db.execute(
                    "INSERT INTO claims (episode_id, idx, text, start, end, dropped, speaker, text_sha256) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, digest_sha256(?))",
                    (episode_id, i, c.text, c.start, c.end, c.dropped, c.speaker, c.text),
                )
                c.id = cur.lastrowid or 0
        return claims

    def claims(self, episode_ids: list[int], kept_only: bool = False) -> list[Claim]:
        """Claims of some episodes, in episode then time order."""
        if not episode_ids:
            return []
        marks = ",".join("?" * len(episode_ids))
        rows = self.db.execute(
            f"SELECT c.id, c.episode_id, e.feed_id, c.text, c.start, c.end, c.dropped, c.speaker FROM claims c "
            f"JOIN episodes e ON e.id = c.episode_id WHERE c.episode_id IN ({marks})"
            f"{' AND c.dropped IS NULL' if kept_only else ''} ORDER BY c.episode_id, c.idx",
            episode_ids,
        )
        return [Claim(*r) for r in rows]

    def episodes_without_claims(self) -> list[Episode]:
        return self._episodes(
            "e.status = 'transcribed' AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.episode_id = e.id)"
        )

    def window(self, date: str, since: str) -> list[Episode]:
        """Transcribed episodes whose claims belong to the digest of ``date``: not in an earlier one, and
        published (or, without a date, first seen) on ``since`` or later, and never after ``date``.

        Older episodes not in any digest go to the archive as heard: they are filed under their own
        publication date, so no digest ranks them and every later one compares against them.
        """
        day = "substr(coalesce(published, created), 1, 10)"
        with self.transaction() as db:
            db.execute(
                f"UPDATE episodes SET digest_date = {day} "
                f"WHERE status = 'transcribed' AND digest_date IS NULL AND {day} < ?",
                (since,),
            )
        return self._episodes(
            "e.status = 'transcribed' AND (e.digest_date = ? OR e.digest_date IS NULL "
            "AND (e.published IS NULL OR substr(e.published, 1, 10) <= ?))",  # never one published after it
            (date, date),
        )

    def claim_for_digest(self, episode_ids: list[int], date: str, since: str, before: str) -> int:
        """Put episodes published (or, without a date, first seen) from ``since`` up to ``before``, the start of
        its window, into the digest of ``date``: a new feed's recent back catalogue. Returns how many."""
        marks = ",".join("?" * len(episode_ids))
        day = "substr(coalesce(published, created), 1, 10)"
        with self.transaction() as db:
            cur = db.execute(
                f"UPDATE episodes SET digest_date = ? WHERE id IN ({marks}) AND digest_date IS NULL "
                f"AND {day} >= ? AND {day} < ?",
                (date, *episode_ids, since, before),
            )
        return cur.rowcount

    def heard_before(self, date: str) -> list[int]:
        """Episodes heard before ``date``: in earlier digests (or archived), and published (or first seen)
        before it. Novelty counts nothing of the digest's own day or later."""
        rows = self.db.execute(
            "SELECT id FROM episodes WHERE digest_date < ? AND substr(coalesce(published, created), 1, 10) < ?",
            (date, date),
        )
        return [r[0] for r in rows]

    def vectors(self, model: str, hashes: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        for i in range(0, len(unique), 900):
            batch = unique[i : i + 900]
            rows = self.db.execute(
                f"SELECT sha256, vector FROM embeddings WHERE model = ? AND sha256 IN ({','.join('?' * len(batch))})",
                (model, *batch),
            )
            found.update((h, np.frombuffer(v, dtype=np.float32)) for h, v in rows)
        return found

    def save_vectors(self, model: str, vectors: dict[str, np.ndarray]) -> None:
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO embeddings (sha256, model, vector) VALUES (?, ?, ?)",
                [(h, model, np.asarray(v, dtype=np.float32).tobytes()) for h, v in vectors.items()],
            )

    def llm_answer(self, key: str) -> str | None:
        """A cached, validated LLM answer."""
        row = self.db.execute("SELECT answer FROM llm_cache WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def save_llm_answer(self, key: str, answer: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO llm_cache (key, answer) VALUES (?, ?)", (key, answer))

    # digests

    def save_digest(self, digest: Digest, episode_ids: list[int]) -> None:
        """Store a day's digest (replacing one of the same date) and claim its episodes for that date."""
        with self.transaction() as db:
            db.execute("DELETE FROM digests WHERE date = ?", (digest.date,))
            db.execute(
                "INSERT INTO digests (date, episodes_scanned, shows_scanned, runners_up, method, method_note) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    digest.date,
                    digest.episodes_scanned,
                    digest.shows_scanned,
                    json.dumps([asdict(r) for r in digest.runners_up]),
                    digest.method,
                    digest.method_note,
                ),
            )
            for i in digest.insights:
                cur = db.execute(
                    "INSERT INTO insights (date, rank, text, statement, shows, episodes, novelty, salience, score, "
                    "show_names, why, reason, text_sha256) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, digest_sha256(?))",
                    (
                        digest.date,
                        i.rank,
                        i.text,
                        i.statement,
                        i.shows,
                        i.episodes,
                        i.novelty,
                        i.salience,
                        i.score,
                        json.dumps(i.show_names),
                        json.dumps(i.why),
                        i.reason,
                        i.text,
                    ),
                )
                quotes = {q.claim_id: (n, q) for n, q in reversed(list(enumerate(i.quotes, 1)))}
                rows = []
                for c in dict.fromkeys(i.claim_ids):
                    n, q = quotes.get(c, (None, None))
                    rows.append((cur.lastrowid, c, n, q.text if q else None, q.start if q else None))
                db.executemany(
                    "INSERT INTO insight_claims (insight_id, claim_id, quote_rank, quote, quote_start) "
                    "VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
            marks = ",".join("?" * len(episode_ids))
            if episode_ids:
                db.execute(f"UPDATE episodes SET digest_date = ? WHERE id IN ({marks})", (digest.date, *episode_ids))

    def digest(self, date: str | None = None) -> Digest:
        """A stored digest: of ``date``, or the latest."""
        row = self.db.execute(
            "SELECT date, episodes_scanned, shows_scanned, runners_up, method, method_note FROM digests "
            + ("WHERE date = ?" if date else "ORDER BY date DESC LIMIT 1"),
            (date,) if date else (),
        ).fetchone()
        if row is None and date and (dates := self.digest_dates()):
            raise NotFoundError(f"no digest for {date}; there are digests for {', '.join(dates[:10])}")
        if row is None:
            raise NotFoundError(f"no digest for {date}" if date else "no digest yet; run `digest run` first")
        digest = Digest(
            row[0],
            episodes_scanned=row[1],
            shows_scanned=row[2],
            runners_up=[RunnerUp(**r) for r in json.loads(row[3])],
            method=row[4],
            method_note=row[5],
        )
        for r in self.db.execute(
            "SELECT id, rank, text, statement, shows, episodes, novelty, salience, score, show_names, why, reason "
            "FROM insights WHERE date = ? ORDER BY rank",
            (digest.date,),
        ).fetchall():
            insight = Insight(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], show_names=json.loads(r[9]))
            insight.why = json.loads(r[10]) if r[10] else {}
            insight.reason = r[11]
            for claim_id, quote_rank, text, start, show, title, url, episode_id in self.db.execute(
                "SELECT c.id, ic.quote_rank, COALESCE(ic.quote, c.text), COALESCE(ic.quote_start, c.start), f.title, "
                "e.title, e.enclosure_url, e.id "
                "FROM insight_claims ic JOIN claims c ON c.id = ic.claim_id JOIN episodes e ON e.id = c.episode_id "
                "JOIN feeds f ON f.id = e.feed_id WHERE ic.insight_id = ? ORDER BY ic.quote_rank IS NULL, "
                "ic.quote_rank, c.id",
                (r[0],),
            ):
                insight.claim_ids.append(claim_id)
                if quote_rank is not None:
                    anchor = self.segment_anchor(episode_id, start)
                    quote = Quote(text, show or "", title, start, audio_link(url, start), claim_id, episode_id, anchor)
                    insight.quotes.append(quote)
            digest.insights.append(insight)
        return digest

    def digest_dates(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT date FROM digests ORDER BY date DESC")]

    def sent_texts(self, before: str) -> list[str]:
        """Statements, quotes and same-point statements of insights in digests before a date: what readers
        have seen, at the level of the story."""
        rows = self.db.execute(
            "SELECT i.statement FROM insights i WHERE i.date < ? UNION "
            "SELECT c.text FROM insights i JOIN insight_claims ic ON ic.insight_id = i.id "
            "JOIN claims c ON c.id = ic.claim_id WHERE i.date < ?",
            (before, before),
        )
        return sorted(r[0] for r in rows)

    def digest_delivered(self, date: str) -> bool:
        """Whether any mail of this date's digest has gone out (or may have)."""
        row = self.db.execute(
            "SELECT 1 FROM deliveries WHERE date = ? AND status IN ('sent', 'sending', 'uncertain') LIMIT 1", (date,)
        ).fetchone()
        return row is not None

    def insight_row(self, insight_id: int) -> tuple[str, Insight]:
        """An insight and its digest date."""
        row = self.db.execute("SELECT date, rank FROM insights WHERE id = ?", (insight_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no insight {insight_id}")
        digest = self.digest(row[0])
        return row[0], next(i for i in digest.insights if i.rank == row[1])

    def insight_ids(self, date: str) -> dict[int, int]:
        """Insight ids of a digest by rank."""
        return {r[1]: r[0] for r in self.db.execute("SELECT id, rank FROM insights WHERE date = ?", (date,))}
