"""The SQLite store: the only module that writes SQL. WAL mode, named migrations."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np

from digest.errors import NotFoundError
from digest.migrations import MIGRATIONS
from digest.models import (
    Claim,
    Delivery,
    Digest,
    Episode,
    Feed,
    Hit,
    Insight,
    Quote,
    RunnerUp,
    Segment,
    Status,
    Subscriber,
    TranscriptLink,
)
from digest.rank import audio_link

_EPISODE_COLUMNS = (
    "e.id, e.feed_id, e.title, e.guid, e.published, e.enclosure_url, e.enclosure_type, "
    "e.link, e.status, e.attempts, e.error, e.audio_path, e.audio_sha256, "
    "e.transcript_source, f.title"
)


def _sha256(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


class Store:
    """A digest database. Use from one thread; workers return results to the driver."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.create_function("digest_sha256", 1, _sha256, deterministic=True)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.migrate()

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing: a crash inside leaves the store as it was."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def migrate(self) -> list[str]:
        """Apply the migrations not applied yet; returns their names."""
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied TEXT "
            "NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')))"
        )
        done = {r[0] for r in self.db.execute("SELECT name FROM _migrations")}
        applied = []
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            try:
                self.db.executescript(
                    f"BEGIN IMMEDIATE;\n{sql}\n;INSERT INTO _migrations (name) VALUES ('{name}');\nCOMMIT;"
                )
            except sqlite3.Error:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
            applied.append(name)
        return applied

    # feeds

    def add_feed(self, url: str) -> tuple[Feed, bool]:
        """Add a feed; returns it and whether it was new."""
        with self.transaction() as db:
            cur = db.execute("INSERT OR IGNORE INTO feeds (url) VALUES (?)", (url,))
        return self.feed(url), cur.rowcount == 1

    def feed(self, ref: str | int) -> Feed:
        """A feed by id or URL."""
        row = self.db.execute(
            "SELECT id, url, title, etag, modified, last_polled, last_error FROM feeds WHERE id = ? OR url = ?",
            (ref if str(ref).isdigit() else -1, str(ref)),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no feed {ref!r}; `digest feeds list` shows the feeds")
        return Feed(*row)

    def feeds(self) -> list[Feed]:
        rows = self.db.execute("SELECT id, url, title, etag, modified, last_polled, last_error FROM feeds ORDER BY id")
        return [Feed(*r) for r in rows]

    def remove_feed(self, ref: str | int) -> Feed:
        feed = self.feed(ref)
        with self.transaction() as db:
            db.execute("DELETE FROM feeds WHERE id = ?", (feed.id,))
        return feed

    def record_poll(
        self,
        feed_id: int,
        *,
        polled_at: str,
        error: str | None = None,
        title: str | None = None,
        etag: str | None = None,
        modified: str | None = None,
        new_url: str | None = None,
    ) -> None:
        """Store a poll's outcome. On error the validators are kept as they were."""
        with self.transaction() as db:
            if error is not None:
                db.execute(
                    "UPDATE feeds SET last_polled = ?, last_error = ? WHERE id = ?",
                    (polled_at, error, feed_id),
                )
                return
            db.execute(
                "UPDATE feeds SET last_polled = ?, last_error = NULL, title = COALESCE(?, title), "
                "etag = ?, modified = ? WHERE id = ?",
                (polled_at, title, etag, modified, feed_id),
            )
            if new_url:
                clash = db.execute("SELECT id FROM feeds WHERE url = ?", (new_url,)).fetchone()
                if clash is None:
                    db.execute("UPDATE feeds SET url = ? WHERE id = ?", (new_url, feed_id))

    # episodes

    def ingest(self, episode: Episode, keys: list[str], status: Status = Status.NEW) -> int | None:
        """Store an episode unless one of its identity keys is already known.

        A known episode gets its new keys, GUID and enclosure URL recorded, so that a
        publisher changing one of them never makes it look new. Returns the new
        episode's id, or ``None`` if it was already there.
        """
        with self.transaction() as db:
            marks = ",".join("?" * len(keys))
            row = db.execute(
                f"SELECT episode_id FROM episode_keys WHERE feed_id = ? AND key IN ({marks}) LIMIT 1",
                (episode.feed_id, *keys),
            ).fetchone()
            if row is not None:
                episode_id = row[0]
                db.execute(
                    "UPDATE episodes SET guid = COALESCE(?, guid), "
                    "enclosure_url = COALESCE(?, enclosure_url) WHERE id = ?",
                    (episode.guid, episode.enclosure_url, episode_id),
                )
                created = None
            else:
                cur = db.execute(
                    "INSERT INTO episodes (feed_id, guid, title, published, enclosure_url, "
                    "enclosure_type, link, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        episode.feed_id,
                        episode.guid,
                        episode.title,
                        episode.published,
                        episode.enclosure_url,
                        episode.enclosure_type,
                        episode.link,
                        status.value,
                    ),
                )
                episode_id = created = cur.lastrowid
            db.executemany(
                "INSERT OR IGNORE INTO episode_keys (feed_id, key, episode_id) VALUES (?, ?, ?)",
                [(episode.feed_id, k, episode_id) for k in keys],
            )
            db.executemany(
                "INSERT OR IGNORE INTO transcript_links (episode_id, url, type, language) VALUES (?, ?, ?, ?)",
                [(episode_id, t.url, t.type, t.language) for t in episode.transcripts],
            )
        return created

    def _episodes(self, where: str = "1", params: tuple = (), limit: int | None = None) -> list[Episode]:
        rows = self.db.execute(
            f"SELECT {_EPISODE_COLUMNS} FROM episodes e JOIN feeds f ON f.id = e.feed_id "
            f"WHERE {where} ORDER BY e.published DESC NULLS LAST, e.id DESC LIMIT ?",
            (*params, -1 if limit is None else limit),
        ).fetchall()
        links: dict[int, list[TranscriptLink]] = {}
        if rows:
            ids = [r[0] for r in rows]
            for link in self.db.execute(
                f"SELECT episode_id, url, type, language FROM transcript_links "
                f"WHERE episode_id IN ({','.join('?' * len(ids))})",
                ids,
            ):
                links.setdefault(link[0], []).append(TranscriptLink(link[1], link[2], link[3]))
        return [
            Episode(
                id=r[0],
                feed_id=r[1],
                title=r[2],
                guid=r[3],
                published=r[4],
                enclosure_url=r[5],
                enclosure_type=r[6],
                link=r[7],
                status=Status(r[8]),
                attempts=r[9],
                error=r[10],
                audio_path=r[11],
                audio_sha256=r[12],
                transcript_source=r[13],
                show=r[14],
                transcripts=links.get(r[0], []),
            )
            for r in rows
        ]

    def episodes(
        self, status: Status | None = None, feed_id: int | None = None, limit: int | None = None
    ) -> list[Episode]:
        clauses: list[str] = ["1"]
        params: list[object] = []
        if status is not None:
            clauses.append("e.status = ?")
            params.append(status.value)
        if feed_id is not None:
            clauses.append("e.feed_id = ?")
            params.append(feed_id)
        return self._episodes(" AND ".join(clauses), tuple(params), limit)

    def episode(self, episode_id: int) -> Episode:
        found = self._episodes("e.id = ?", (episode_id,))
        if not found:
            raise NotFoundError(f"no episode {episode_id}; `digest episodes list` shows them")
        return found[0]

    def pending(self, max_attempts: int) -> list[Episode]:
        """Episodes the next run must work on, oldest first."""
        found = self._episodes(
            "e.status IN ('new', 'fetched') OR (e.status = 'failed' AND e.attempts < ?)",
            (max_attempts,),
        )
        return found[::-1]

    def mark_fetched(self, episode_id: int, audio_path: str, audio_sha256: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE episodes SET status = 'fetched', audio_path = ?, audio_sha256 = ?, "
                "updated = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?",
                (audio_path, audio_sha256, episode_id),
            )

    def mark_failed(self, episode_id: int, error: str) -> None:
        """Record a failure; the episode is retried on later runs until max_attempts."""
        with self.transaction() as db:
            db.execute(
                "UPDATE episodes SET status = 'failed', attempts = attempts + 1, error = ?, "
                "audio_path = NULL, updated = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?",
                (error, episode_id),
            )

    def save_transcript(self, episode_id: int, segments: list[Segment], source: str) -> None:
        """Store an episode's segments and mark it transcribed, in one transaction."""
        with self.transaction() as db:
            db.execute("DELETE FROM segments WHERE episode_id = ?", (episode_id,))
            db.executemany(
                "INSERT INTO segments (episode_id, idx, start, end, text) VALUES (?, ?, ?, ?, ?)",
                [(episode_id, i, s.start, s.end, s.text) for i, s in enumerate(segments)],
            )
            db.execute(
                "UPDATE episodes SET status = 'transcribed', transcript_source = ?, error = NULL, "
                "audio_path = NULL, updated = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?",
                (source, episode_id),
            )

    def segments(self, episode_id: int) -> list[Segment]:
        rows = self.db.execute(
            "SELECT start, end, text FROM segments WHERE episode_id = ? ORDER BY idx",
            (episode_id,),
        )
        return [Segment(*r) for r in rows]

    def cached_asr(self, audio_sha256: str, model: str) -> list[Segment] | None:
        row = self.db.execute(
            "SELECT segments FROM asr_cache WHERE audio_sha256 = ? AND model = ?",
            (audio_sha256, model),
        ).fetchone()
        return None if row is None else [Segment(*s) for s in json.loads(row[0])]

    def cache_asr(self, audio_sha256: str, model: str, segments: list[Segment]) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO asr_cache (audio_sha256, model, segments) VALUES (?, ?, ?)",
                (audio_sha256, model, json.dumps([[s.start, s.end, s.text] for s in segments])),
            )

    # claims and embeddings

    def save_claims(self, episode_id: int, claims: list[Claim]) -> list[Claim]:
        """Replace an episode's claims; returns them with their ids."""
        with self.transaction() as db:
            db.execute("DELETE FROM claims WHERE episode_id = ?", (episode_id,))
            for i, c in enumerate(claims):
                cur = db.execute(
                    "INSERT INTO claims (episode_id, idx, text, start, end, dropped, text_sha256) "
                    "VALUES (?, ?, ?, ?, ?, ?, digest_sha256(?))",
                    (episode_id, i, c.text, c.start, c.end, c.dropped, c.text),
                )
                c.id = cur.lastrowid or 0
        return claims

    def claims(self, episode_ids: list[int], kept_only: bool = False) -> list[Claim]:
        """Claims of some episodes, in episode then time order."""
        if not episode_ids:
            return []
        marks = ",".join("?" * len(episode_ids))
        rows = self.db.execute(
            f"SELECT c.id, c.episode_id, e.feed_id, c.text, c.start, c.end, c.dropped FROM claims c "
            f"JOIN episodes e ON e.id = c.episode_id WHERE c.episode_id IN ({marks})"
            f"{' AND c.dropped IS NULL' if kept_only else ''} ORDER BY c.episode_id, c.idx",
            episode_ids,
        )
        return [Claim(*r) for r in rows]

    def episodes_without_claims(self) -> list[Episode]:
        return self._episodes(
            "e.status = 'transcribed' AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.episode_id = e.id)"
        )

    def window(self, date: str) -> list[Episode]:
        """Transcribed episodes whose claims belong to the digest of ``date``: not in an earlier one."""
        return self._episodes("e.status = 'transcribed' AND (e.digest_date IS NULL OR e.digest_date = ?)", (date,))

    def heard_before(self, date: str) -> list[int]:
        """Episodes that went into digests before ``date``."""
        return [r[0] for r in self.db.execute("SELECT id FROM episodes WHERE digest_date < ?", (date,))]

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

    # digests

    def save_digest(self, digest: Digest, episode_ids: list[int]) -> None:
        """Store a day's digest (replacing one of the same date) and claim its episodes for that date."""
        with self.transaction() as db:
            db.execute("DELETE FROM digests WHERE date = ?", (digest.date,))
            db.execute(
                "INSERT INTO digests (date, episodes_scanned, shows_scanned, runners_up) VALUES (?, ?, ?, ?)",
                (
                    digest.date,
                    digest.episodes_scanned,
                    digest.shows_scanned,
                    json.dumps([asdict(r) for r in digest.runners_up]),
                ),
            )
            for i in digest.insights:
                cur = db.execute(
                    "INSERT INTO insights (date, rank, text, statement, shows, episodes, novelty, salience, score, "
                    "show_names, text_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, digest_sha256(?))",
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
                        i.text,
                    ),
                )
                quote_rank = {q.claim_id: n for n, q in enumerate(i.quotes, 1)}
                db.executemany(
                    "INSERT INTO insight_claims (insight_id, claim_id, quote_rank) VALUES (?, ?, ?)",
                    [(cur.lastrowid, c, quote_rank.get(c)) for c in i.claim_ids],
                )
            marks = ",".join("?" * len(episode_ids))
            if episode_ids:
                db.execute(f"UPDATE episodes SET digest_date = ? WHERE id IN ({marks})", (digest.date, *episode_ids))

    def digest(self, date: str | None = None) -> Digest:
        """A stored digest: of ``date``, or the latest."""
        row = self.db.execute(
            "SELECT date, episodes_scanned, shows_scanned, runners_up FROM digests "
            + ("WHERE date = ?" if date else "ORDER BY date DESC LIMIT 1"),
            (date,) if date else (),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no digest for {date}" if date else "no digest yet; run `digest run` first")
        digest = Digest(
            row[0],
            episodes_scanned=row[1],
            shows_scanned=row[2],
            runners_up=[RunnerUp(**r) for r in json.loads(row[3])],
        )
        for r in self.db.execute(
            "SELECT id, rank, text, statement, shows, episodes, novelty, salience, score, show_names "
            "FROM insights WHERE date = ? ORDER BY rank",
            (digest.date,),
        ).fetchall():
            insight = Insight(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], show_names=json.loads(r[9]))
            for claim_id, quote_rank, text, start, show, title, url in self.db.execute(
                "SELECT c.id, ic.quote_rank, c.text, c.start, f.title, e.title, e.enclosure_url "
                "FROM insight_claims ic JOIN claims c ON c.id = ic.claim_id JOIN episodes e ON e.id = c.episode_id "
                "JOIN feeds f ON f.id = e.feed_id WHERE ic.insight_id = ? ORDER BY ic.quote_rank IS NULL, "
                "ic.quote_rank, c.id",
                (r[0],),
            ):
                insight.claim_ids.append(claim_id)
                if quote_rank is not None:
                    insight.quotes.append(Quote(text, show or "", title, start, audio_link(url, start), claim_id))
            digest.insights.append(insight)
        return digest

    def digest_dates(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT date FROM digests ORDER BY date DESC")]

    def sent_texts(self, before: str) -> list[str]:
        """Statements and quotes of insights in digests before a date: what readers have seen."""
        rows = self.db.execute(
            "SELECT i.statement FROM insights i WHERE i.date < ? UNION "
            "SELECT c.text FROM insights i JOIN insight_claims ic ON ic.insight_id = i.id "
            "JOIN claims c ON c.id = ic.claim_id WHERE i.date < ? AND ic.quote_rank IS NOT NULL",
            (before, before),
        )
        return sorted(r[0] for r in rows)

    def digest_delivered(self, date: str) -> bool:
        """Whether any mail of this date's digest has gone out (or may have)."""
        row = self.db.execute(
            "SELECT 1 FROM deliveries WHERE date = ? AND status IN ('sent', 'sending', 'uncertain') LIMIT 1", (date,)
        ).fetchone()
        return row is not None

    # subscribers

    def add_subscriber(self, email: str, status: str = "active") -> tuple[Subscriber, bool]:
        """Add a subscriber, or reactivate one; returns it and whether anything changed."""
        with self.transaction() as db:
            row = db.execute("SELECT status FROM subscribers WHERE email = ?", (email,)).fetchone()
            if row is None:
                db.execute("INSERT INTO subscribers (email, status) VALUES (?, ?)", (email, status))
            elif row[0] != status and not (row[0] == "active" and status == "pending"):
                db.execute(
                    "UPDATE subscribers SET status = ?, changed = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') "
                    "WHERE email = ?",
                    (status, email),
                )
            else:
                return self.subscriber(email), False
        return self.subscriber(email), True

    def subscriber(self, ref: str | int) -> Subscriber:
        row = self.db.execute(
            "SELECT id, email, status, created FROM subscribers WHERE email = ? OR id = ?",
            (str(ref), ref if str(ref).isdigit() else -1),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no subscriber {ref!r}; `digest subscribers list` shows them")
        return Subscriber(*row)

    def subscribers(self, status: str | None = "active") -> list[Subscriber]:
        rows = self.db.execute(
            "SELECT id, email, status, created FROM subscribers WHERE ? IS NULL OR status = ? ORDER BY id",
            (status, status),
        )
        return [Subscriber(*r) for r in rows]

    def set_subscriber_status(self, email: str, status: str) -> Subscriber:
        sub = self.subscriber(email)
        with self.transaction() as db:
            db.execute(
                "UPDATE subscribers SET status = ?, changed = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?",
                (status, sub.id),
            )
        return self.subscriber(sub.id)

    def remove_subscriber(self, ref: str | int) -> Subscriber:
        sub = self.subscriber(ref)
        with self.transaction() as db:
            db.execute("DELETE FROM subscribers WHERE id = ?", (sub.id,))
        return sub

    # the send ledger

    _DELIVERY = (
        "SELECT d.date, d.subscriber_id, s.email, d.status, d.attempts, d.message_id, d.error "
        "FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id "
    )

    def deliveries(self, date: str | None = None) -> list[Delivery]:
        rows = self.db.execute(
            self._DELIVERY + "WHERE ? IS NULL OR d.date = ? ORDER BY d.date DESC, s.email", (date, date)
        )
        return [Delivery(*r) for r in rows]

    def delivery(self, date: str, subscriber_id: int) -> Delivery | None:
        row = self.db.execute(self._DELIVERY + "WHERE d.date = ? AND d.subscriber_id = ?", (date, subscriber_id))
        found = row.fetchone()
        return None if found is None else Delivery(*found)

    def record_delivery(
        self,
        date: str,
        subscriber_id: int,
        status: str,
        *,
        message_id: str | None = None,
        error: str | None = None,
        attempt: bool = False,
    ) -> None:
        """Move a ledger row to ``status``; ``attempt`` counts a new try. Committed at once."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO deliveries (date, subscriber_id, status, attempts, message_id, error) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (date, subscriber_id) DO UPDATE SET "
                "status = excluded.status, attempts = attempts + ?, message_id = COALESCE(excluded.message_id, "
                "message_id), error = excluded.error, updated = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
                (date, subscriber_id, status, int(attempt), message_id, error, int(attempt)),
            )

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
                    "insight",
                    r[0],
                    r[1],
                    ", ".join(json.loads(r[2])),
                    r[6] or "",
                    r[5],
                    r[3],
                    r[4],
                    audio_link(r[7], r[4] or 0),
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
        return {r[0]: Hit(kind, r[0], r[1], r[2] or "", r[3], r[4], r[5], r[6], audio_link(r[7], r[6])) for r in rows}

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

    # archive pages

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

    def insight_sources(self, insight_id: int) -> list[Hit]:
        """Every claim behind an insight, earliest episode first: its lineage."""
        ids = [r[0] for r in self.db.execute("SELECT claim_id FROM insight_claims WHERE insight_id = ?", (insight_id,))]
        hits = self.hits("claim", ids)
        return sorted(hits.values(), key=lambda h: (h.date or "", h.show, h.start or 0))

    def feed_episodes(self, feed_id: int) -> list[Episode]:
        return self._episodes("e.feed_id = ? AND e.status != 'skipped'", (feed_id,))
