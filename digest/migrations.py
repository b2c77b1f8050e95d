"""The schema, as small named migrations applied in order. Never edit a released one; add a new one."""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "m001_feeds_episodes",
        """
        CREATE TABLE feeds (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL UNIQUE,
            title TEXT,
            etag TEXT,
            modified TEXT,
            last_polled TEXT,
            last_error TEXT,
            created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
        );
        CREATE TABLE episodes (
            id INTEGER PRIMARY KEY,
            feed_id INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
            guid TEXT,
            title TEXT NOT NULL,
            published TEXT,
            enclosure_url TEXT,
            enclosure_type TEXT,
            link TEXT,
            status TEXT NOT NULL DEFAULT 'new',
            attempts INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            audio_path TEXT,
            audio_sha256 TEXT,
            transcript_source TEXT,
            created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
            updated TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
        );
        CREATE INDEX episodes_status ON episodes(status);
        CREATE INDEX episodes_feed ON episodes(feed_id, published);
        -- Every identity an episode has been seen under: guid:, url:, title:.
        CREATE TABLE episode_keys (
            feed_id INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            episode_id INTEGER NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
            PRIMARY KEY (feed_id, key)
        );
        CREATE TABLE transcript_links (
            episode_id INTEGER NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
            url TEXT NOT NULL,
            type TEXT NOT NULL,
            language TEXT,
            PRIMARY KEY (episode_id, url)
        );
        CREATE TABLE segments (
            id INTEGER PRIMARY KEY,
            episode_id INTEGER NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            start REAL NOT NULL,
            end REAL NOT NULL,
            text TEXT NOT NULL,
            UNIQUE (episode_id, idx)
        );
        -- Finished ASR output by audio content hash and model, so no audio is transcribed twice.
        CREATE TABLE asr_cache (
            audio_sha256 TEXT NOT NULL,
            model TEXT NOT NULL,
            segments TEXT NOT NULL,
            PRIMARY KEY (audio_sha256, model)
        );
        """,
    ),
    (
        "m002_claims_digests",
        """
        CREATE TABLE claims (
            id INTEGER PRIMARY KEY,
            episode_id INTEGER NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            text TEXT NOT NULL,
            start REAL NOT NULL,
            end REAL NOT NULL,
            dropped TEXT,
            UNIQUE (episode_id, idx)
        );
        -- Embeddings by text hash and model: never computed twice for the same text.
        CREATE TABLE embeddings (
            sha256 TEXT NOT NULL,
            model TEXT NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (sha256, model)
        );
        -- The digest date whose window an episode's claims belong to.
        ALTER TABLE episodes ADD COLUMN digest_date TEXT;
        CREATE TABLE digests (
            date TEXT PRIMARY KEY,
            created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
            episodes_scanned INTEGER NOT NULL,
            shows_scanned INTEGER NOT NULL,
            runners_up TEXT NOT NULL DEFAULT '[]'
        );
        CREATE TABLE insights (
            id INTEGER PRIMARY KEY,
            date TEXT NOT NULL REFERENCES digests(date) ON DELETE CASCADE,
            rank INTEGER NOT NULL,
            text TEXT NOT NULL,
            statement TEXT NOT NULL,
            shows INTEGER NOT NULL,
            episodes INTEGER NOT NULL,
            novelty REAL NOT NULL,
            salience REAL NOT NULL,
            score REAL NOT NULL,
            show_names TEXT NOT NULL,
            UNIQUE (date, rank)
        );
        CREATE TABLE insight_claims (
            insight_id INTEGER NOT NULL REFERENCES insights(id) ON DELETE CASCADE,
            claim_id INTEGER NOT NULL REFERENCES claims(id) ON DELETE CASCADE,
            quote_rank INTEGER,
            PRIMARY KEY (insight_id, claim_id)
        );
        """,
    ),
    (
        "m003_subscribers_deliveries",
        """
        CREATE TABLE subscribers (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE COLLATE NOCASE,
            status TEXT NOT NULL DEFAULT 'active',
            created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
            changed TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
        );
        -- The send ledger: one row per digest date and subscriber, so nobody gets two.
        CREATE TABLE deliveries (
            date TEXT NOT NULL,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            message_id TEXT,
            error TEXT,
            updated TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
            PRIMARY KEY (date, subscriber_id)
        );
        """,
    ),
    (
        "m004_fts",
        """
        -- Full-text search (BM25) over transcripts, claims and insights, kept in sync by triggers.
        CREATE VIRTUAL TABLE segments_fts USING fts5(text, content='segments', content_rowid='id',
            tokenize='porter unicode61 remove_diacritics 2');
        INSERT INTO segments_fts (rowid, text) SELECT id, text FROM segments;
        CREATE TRIGGER segments_fts_insert AFTER INSERT ON segments BEGIN
            INSERT INTO segments_fts (rowid, text) VALUES (new.id, new.text);
        END;
        CREATE TRIGGER segments_fts_delete AFTER DELETE ON segments BEGIN
            INSERT INTO segments_fts (segments_fts, rowid, text) VALUES ('delete', old.id, old.text);
        END;
        CREATE TRIGGER segments_fts_update AFTER UPDATE ON segments BEGIN
            INSERT INTO segments_fts (segments_fts, rowid, text) VALUES ('delete', old.id, old.text);
            INSERT INTO segments_fts (rowid, text) VALUES (new.id, new.text);
        END;
        CREATE VIRTUAL TABLE claims_fts USING fts5(text, content='claims', content_rowid='id',
            tokenize='porter unicode61 remove_diacritics 2');
        -- Only kept claims are indexed: dropped ones (ads, small talk) stay searchable as transcript text.
        INSERT INTO claims_fts (rowid, text) SELECT id, text FROM claims WHERE dropped IS NULL;
        CREATE TRIGGER claims_fts_insert AFTER INSERT ON claims WHEN new.dropped IS NULL BEGIN
            INSERT INTO claims_fts (rowid, text) VALUES (new.id, new.text);
        END;
        CREATE TRIGGER claims_fts_delete AFTER DELETE ON claims WHEN old.dropped IS NULL BEGIN
            INSERT INTO claims_fts (claims_fts, rowid, text) VALUES ('delete', old.id, old.text);
        END;
        CREATE TRIGGER claims_fts_update_old AFTER UPDATE ON claims WHEN old.dropped IS NULL BEGIN
            INSERT INTO claims_fts (claims_fts, rowid, text) VALUES ('delete', old.id, old.text);
        END;
        CREATE TRIGGER claims_fts_update_new AFTER UPDATE ON claims WHEN new.dropped IS NULL BEGIN
            INSERT INTO claims_fts (rowid, text) VALUES (new.id, new.text);
        END;
        CREATE VIRTUAL TABLE insights_fts USING fts5(text, statement, content='insights', content_rowid='id',
            tokenize='porter unicode61 remove_diacritics 2');
        INSERT INTO insights_fts (rowid, text, statement) SELECT id, text, statement FROM insights;
        CREATE TRIGGER insights_fts_insert AFTER INSERT ON insights BEGIN
            INSERT INTO insights_fts (rowid, text, statement) VALUES (new.id, new.text, new.statement);
        END;
        CREATE TRIGGER insights_fts_delete AFTER DELETE ON insights BEGIN
            INSERT INTO insights_fts (insights_fts, rowid, text, statement) VALUES ('delete', old.id, old.text, old.statement);
        END;
        CREATE TRIGGER insights_fts_update AFTER UPDATE ON insights BEGIN
            INSERT INTO insights_fts (insights_fts, rowid, text, statement) VALUES ('delete', old.id, old.text, old.statement);
            INSERT INTO insights_fts (rowid, text, statement) VALUES (new.id, new.text, new.statement);
        END;
        -- The text hash links a row to its embedding (digest_sha256 is registered by the store).
        ALTER TABLE claims ADD COLUMN text_sha256 TEXT;
        ALTER TABLE insights ADD COLUMN text_sha256 TEXT;
        UPDATE claims SET text_sha256 = digest_sha256(text);
        UPDATE insights SET text_sha256 = digest_sha256(text);
        CREATE INDEX claims_episode ON claims(episode_id);
        CREATE INDEX insight_claims_claim ON insight_claims(claim_id);
        """,
    ),
    (
        "m005_confirmation_sent",
        """
        -- When the last confirmation mail went to an address, so a form flood sends one, not thirty.
        ALTER TABLE subscribers ADD COLUMN confirm_sent TEXT;
        """,
    ),
    (
        "m006_speakers_and_reasons",
        """
        -- Who spoke a segment or claim, when a publisher transcript names speakers: statements stay within one turn.
        ALTER TABLE segments ADD COLUMN speaker TEXT;
        ALTER TABLE claims ADD COLUMN speaker TEXT;
        -- The features that decided each pick, for --explain.
        ALTER TABLE insights ADD COLUMN why TEXT;
        """,
    ),
    (
        "m007_episode_duration",
        """
        -- itunes:duration in seconds, as the feed states it.
        ALTER TABLE episodes ADD COLUMN duration REAL;
        """,
    ),
    (
        "m008_llm_select",
        """
        -- Which method picked a digest (ranker or llm) and, when the LLM fell back, why.
        ALTER TABLE digests ADD COLUMN method TEXT NOT NULL DEFAULT 'ranker';
        ALTER TABLE digests ADD COLUMN method_note TEXT NOT NULL DEFAULT '';
        -- The language model's one-line reason for a pick (llm.mode = select).
        ALTER TABLE insights ADD COLUMN reason TEXT NOT NULL DEFAULT '';
        -- A quote that is a passage of its claim's transcript rather than the whole statement (llm.mode = select).
        ALTER TABLE insight_claims ADD COLUMN quote TEXT;
        ALTER TABLE insight_claims ADD COLUMN quote_start REAL;
        -- Validated LLM answers by the hash of model, prompt version and request: a rerun costs no call.
        CREATE TABLE llm_cache (
            key TEXT PRIMARY KEY,
            answer TEXT NOT NULL,
            created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
        );
        """,
    ),
    (
        "m009_feed_hashes",
        """
        -- The SHA-256 of the last feed document parsed: an unchanged document from a server without
        -- ETag or Last-Modified is not parsed or stored again.
        ALTER TABLE feeds ADD COLUMN body_sha256 TEXT;
        -- An 8-byte hash of each item's raw XML at the last poll: only items not seen before are parsed.
        ALTER TABLE feeds ADD COLUMN item_hashes BLOB;
        """,
    ),
    (
        "m010_readers",
        """
        -- The day's candidates for per-reader digests: the common picks (common = 1) and the runners-up
        -- that passed the quality bar, each a whole insight (JSON) with its unit vector, so a reader's
        -- picks cost dot products.
        CREATE TABLE candidates (
            date TEXT NOT NULL REFERENCES digests(date) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            common INTEGER NOT NULL,
            feed_ids TEXT NOT NULL,
            insight TEXT NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (date, position)
        );
        -- A reader's own settings: shows (NULL: all), interest phrases and their vectors, how many a day.
        CREATE TABLE preferences (
            subscriber_id INTEGER PRIMARY KEY REFERENCES subscribers(id) ON DELETE CASCADE,
            feed_ids TEXT,
            interests TEXT NOT NULL DEFAULT '[]',
            vectors BLOB,
            count INTEGER,
            changed TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
        );
        -- "More like this" (+1) and "less like this" (-1), one per reader and candidate, with its vector.
        CREATE TABLE clicks (
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            date TEXT NOT NULL,
            position INTEGER NOT NULL,
            direction INTEGER NOT NULL,
            text TEXT NOT NULL,
            vector BLOB NOT NULL,
            at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
            PRIMARY KEY (subscriber_id, date, position)
        );
        -- What each reader was sent (or is being sent) of a date's candidates, and why: fixed once chosen,
        -- so a rerun after a crash sends the same digest.
        CREATE TABLE picks (
            date TEXT NOT NULL,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            rank INTEGER NOT NULL,
            position INTEGER NOT NULL,
            why TEXT NOT NULL,
            PRIMARY KEY (date, subscriber_id, rank),
            FOREIGN KEY (date, position) REFERENCES candidates(date, position) ON DELETE CASCADE
        );
        CREATE INDEX picks_subscriber ON picks(subscriber_id);
        -- Links (preferences, feedback) signed before this time no longer work: `digest subscribers revoke`.
        ALTER TABLE subscribers ADD COLUMN links_revoked TEXT;
        """,
    ),
    (
        "m011_weekly_readers",
        """
        -- A reader's digest comes daily or weekly (the week's best on readers.weekly_day).
        ALTER TABLE preferences ADD COLUMN frequency TEXT NOT NULL DEFAULT 'daily';
        -- A pick keeps its mail's date (date: a weekly mail's send day) apart from its candidate's (source).
        CREATE TABLE picks_new (
            date TEXT NOT NULL,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            rank INTEGER NOT NULL,
            source TEXT NOT NULL,
            position INTEGER NOT NULL,
            why TEXT NOT NULL,
            PRIMARY KEY (date, subscriber_id, rank),
            FOREIGN KEY (source, position) REFERENCES candidates(date, position) ON DELETE CASCADE
        );
        INSERT INTO picks_new (date, subscriber_id, rank, source, position, why)
            SELECT date, subscriber_id, rank, date, position, why FROM picks;
        DROP TABLE picks;
        ALTER TABLE picks_new RENAME TO picks;
        CREATE INDEX picks_subscriber ON picks(subscriber_id);
        """,
    ),
]
