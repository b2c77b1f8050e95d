"""The connection, transactions and migrations that every table group shares."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from digest.migrations import MIGRATIONS
from digest.models import Episode, Status, TranscriptLink

_EPISODE_COLUMNS = (
    "e.id, e.feed_id, e.title, e.guid, e.published, e.enclosure_url, e.enclosure_type, "
    "e.link, e.status, e.attempts, e.error, e.audio_path, e.audio_sha256, "
    "e.transcript_source, f.title, e.duration"
)


def text_hash(text: str) -> str:
    """The key of a text's embedding: claims and insights join their vectors on it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _sql_text_hash(text: str | None) -> str | None:
    return None if text is None else text_hash(text)


class StoreBase:
    """A digest database connection. Use from one thread; workers return results to the driver."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.create_function("digest_sha256", 1, _sql_text_hash, deterministic=True)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.migrate()

    def close(self) -> None:
        self.db.close()

    def segment_anchor(self, episode_id: int, start: float) -> int:
        """The episode page's anchor (``#t<second>``) of the transcript segment that holds ``start``."""
        row = self.db.execute(
            "SELECT COALESCE((SELECT MAX(start) FROM segments WHERE episode_id = ? AND start <= ?), "
            "(SELECT MIN(start) FROM segments WHERE episode_id = ?))",
            (episode_id, start + 0.01, episode_id),  # statements keep their start to the hundredth
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else int(start)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing: a crash inside leaves the store as it was. Inside another transaction it is a
        savepoint, so a batch of writes (a feed's episodes) commits once."""
        if self.db.in_transaction:
            self.db.execute("SAVEPOINT nested")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK TO nested")
                self.db.execute("RELEASE nested")
                raise
            self.db.execute("RELEASE nested")
            return
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
                duration=r[15],
                transcripts=links.get(r[0], []),
            )
            for r in rows
        ]
