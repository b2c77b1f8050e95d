"""The insights stage: extract claims of new transcripts, embed them, rank the day's window into a Digest."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import asdict, replace

import numpy as np

from digest import claims as claim_extraction
from digest.config import Config
from digest.embed import Embedder, embed_cached, get_embedder
from digest.features import EpisodeStats, document_frequencies
from digest.llm.client import LlmClient, LlmUnavailable
from digest.llm.rewrite import rewrite
from digest.llm.select import POINTS_PER_PART, Day, select
from digest.models import Claim, Digest, Insight, Status
from digest.rank import ClaimInfo, DayContext, RankSettings, rank, statement_scores
from digest.readers import ReaderSettings, day_candidates
from digest.store import Store, text_hash
from digest.vectorindex import load_or_build, vectors_of

log = logging.getLogger(__name__)
_BOILERPLATE_HISTORY = 5  # a show's latest other episodes compared for repeated intros and outros


def extract_pending(store: Store) -> int:
    """Cut every transcribed episode that has no claims yet into claims; returns how many episodes."""
    pending = store.episodes_without_claims()
    segments: dict[int, list] = {}

    def read(episode_id: int) -> list:
        if episode_id not in segments:
            segments[episode_id] = store.segments(episode_id)
        return segments[episode_id]

    for ep in pending:
        others = [e for e in store.episodes(Status.TRANSCRIBED, feed_id=ep.feed_id) if e.id != ep.id]
        history = [read(e.id) for e in others[:_BOILERPLATE_HISTORY]]
        store.save_claims(ep.id, claim_extraction.extract(ep.id, ep.feed_id, read(ep.id), history))
    return len(pending)


def _archive(config: Config, store: Store, embedder: Embedder, name: str, date: str, texts: list[str]) -> np.ndarray:
    """Vectors of earlier texts, through a FAISS index file rebuilt whenever it is stale or broken."""
    key = f"{embedder.model_id}|before {date}|{len(texts)}|{text_hash(chr(10).join(texts))[:16]}"

    def build() -> tuple[np.ndarray, np.ndarray]:
        return np.arange(len(texts)), embed_cached(store, embedder, texts)

    return vectors_of(load_or_build(config.home / "index" / f"{name}.faiss", key, build))


def _save_candidates(
    store: Store, embedder: Embedder, digest: Digest, pool: list[Insight], claims: list[Claim], threshold: float
) -> None:
    """Keep the day's candidates for per-reader digests: the stored common picks, then the runners-up that
    passed (the ranker's, or in select mode the model's other grounded candidates), each with its unit
    vector; ``claims`` are the day's statements, which the quotes link to."""
    where = {c.id: c for c in claims}
    for q in (q for i in pool for q in i.quotes):  # as the stored digest's quotes: their episode and segment
        if q.claim_id in where:
            q.episode_id = where[q.claim_id].episode_id
            q.anchor = store.segment_anchor(q.episode_id, q.start)
    vectors = embed_cached(store, embedder, [i.statement for i in digest.insights + pool])
    feeds = {c.id: c.feed_id for c in claims}
    candidates, vectors = day_candidates(digest, pool, vectors, feeds, threshold)
    store.save_candidates(digest.date, candidates, vectors)


def days_before(date: str, days: int) -> str:
    """The date ``days`` before ``date`` (both YYYY-MM-DD)."""
    return (dt.date.fromisoformat(date) - dt.timedelta(days=days)).isoformat()


def build_digest(
    config: Config,
    store: Store,
    date: str,
    embedder: Embedder | None = None,
    progress: Callable[[str], None] = log.info,
) -> Digest:
    """Rank the claims of episodes not yet in an earlier digest into the digest of ``date``, and store it.

    Rerunning for the same date gives the same digest from the same inputs. Once any
    mail of a date has gone out, that date's digest is final: it is returned as stored,
    and episodes that arrive later wait for the next date.
    """
    extract_pending(store)
    if store.digest_delivered(date):
        return store.digest(date)
    window = store.window(date, days_before(date, config["rank.lookback_days"]))
    digest = Digest(date, episodes_scanned=len(window), shows_scanned=len({e.feed_id for e in window}))
    every = store.claims([e.id for e in window])
    kept = [c for c in every if c.dropped is None]
    pool: list[Insight] = []  # runners-up for per-reader digests: the model's other candidates, or the ranker's
    if kept:
        progress(f"Embedding {len(kept)} statements of {len(window)} episode{'s' if len(window) != 1 else ''}…")
        embedder = embedder or get_embedder(config)
        vectors = embed_cached(store, embedder, [c.text for c in kept])
        info = {e.id: ClaimInfo(e.show or "", e.title, e.enclosure_url) for e in window}
        sent_texts = store.sent_texts(date)
        sent = _archive(config, store, embedder, "sent", date, sent_texts)
        heard_texts = sorted({c.text for c in store.claims(store.heard_before(date), kept_only=True)})
        heard = _archive(config, store, embedder, "heard", date, heard_texts)
        by_episode: dict[int, list[Claim]] = {}
        for c in every:
            by_episode.setdefault(c.episode_id, []).append(c)
        context = DayContext(
            {e: EpisodeStats.of(cs) for e, cs in by_episode.items()},
            document_frequencies(heard_texts + [c.text for c in kept]),
            sent,
            heard,
        )
        settings = config.section("rank", RankSettings)

        def offline(episode_id: int | None = None, top_k: int = settings.top_k) -> tuple[list, list]:
            """The ranker's picks of the day, or of one episode."""
            rows = [n for n, c in enumerate(kept) if episode_id in (None, c.episode_id)]
            subset = [kept[n] for n in rows]
            return rank(subset, vectors[rows], info, replace(settings, top_k=top_k), context)

        mode = config["llm.mode"]
        progress("Picking the day's insights" + (" with the language model…" if mode == "select" else "…"))
        client = LlmClient(config, store) if mode != "off" else None
        if client is not None and mode == "select":
            segments = {e.id: store.segments(e.id) for e in window}
            scores = statement_scores(kept, vectors, settings, context)
            day = Day(window, segments, by_episode, kept, vectors, info, context, settings, scores, sent_texts)
            try:
                chosen = select(client, day, embedder, lambda e: offline(e, POINTS_PER_PART)[0])
                digest.insights, digest.runners_up, digest.key_points = (
                    chosen.insights,
                    chosen.runners_up,
                    chosen.key_points,
                )
                pool = chosen.others
                digest.method, digest.method_note = "llm", client.model
            except LlmUnavailable as exc:
                log.warning("LLM selection unavailable, ranking offline: %s", exc)
                digest.method_note = f"the language model was unavailable: {exc}"
        if digest.method == "ranker":
            digest.insights, digest.runners_up = offline()
            if client is not None and mode == "rewrite" and digest.insights:
                rewrite(client, digest.insights, embedder)
        if client is not None:
            u = client.usage
            digest.llm_usage = asdict(u)
            log.info(
                "LLM: %d calls, %d prompt + %d answer tokens, %d cached answers, %.1f s",
                u.calls,
                u.prompt_tokens,
                u.answer_tokens,
                u.cached,
                u.seconds,
            )
        embed_cached(store, embedder, [i.text for i in digest.insights])  # for the archive's semantic search
        limit = config.section("readers", ReaderSettings).candidates
        if digest.method == "ranker":  # the ranker's wider pick; it repeats the common picks, which are left out
            pool = offline(top_k=limit)[0] if limit > len(digest.insights) else []
        pool = pool[:limit]
    store.save_digest(digest, [e.id for e in window])
    stored = store.digest(date)  # as stored: its quotes know their episode and transcript segment
    if kept and embedder is not None:
        _save_candidates(store, embedder, stored, pool, every, config["rank.cluster_threshold"])
    stored.key_points, stored.llm_usage = digest.key_points, digest.llm_usage
    return stored
