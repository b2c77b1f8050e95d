"""Each reader's own digest on the real-dev days: what readers with stated interests get, offline.

Each real-dev day (bench/data/evalsets/real-dev, published transcripts) is served as one RSS feed per show
over HTTP on loopback and digested by ``digest run --dry-run`` in a data directory of its own (offline
ranking). Then, from the day's stored candidates, exactly as a send would choose:

* **one show's field**: for each show with a field of its own, a reader interested in that field (no show
  filter, the default count): how many of their picks come from that show, against how many of the day's
  candidates and of the common picks do. Target: at least 3 when the day has at least 3 candidates from it.
* **no preferences**: the reader's picks are the common ones, in order. Target: always.
* **opposite interests**: an AI reader and an infrastructure reader; picks they share. Target: at most 2.

    python bench/readers_real.py
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import eval_real  # noqa: E402
import real_days  # noqa: E402

# A field in a reader's words, for each show whose field is its own (the Changelog shows are general).
FIELDS = {
    "Practical AI": "AI, machine learning and language models",
    "Go Time": "the Go programming language",
    "JS Party": "JavaScript and web front-end frameworks",
    "Ship It!": "infrastructure, Kubernetes and operations",
}
OPPOSITE = ("AI, machine learning and language models", "databases, infrastructure and operations")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def digest_day(day: real_days.Day, base: Path):
    """The day digested from its transcripts served on loopback; its config, store and ReaderDay."""
    from digest import pipeline
    from digest.config import load
    from digest.readers import ReaderDay
    from digest.store import Store

    for folder in ("media", "feeds", "home"):
        (base / folder).mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(base)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"

    def link(path: Path) -> str:
        return f"{url}/{path.relative_to(base).as_posix()}"

    config = load(base / "home", overrides={"fetch.private_addresses": "allow"})
    store = Store(config.db_path)
    for path in eval_real.write_feeds([day], base / "media", base / "feeds", link):
        store.add_feed(link(path))
    digest = pipeline.run(config, store, date=day.date, quiet=True, dry_run=True).digest
    server.shutdown()
    return config, store, ReaderDay.load(config, store, digest)


def picks_of(store, rday, embedder, email: str, *interests: str) -> list:
    """The candidates a new reader with these interests (and nothing else) would get."""
    from digest.readers import Preferences

    sub, _ = store.add_subscriber(email)
    vectors = embedder.embed(list(interests)) if interests else None
    store.save_preferences(sub.id, Preferences(interests=list(interests), vectors=vectors))
    by_position = {c.position: c for c in rday.candidates}
    return [by_position[p.position] for p in rday.choose(store, sub.id)]


def from_show(candidates: list, feed_id: int) -> int:
    return sum(feed_id in c.feed_ids for c in candidates)


def main() -> None:
    from digest.minilm import NumpyMiniLM

    embedder = NumpyMiniLM()
    failures = 0
    for day in real_days.load("real-dev"):
        with tempfile.TemporaryDirectory() as tmp:
            config, store, rday = digest_day(day, Path(tmp))
            shows = {f.id: f.title for f in store.feeds()}

            reader = functools.partial(picks_of, store, rday, embedder)
            common = [c for c in rday.candidates if c.common]
            print(f"{day.date}: {len(rday.candidates)} candidates, {len(common)} common picks")
            for feed_id, show in shows.items():
                if show not in FIELDS:
                    continue
                got = reader(f"{feed_id}@example.com", FIELDS[show])
                has = from_show(rday.candidates, feed_id)
                ok = from_show(got, feed_id) >= 3 or has < 3
                failures += not ok
                print(
                    f"  {show} ({FIELDS[show]}): {from_show(got, feed_id)} of the reader's {len(got)} picks from it;"
                    f" the day has {has} candidates and {from_show(common, feed_id)} common picks from it"
                    + ("" if ok else "  ** under 3 **")
                )
            plain = reader("plain@example.com")
            same = [c.position for c in plain] == [c.position for c in common]
            failures += not same
            print(f"  no preferences: {'the common picks' if same else 'NOT the common picks'}")
            a, b = reader("a@example.com", OPPOSITE[0]), reader("b@example.com", OPPOSITE[1])
            shared = len({c.position for c in a} & {c.position for c in b})
            failures += shared > 2
            print(f"  '{OPPOSITE[0]}' and '{OPPOSITE[1]}': {shared} shared of {len(a)} and {len(b)} picks")
            for label, picks in (("AI", a), ("infrastructure", b)):
                for c in picks:
                    where = ", ".join(shows[f] for f in c.feed_ids)
                    print(f"     {label}: [{where}] {c.insight.text[:110]}")
            store.close()
    print("all targets met" if not failures else f"{failures} targets missed")


if __name__ == "__main__":
    main()
