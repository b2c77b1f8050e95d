"""Feeds, episodes and transcripts."""

from __future__ import annotations

import json

from digest.errors import NotFoundError
from digest.models import Episode, Feed, Segment, Status
from digest.store.base import StoreBase

_FEED_COLUMNS = "id, url, title, etag, modified, last_polled, last_error, body_sha256, item_hashes"  # Feed's fields


class Catalog(StoreBase):
    """Feeds, their episodes, transcripts and the ASR cache."""

    def add_feed(self, url: str) -> tuple[Feed, bool]:
        """Add a feed; returns it and whether it was new."""
        with self.transaction() as db:
            cur = db.execute("INSERT OR IGNORE INTO feeds (url) VALUES (?)", (url,))
        return self.feed(url), cur.rowcount == 1

    def add_feeds(self, urls: list[str]) -> int:
        """Add feeds in one transaction, all or none; returns how many were new."""
        with self.transaction() as db:
            return sum(db.execute("INSERT OR IGNORE INTO feeds (url) VALUES (?)", (u,)).rowcount for u in urls)

    def feed(self, ref: str | int) -> Feed:
        """A feed by id or URL."""
        row = self.db.execute(
            f"SELECT {_FEED_COLUMNS} FROM feeds WHERE id = ? OR url = ?",
            (ref if str(ref).isdigit() else -1, str(ref)),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no feed {ref!r}; `digest feeds list` shows the feeds")
        return Feed(*row)

    def feeds(self) -> list[Feed]:
        rows = self.db.execute(f"SELECT {_FEED_COLUMNS} FROM feeds ORDER BY id")
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
        body_sha256: str | None = None,
        item_hashes: bytes | None = None,
        warning: str | None = None,
    ) -> None:
        """Store a poll's outcome. On error the validators are kept as they were, and so are the
        body and item hashes when none are given (a 304). A ``warning`` (a refused new URL) is shown
        as the feed's error though the poll went through."""
        with self.transaction() as db:
            if error is not None:
                db.execute(
                    "UPDATE feeds SET last_polled = ?, last_error = ? WHERE id = ?",
                    (polled_at, error, feed_id),
                )
                return
            db.execute(
                "UPDATE feeds SET last_polled = ?, last_error = ?, title = COALESCE(?, title), "
                "etag = ?, modified = ?, body_sha256 = COALESCE(?, body_sha256), "
                "item_hashes = COALESCE(?, item_hashes) WHERE id = ?",
                (polled_at, warning, title, etag, modified, body_sha256, item_hashes, feed_id),
            )
            if new_url:
                clash = db.execute("SELECT id FROM feeds WHERE url = ?", (new_url,)).fetchone()
                if clash is None:
                    db.execute("UPDATE feeds SET url = ? WHERE id = ?", (new_url, feed_id))

    # episodes

    def ingest(self, episode: Episode, keys: list[str], status: Status = Status.NEW) -> int | None:
        """Store an episode unless it is already known by one of its identity keys (strongest first)
        and no stronger key conflicts: a stored episode with a different GUID is another episode.

        A known episode gets its new keys, GUID and enclosure URL recorded, so that a
        publisher changing one of them never makes it look new. Returns the new
        episode's id, or ``None`` if it was already there.
        """
        with self.transaction() as db:
            marks = ",".join("?" * len(keys))
            known = {
                key: (episode_id, guid)
                for key, episode_id, guid in db.execute(
                    f"SELECT k.key, k.episode_id, e.guid FROM episode_keys k JOIN episodes e ON e.id = k.episode_id "
                    f"WHERE k.feed_id = ? AND k.key IN ({marks})",
                    (episode.feed_id, *keys),
                )
            }
            mine = (episode.guid or "").strip()

            def agrees(key: str) -> bool:
                theirs = (known[key][1] or "").strip()
                # Before 2026-11-27 a relative-looking GUID was stored resolved against the feed URL.
                same_guid = theirs == mine or theirs.endswith("/" + mine)
                return key.startswith("guid:") or not mine or not theirs or same_guid

            row = next((known[k] for k in keys if k in known and agrees(k)), None)
            if row is not None:
                episode_id = row[0]
                db.execute(
                    "UPDATE episodes SET guid = COALESCE(?, guid), "
                    "enclosure_url = COALESCE(?, enclosure_url), duration = COALESCE(?, duration) WHERE id = ?",
                    (episode.guid, episode.enclosure_url, episode.duration, episode_id),
                )
                created = None
            else:
                cur = db.execute(
                    "INSERT INTO episodes (feed_id, guid, title, published, enclosure_url, "
                    "enclosure_type, link, status, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        episode.feed_id,
                        episode.guid,
                        episode.title,
                        episode.published,
                        episode.enclosure_url,
                        episode.enclosure_type,
                        episode.link,
                        status.value,
                        episode.duration,
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
                "INSERT INTO segments (episode_id, idx, start, end, text, speaker) VALUES (?, ?, ?, ?, ?, ?)",
                [(episode_id, i, s.start, s.end, s.text, s.speaker) for i, s in enumerate(segments)],
            )
            db.execute(
                "UPDATE episodes SET status = 'transcribed', transcript_source = ?, error = NULL, "
                "audio_path = NULL, updated = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?",
                (source, episode_id),
            )

    def segments(self, episode_id: int) -> list[Segment]:
        rows = self.db.execute(
            "SELECT start, end, text, speaker FROM segments WHERE episode_id = ? ORDER BY idx",
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

    def feed_episodes(self, feed_id: int) -> list[Episode]:
        return self._episodes("e.feed_id = ? AND e.status != 'skipped'", (feed_id,))
