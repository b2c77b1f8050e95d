"""Per-reader digests at scale: what choosing 10,000 subscribers' own picks adds to a run.

- The run: ``digest run --dry-run`` of the labelled corpus' first day (publisher transcripts, so no speech
  recognition: the cheapest run there is), and the delivery pass's cost per mail (render, sign the links,
  write to the outbox, the ledger) on a sample of readers, scaled to all of them.
- Per-reader ranking, for every subscriber (two interests each, clicks for a third of them, a week of
  picks already sent): reading their preferences, clicks and what they were sent, the dot products over
  the day's candidates, and fixing their picks. This is what the delivery pass adds per reader.

    python bench/readers.py [--readers 10000] [--sample 300] [--days 7]

Target: per-reader ranking under 10% of the run's time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
DAY = "2026-11-20"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=300, help="Mails sent to time the delivery pass per mail.")
    parser.add_argument("--days", type=int, default=7, help="Earlier days of picks each reader was sent.")
    args = parser.parse_args()

    import eval_insights

    from digest import pipeline
    from digest.config import load
    from digest.deliver import OutboxSender, deliver
    from digest.insights import days_before
    from digest.readers import ReaderDay
    from digest.store import Store

    home = Path(tempfile.mkdtemp(prefix="bench-readers-"))
    os.environ["DIGEST_HOME"] = str(home)
    config = load(home)
    store = Store(config.db_path)
    (home / "media").mkdir()
    (home / "feeds").mkdir()
    days = [eval_insights.load_day(eval_insights.EVAL / "day1.toml")]
    for path in eval_insights.write_feeds(days, 1, home / "media", home / "feeds", audio=False):
        store.add_feed(path.as_uri())
    t = time.perf_counter()
    pipeline.run(config, store, date=DAY, quiet=True, dry_run=True)
    run_s = time.perf_counter() - t
    candidates, vectors = store.candidates(DAY)

    rng = np.random.default_rng(0)
    with store.transaction() as db:
        db.executemany(
            "INSERT INTO subscribers (email) VALUES (?)", [(f"r{n}@example.com",) for n in range(args.readers)]
        )
        ids = [r[0] for r in db.execute("SELECT id FROM subscribers ORDER BY id")]
        for d in range(1, args.days + 1):  # earlier digests with the same candidates, each reader sent five
            date = days_before(DAY, d)
            db.execute(
                "INSERT INTO digests (date, episodes_scanned, shows_scanned, runners_up) VALUES (?, 0, 0, '[]')",
                (date,),
            )
            db.executemany(
                "INSERT INTO candidates (date, position, common, feed_ids, insight, vector) "
                "SELECT ?, position, common, feed_ids, insight, vector FROM candidates WHERE date = ?",
                [(date, DAY)],
            )
            db.executemany(
                "INSERT INTO picks (date, subscriber_id, rank, source, position, why) VALUES (?, ?, ?, ?, ?, 'bench')",
                [(date, i, k, date, k) for i in ids for k in range(1, 6)],
            )
        db.executemany(
            'INSERT INTO preferences (subscriber_id, interests, vectors, count) VALUES (?, \'["a", "b"]\', ?, ?)',
            [
                (i, vectors[rng.choice(len(vectors), 2, replace=False)].tobytes(), int(rng.choice([3, 5, 10])))
                for i in ids
            ],
        )
        db.executemany(
            "INSERT INTO clicks (subscriber_id, date, position, direction, text, vector) VALUES (?, ?, ?, ?, 'x', ?)",
            [
                (i, days_before(DAY, 1), k, int(rng.choice([-1, 1])), vectors[k - 1].tobytes())
                for i in ids[::3]
                for k in (1, 2, 3)
            ],
        )

    sample = store.subscribers()[: args.sample]
    t = time.perf_counter()
    report = deliver(config, store, store.digest(DAY), sender=OutboxSender(home / "outbox"), only=sample)
    per_mail = (time.perf_counter() - t) / len(report.sent)

    day = ReaderDay.load(config, store, store.digest(DAY))
    rest = ids[args.sample :]
    t = time.perf_counter()
    for i in rest:
        day.picks(store, i)
    per_reader = (time.perf_counter() - t) / len(rest)

    ranking = per_reader * args.readers
    delivery = per_mail * args.readers
    print(f"candidates of the day: {len(candidates)}; readers: {args.readers}; days of history: {args.days}")
    print(f"run of the corpus day (no speech recognition): {run_s:.1f} s")
    print(f"delivery pass: {per_mail * 1000:.2f} ms a mail (per-reader ranking included) -> {delivery:.1f} s")
    print(f"per-reader ranking: {per_reader * 1000:.3f} ms a reader -> {ranking:.1f} s")
    print(f"ranking / (run + delivery): {ranking / (run_s + delivery):.1%}  (target < 10%)")
    print(f"ranking / run alone: {ranking / run_s:.1%}")


if __name__ == "__main__":
    main()
