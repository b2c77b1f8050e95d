"""Polling a big feed: 50,000 items (about 40 MB), parsed, stored, and polled again.

Compares digest's parse with the bare ``feedparser.parse`` of the same document in the same run, then
times the first poll (parse and store every item), a re-poll of the unchanged document from a server
that sends no ETag (digest compares the body's hash and skips the parse), and a re-poll with one new
item (only items whose raw XML is new are parsed), all through ``feeds.poll`` over a real HTTP server on
loopback.

    python bench/feeds.py [--items 50000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import feedparser  # noqa: E402
from conftest import serve_on_loopback  # noqa: E402

from digest import feeds  # noqa: E402
from digest.config import load  # noqa: E402
from digest.rss import RssItem, rss  # noqa: E402
from digest.store import Store  # noqa: E402


def document(items: int) -> bytes:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    body = "Notes on the episode, with links and credits. " * 12
    return rss(
        "Big Feed",
        [
            RssItem(
                f"Episode {n}",
                f"big-{n}",
                start + timedelta(hours=n),
                f"https://cdn.example.com/{n}.mp3",
                xml=f"<description>{body}</description>",
            )
            for n in range(items, 0, -1)
        ],
    ).encode()


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=50_000)
    args = parser.parse_args()
    served = {"body": document(args.items)}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_GET(self) -> None:  # no ETag, no Last-Modified: the server gives no validator
            body = served["body"]
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = serve_on_loopback(Handler)
    url = f"http://127.0.0.1:{httpd.server_address[1]}/feed.xml"
    size = len(served["body"]) / 1e6

    _, bare = timed(lambda: feedparser.parse(served["body"]))
    parsed, ours = timed(lambda: feeds.parse_feed(served["body"], 1, url))
    print(f"{args.items} items, {size:.1f} MB")
    print(f"  parse: feedparser.parse {bare:.1f} s, digest parse_feed {ours:.1f} s ({ours / bare:.2f}x)")
    with tempfile.TemporaryDirectory() as home:
        config = load(Path(home), overrides={"feeds.initial_episodes": 3, "fetch.private_addresses": "allow"})
        store = Store(config.db_path)
        store.add_feed(url)
        first, t_first = timed(lambda: feeds.poll(store, config))
        again, t_again = timed(lambda: feeds.poll(store, config))
        served["body"] = document(args.items + 1)
        grown, t_grown = timed(lambda: feeds.poll(store, config))
        stored = store.db.execute("SELECT COUNT(*) FROM episodes").fetchone()[0]
    print(
        f"  first poll (parse and store all): {t_first:.1f} s, {stored - 1} episodes stored "
        "(the newest 3 to transcribe, the back catalogue as skipped)"
    )
    print(
        f"  re-poll, unchanged, no ETag: {t_again:.2f} s ({t_again / bare:.3f}x the bare parse), "
        f"not modified: {again[0].not_modified}"
    )
    print(
        f"  re-poll with one new item: {t_grown:.1f} s ({t_grown / bare:.2f}x the bare parse), "
        f"new: {len(grown[0].new_episodes)}"
    )
    httpd.shutdown()


if __name__ == "__main__":
    main()
