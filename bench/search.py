"""Archive search at scale: 100k insights and 1M claims, generated into a temporary data directory.

Reports p50/p95 latency of in-process hybrid search next to the bare library calls it is
built on (an FTS5 MATCH and a FAISS search) on the same queries, the whole `digest search`
CLI call, and requests/s of the web search page under 50 concurrent clients on loopback.

    python bench/search.py [--insights 100000] [--claims 1000000] [--queries 200]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
CORPUS = ROOT / "tests" / "data" / "corpus" / "transcripts"


def vocabulary() -> list[str]:
    words: dict[str, int] = {}
    for path in sorted(CORPUS.glob("*")):
        for w in re.findall(r"[a-z]{4,}", path.read_text(errors="replace").lower()):
            words[w] = words.get(w, 0) + 1
    return sorted(words, key=lambda w: (-words[w], w))[:6000]


def generate(store, n_insights: int, n_claims: int, rng: np.random.Generator) -> list[str]:
    """Fill a store with shows, episodes, claims, embeddings and digests; returns the vocabulary."""
    vocab = vocabulary()
    zipf = 1 / np.arange(1, len(vocab) + 1) ** 0.9
    zipf /= zipf.sum()
    db = store.db
    model = "sentence-transformers:all-MiniLM-L6-v2"
    shows, per_episode = 100, 100
    episodes = max(1, n_claims // per_episode)
    with store.transaction():
        db.executemany(
            "INSERT INTO feeds (id, url, title) VALUES (?, ?, ?)",
            [(f, f"https://feeds.test/{f}.xml", f"Show {f}") for f in range(1, shows + 1)],
        )
        db.executemany(
            "INSERT INTO episodes (id, feed_id, title, published, enclosure_url, status) "
            "VALUES (?, ?, ?, ?, ?, 'transcribed')",
            [
                (
                    e,
                    1 + e % shows,
                    f"Episode {e}",
                    f"20{10 + e % 16:02d}-{1 + e % 12:02d}-{1 + e % 28:02d}T06:00:00Z",
                    f"https://cdn.test/{e}.mp3",
                )
                for e in range(1, episodes + 1)
            ],
        )

    def sentences(n: int) -> list[str]:
        lengths = rng.integers(10, 22, n)
        picks = rng.choice(len(vocab), int(lengths.sum()), p=zipf)
        out, i = [], 0
        for k, length in enumerate(lengths):
            out.append(" ".join(vocab[j] for j in picks[i : i + length]).capitalize() + f" {k}.")
            i += length
        return out

    batch = 50_000
    for start in range(0, n_claims, batch):
        texts = sentences(min(batch, n_claims - start))
        vectors = rng.standard_normal((len(texts), 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        with store.transaction():
            db.executemany(
                "INSERT INTO claims (id, episode_id, idx, text, start, end, text_sha256) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        start + i + 1,
                        1 + (start + i) // per_episode,
                        (start + i) % per_episode,
                        t,
                        10.0 * i,
                        10.0 * i + 8,
                        hashlib.sha256(t.encode()).hexdigest(),
                    )
                    for i, t in enumerate(texts)
                ],
            )
            db.executemany(
                "INSERT OR IGNORE INTO embeddings (sha256, model, vector) VALUES (?, ?, ?)",
                [(hashlib.sha256(t.encode()).hexdigest(), model, v.tobytes()) for t, v in zip(texts, vectors)],
            )
    days = n_insights // 5
    with store.transaction():
        db.executemany(
            "INSERT INTO digests (date, episodes_scanned, shows_scanned) VALUES (?, 20, 10)",
            [(f"{1970 + d // 365:04d}-{1 + d % 365 // 31 % 12:02d}-{1 + d % 28:02d}#{d}",) for d in range(days)],
        )
        rows = db.execute("SELECT date FROM digests").fetchall()
        texts = sentences(n_insights)
        db.executemany(
            "INSERT INTO insights (id, date, rank, text, statement, shows, episodes, novelty, salience, score, "
            'show_names, text_sha256) VALUES (?, ?, ?, ?, ?, 3, 4, 0.9, 0.8, 2.0, \'["Show 1", "Show 2"]\', ?)',
            [
                (i + 1, rows[i // 5][0], 1 + i % 5, t, t, hashlib.sha256(t.encode()).hexdigest())
                for i, t in enumerate(texts)
            ],
        )
        db.executemany(
            "INSERT INTO insight_claims (insight_id, claim_id, quote_rank) VALUES (?, ?, 1)",
            [(i + 1, 1 + (i * 7919) % n_claims) for i in range(n_insights)],
        )
        vectors = rng.standard_normal((n_insights, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        db.executemany(
            "INSERT OR IGNORE INTO embeddings (sha256, model, vector) VALUES (?, ?, ?)",
            [(hashlib.sha256(t.encode()).hexdigest(), model, v.tobytes()) for t, v in zip(texts, vectors)],
        )
    return vocab


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--insights", type=int, default=100_000)
    parser.add_argument("--claims", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="generate the archive here once and reuse it on later runs")
    args = parser.parse_args()

    from digest.archive import Archive, Filters, fts_query
    from digest.config import load
    from digest.minilm import NumpyMiniLM
    from digest.store import Store

    rng = np.random.default_rng(42)
    with tempfile.TemporaryDirectory() as tmp:
        home = args.keep or Path(tmp)
        reuse = (home / "digest.db").exists()
        config = load(home)
        store = Store(config.db_path)
        started = time.perf_counter()
        vocab = vocabulary() if reuse else generate(store, args.insights, args.claims, rng)
        print(
            f"archive: {args.insights:,} insights, {args.claims:,} claims, generated in "
            f"{time.perf_counter() - started:.0f} s ({config.db_path.stat().st_size / 1e9:.1f} GB)"
        )
        embedder = NumpyMiniLM()
        archive = Archive(config, store, embedder)
        started = time.perf_counter()
        for kind in ("insight", "claim"):
            archive.index(kind)
        print(f"vector indexes built from SQLite in {time.perf_counter() - started:.0f} s")

        queries = [
            " ".join(rng.choice(vocab[50:3000], int(rng.integers(1, 4)), replace=False)) for _ in range(args.queries)
        ]
        archive.search(queries[0])
        ours, bare = [], []
        for q in queries:
            t = time.perf_counter()
            archive.search(q, Filters(limit=20))
            ours.append((time.perf_counter() - t) * 1000)
            t = (
                time.perf_counter()
            )  # the bare calls it is made of: one FTS5 query per table, one FAISS search per index
            vector = embedder.embed([q])
            match = fts_query(q)
            for table in ("insights_fts", "claims_fts", "segments_fts"):
                store.db.execute(
                    f"SELECT rowid FROM {table} WHERE {table} MATCH ? ORDER BY rank LIMIT 100", (match,)
                ).fetchall()
            for kind in ("insight", "claim"):
                archive.index(kind).search(vector, 100)
            bare.append((time.perf_counter() - t) * 1000)
        p50, p95 = percentiles(ours)
        b50, b95 = percentiles(bare)
        print(
            f"in-process search ({len(queries)} queries): p50 {p50:.1f} ms, p95 {p95:.1f} ms "
            f"(bare FTS5 + FAISS: p50 {b50:.1f} ms, p95 {b95:.1f} ms; ratio p95 {p95 / b95:.2f}x)"
        )

        env = {**os.environ, "DIGEST_HOME": str(home)}
        cli = []
        for q in queries[:10]:
            t = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "digest", "search", q, "--limit", "10"], env=env, check=True, capture_output=True
            )
            cli.append((time.perf_counter() - t) * 1000)
        bare_python = []
        for _ in range(5):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            bare_python.append((time.perf_counter() - t) * 1000)
        c50, c95 = percentiles(cli)
        print(
            f"`digest search` CLI call: p50 {c50:.0f} ms, p95 {c95:.0f} ms "
            f"(bare `python -c pass`: {statistics.median(bare_python):.0f} ms)"
        )

        from digest.web import make_server

        httpd = make_server(config, "127.0.0.1", 0)
        threading.Thread(target=httpd.run, daemon=True).start()
        base = f"http://127.0.0.1:{httpd.effective_port}/search?q="
        urllib.request.urlopen(base + "warm").read()
        per_client, errors, latencies = 10, [], []

        def client(n: int) -> None:
            for i in range(per_client):
                started = time.perf_counter()
                try:
                    with urllib.request.urlopen(
                        base + urllib.parse.quote(queries[(n * per_client + i) % len(queries)]), timeout=60
                    ) as r:
                        r.read()
                        if r.status != 200:
                            errors.append(r.status)
                except OSError as exc:
                    errors.append(str(exc))
                latencies.append((time.perf_counter() - started) * 1000)

        t = time.perf_counter()
        with ThreadPoolExecutor(max_workers=50) as pool:
            list(pool.map(client, range(50)))
        elapsed = time.perf_counter() - t
        httpd.close()
        w50, w95 = percentiles(latencies)
        print(
            f"web search page, 50 concurrent clients x {per_client}: {50 * per_client / elapsed:.0f} requests/s, "
            f"p50 {w50:.0f} ms, p95 {w95:.0f} ms per request, {len(errors)} errors"
        )
        store.close()


if __name__ == "__main__":
    main()
