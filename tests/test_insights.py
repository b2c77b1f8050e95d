"""The insights stage on the labelled corpus: embeddings computed once, same inputs same digest, final once sent."""

from __future__ import annotations

import json

import pytest
from test_deliver import follow_eval_day

from digest import pipeline
from digest.config import load
from digest.embed import SentenceTransformerEmbedder
from digest.models import Status
from digest.store import Store

pytestmark = pytest.mark.slow


class CountingEmbedder(SentenceTransformerEmbedder):
    """The real bundled MiniLM, counting the texts it was asked to embed."""

    texts = 0

    def embed(self, texts):
        type(self).texts += len(texts)
        return super().embed(texts)


def test_embeddings_are_computed_once_and_reruns_give_the_same_digest(home):
    follow_eval_day(home)
    config = load(home)
    store = Store(config.db_path)
    embedder = CountingEmbedder()
    first = pipeline.run(config, store, date="2026-11-20", quiet=True, dry_run=True, embedder=embedder)
    embedded = CountingEmbedder.texts
    assert embedded > 0
    (home / "index" / "sent.faiss").write_bytes(b"corrupt")  # indexes are rebuilt from SQLite
    second = pipeline.run(config, store, date="2026-11-20", quiet=True, dry_run=True, embedder=embedder)
    assert CountingEmbedder.texts == embedded  # nothing embedded twice
    assert json.dumps(first.digest.to_json(explain=True)) == json.dumps(second.digest.to_json(explain=True))
    assert store.digest("2026-11-20").to_json() == first.digest.to_json()


def test_once_mail_has_gone_out_the_digest_is_final_and_new_episodes_wait(home):
    follow_eval_day(home, upto=1)
    config = load(home)
    store = Store(config.db_path)
    store.add_subscriber("ada@example.com")
    sent = pipeline.run(config, store, date="2026-11-20", quiet=True)
    assert sent.delivery.sent == ["ada@example.com"]
    follow_eval_day(home, upto=2)  # day 2's episodes appear later the same day
    again = pipeline.run(config, store, date="2026-11-20", quiet=True)
    assert again.digest.to_json() == sent.digest.to_json() and again.delivery.already == ["ada@example.com"]
    tomorrow = pipeline.run(config, store, date="2026-11-21", quiet=True)
    assert tomorrow.digest.episodes_scanned == 4 and tomorrow.delivery.sent == ["ada@example.com"]


def test_the_lookback_window_ranks_recent_episodes_and_archives_older_ones_as_heard(home):
    follow_eval_day(home, upto=2)  # episodes published on 2026-11-20 and 2026-11-21
    # No first-poll backfill here: this is the window of a feed followed for a while (tests/test_first_hour.py).
    config = load(home, overrides={"rank.lookback_days": 2, "feeds.backfill_days": 0})
    store = Store(config.db_path)
    report = pipeline.run(config, store, date="2026-11-23", quiet=True, dry_run=True)
    published = {e.id: (e.published or "")[:10] for e in store.episodes(Status.TRANSCRIBED)}
    recent = {i for i, day in published.items() if day == "2026-11-21"}
    older = {i for i, day in published.items() if day == "2026-11-20"}
    assert recent and older and report.digest.episodes_scanned == len(recent)
    quoted = {q.text for i in report.digest.insights for q in i.quotes}
    older_texts = {c.text for c in store.claims(sorted(older))}
    assert quoted and not quoted & older_texts  # nothing older than the window is in today's five
    assert older <= set(store.heard_before("2026-11-23"))  # but it is archived as heard
    # The next day's window starts after this one; nothing is ranked twice.
    tomorrow = pipeline.run(config, store, date="2026-11-24", quiet=True, dry_run=True)
    assert tomorrow.digest.episodes_scanned == 0


def test_a_digest_takes_nothing_published_after_its_date_and_novelty_counts_only_what_came_before(home):
    """Both labelled days in the feeds at once, the first day's digest built first: the second day's episodes
    wait for their own date, and nothing of that date counts as already heard."""
    follow_eval_day(home, upto=2)
    config = load(home)
    store = Store(config.db_path)
    embedder = SentenceTransformerEmbedder()
    first = pipeline.run(config, store, date="2026-11-20", quiet=True, dry_run=True, embedder=embedder).digest
    day_two = {e.id for e in store.episodes(Status.TRANSCRIBED) if (e.published or "") >= "2026-11-21"}
    assert day_two and first.episodes_scanned == len(store.episodes(Status.TRANSCRIBED)) - len(day_two)
    assert not day_two & set(store.heard_before("2026-11-21"))
    second = pipeline.run(config, store, date="2026-11-21", quiet=True, dry_run=True, embedder=embedder).digest
    assert second.episodes_scanned == len(day_two)
    assert any(i.novelty > 0.5 for i in second.insights)  # the day's own new stories are new
