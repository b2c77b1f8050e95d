"""Orchestrate the stages over stored rows. A killed run resumes where it stopped."""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from digest import feeds, fetch, net
from digest.asr import audio
from digest.asr.base import BUNDLED_MODEL, AsrSettings, Transcriber
from digest.asr.executors import Executor, Job, get_executor
from digest.config import Config
from digest.deliver import DeliveryReport, deliver
from digest.embed import Embedder
from digest.errors import DigestError
from digest.insights import build_digest, days_before
from digest.models import Digest, Episode, Segment, Status
from digest.readers import weekly_readers
from digest.store import Store

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    """What a run did, for the CLI to print.

    Attributes:
        feeds_polled: Feeds asked for new episodes.
        feed_errors: ``(feed url, error)`` for each feed that failed.
        new_episodes: Episodes found new by this run's poll.
        transcribed: Episodes that got a transcript in this run.
        failed: ``(episode, error)`` for each episode that failed in this run.
        digest: The day's digest.
        delivery: What was sent, or ``None`` when nothing was to be sent.
        backfilled: Episodes of newly added feeds taken into this digest from before its window.
        why_empty: When the digest has no insights, why, and what would change it.
    """

    feeds_polled: int = 0
    feed_errors: list[tuple[str, str]] = field(default_factory=list)
    new_episodes: int = 0
    transcribed: list[Episode] = field(default_factory=list)
    failed: list[tuple[Episode, str]] = field(default_factory=list)
    digest: Digest | None = None
    delivery: DeliveryReport | None = None
    dry_run: bool = False
    backfilled: int = 0
    why_empty: str = ""


class RunLocked(DigestError):
    """Another ``digest run`` or ``digest schedule`` holds the run lock."""


@contextmanager
def run_lock(config: Config) -> Iterator[None]:
    """An exclusive lock on the data directory, so cron and the daemon never overlap."""
    path = config.path("run.lock")
    with open(path, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLocked(f"another digest run holds {path}; try again when it ends") from None
        fh.write(str(os.getpid()))
        fh.flush()
        yield


class _Progress:
    """A progress bar in audio seconds per second; silent with --quiet or when not a TTY."""

    def __init__(self, quiet: bool):
        self.enabled = not quiet and sys.stderr.isatty()

    @contextmanager
    def job(self, job: Job) -> Iterator[Callable[[float], None]]:
        episode, path = job.episode, job.path
        if not self.enabled:
            yield lambda done: None
            return
        from tqdm import tqdm

        total = audio.duration(path)
        with tqdm(
            total=round(total, 1) if total else None,
            unit="s",
            unit_scale=True,
            desc=episode.title[:40],
            file=sys.stderr,
            leave=False,
        ) as bar:

            def update(done: float) -> None:
                bar.update(round(done - bar.n, 1))

            yield update


Progress = Callable[[str], None]


class Ingest:
    """Fetch pending episodes, then transcribe the audio ones through an executor."""

    def __init__(self, store: Store, config: Config, executor: Executor, progress: Progress = log.info):
        self.store, self.config, self.executor, self.progress = store, config, executor, progress
        self.audio_dir = config.home / "audio"
        self.asr = AsrSettings.from_config(config)

    def fetch(self, http, episode: Episode, policy: net.UrlPolicy) -> bool:
        """Store a publisher transcript, or download the audio. True when the episode is transcribed."""
        cfg = self.config
        found = fetch.fetch_transcript(
            http,
            episode,
            policy=policy,
            max_bytes=int(cfg["fetch.max_transcript_mb"] * 1024 * 1024),
            deadline=cfg["fetch.deadline"],
            retries=cfg["fetch.retries"],
            backoff=cfg["fetch.backoff"],
        )
        if found is not None:
            segments, kind = found
            self.store.save_transcript(episode.id, segments, f"publisher:{kind}")
            return True
        if not episode.enclosure_url:
            raise fetch.FetchError("no audio enclosure and no usable publisher transcript")
        path, sha = fetch.download_audio(
            http,
            episode.enclosure_url,
            self.audio_dir,
            policy=policy,
            max_bytes=cfg["fetch.max_audio_mb"] * 1024 * 1024,
            deadline=cfg["fetch.deadline"],
            retries=cfg["fetch.retries"],
            backoff=cfg["fetch.backoff"],
        )
        self.store.mark_fetched(episode.id, str(path), sha)
        episode.audio_path, episode.audio_sha256 = str(path), sha
        return False

    def _done(self, episode: Episode, segments: list[Segment], report: RunReport) -> None:
        self.store.save_transcript(episode.id, segments, f"asr:{self.asr.backend}:{self.asr.model or BUNDLED_MODEL}")
        self._discard_audio(episode.audio_path)
        report.transcribed.append(episode)

    def _failed(self, episode: Episode, error: DigestError, report: RunReport) -> None:
        log.info("episode %s (%s) failed: %s", episode.id, episode.title, error)  # the run's report prints it
        self.store.mark_failed(episode.id, str(error))
        self._discard_audio(episode.audio_path)
        report.failed.append((episode, str(error)))

    def _discard_audio(self, path: str | None) -> None:
        if path and not any(e.audio_path == path for e in self.store.episodes(Status.FETCHED)):
            Path(path).unlink(missing_ok=True)

    def run(self, report: RunReport) -> None:
        jobs = []
        private = self.config["fetch.private_addresses"]
        policies = {f.id: net.UrlPolicy.for_feed(f.url, private) for f in self.store.feeds()}
        pending = self.store.pending(self.config["pipeline.max_attempts"])
        if pending:
            self.progress(f"Fetching {_count(len(pending), 'episode')}…")
        spent: defaultdict[int, float] = defaultdict(float)  # seconds of downloads per feed in this run
        waiting: Counter[int] = Counter()  # episodes left for the next run once a feed's budget is spent
        with net.client(self.config["fetch.timeout"]) as http:
            for episode in pending:
                if spent[episode.feed_id] >= self.config["fetch.feed_budget"]:
                    waiting[episode.feed_id] += 1
                    continue
                started = time.monotonic()
                try:
                    if episode.status is Status.FETCHED and not Path(episode.audio_path or "").is_file():
                        episode.status = Status.NEW  # the audio went missing: fetch again
                    policy = policies.get(episode.feed_id, net.UrlPolicy())
                    if episode.status is not Status.FETCHED and self.fetch(http, episode, policy):
                        report.transcribed.append(episode)
                        continue
                except DigestError as exc:
                    self._failed(episode, exc, report)
                    continue
                except Exception as exc:  # whatever one episode's links do, the others go on
                    self._failed(episode, DigestError(f"{type(exc).__name__}: {exc}"), report)
                    continue
                finally:
                    spent[episode.feed_id] += time.monotonic() - started
                cached = self.store.cached_asr(episode.audio_sha256 or "", self.asr.cache_key)
                if cached is not None:
                    self._done(episode, cached, report)
                else:
                    jobs.append(Job(episode, Path(episode.audio_path or "")))
        for feed_id, count in waiting.items():
            log.warning(
                "feed %s: %d episodes wait for the next run; its downloads took %.0f s of this run (fetch.feed_budget)",
                feed_id,
                count,
                spent[feed_id],
            )
        if jobs:
            model = self.asr.model or BUNDLED_MODEL
            self.progress(f"Transcribing {_count(len(jobs), 'episode')} with {self.asr.backend} {model}…")
        for job, outcome in self.executor.transcribe(jobs):
            if isinstance(outcome, DigestError):
                self._failed(job.episode, outcome, report)
                continue
            self.store.cache_asr(job.episode.audio_sha256 or "", self.asr.cache_key, outcome)
            self._done(job.episode, outcome, report)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def today(config: Config) -> str:
    """Today's date in the schedule's time zone, as YYYY-MM-DD."""
    return dt.datetime.now(ZoneInfo(config["schedule.timezone"])).date().isoformat()


def run(
    config: Config,
    store: Store,
    *,
    date: str | None = None,
    quiet: bool = False,
    dry_run: bool = False,
    transcriber: Transcriber | None = None,
    embedder: Embedder | None = None,
    executor: str | None = None,
    address: str | None = None,
    progress: Progress = log.info,
) -> RunReport:
    """Poll every feed, fetch and transcribe every pending episode, build the day's digest and send it.

    One broken feed or episode is recorded and retried on the next run; it never
    stops the others. A digest without insights is sent only when
    ``mail.quiet_day_note`` is on; weekly readers get the week's best on ``readers.weekly_day`` even then.

    Args:
        date: The digest date (YYYY-MM-DD); defaults to today in ``schedule.timezone``.
        dry_run: Build and store the digest, but send nothing.
        transcriber: A loaded ASR backend to use instead of ``asr.*`` (tests, executors).
        embedder: A loaded embedding backend to use instead of ``embed.*``.
        executor: ``local`` or ``ray`` (default: ``executor.name``); ``address`` names the Ray cluster.
        progress: Called with one line as each stage starts or ends (poll, fetch, transcribe, embed,
            rank, send); logged at INFO by default.
    """
    report = RunReport(dry_run=dry_run)
    day = date or today(config)
    with run_lock(config):
        progress(f"Polling {_count(len(store.feeds()), 'feed')}…")
        results = feeds.poll(store, config)
        report.feeds_polled = len(results)
        report.feed_errors = [(r.feed.url, r.error) for r in results if r.error]
        report.new_episodes = sum(len(r.new_episodes) for r in results)
        first = [i for r in results if r.first_poll for i in r.new_episodes]
        if first:
            backfill, lookback = config["feeds.backfill_days"], config["rank.lookback_days"]
            report.backfilled = store.claim_for_digest(
                first, day, days_before(day, backfill), days_before(day, lookback)
            )
        runner = get_executor(config, executor, address, transcriber, _Progress(quiet).job)
        try:
            Ingest(store, config, runner, progress).run(report)
        finally:
            runner.close()
        report.digest = build_digest(config, store, day, embedder, progress)
        if not report.digest.insights:
            report.why_empty = why_empty(config, report)
        due = bool(report.digest.insights or config["mail.quiet_day_note"])
        weekly = [] if due or dry_run else weekly_readers(config, store, day)  # the week's best, sent on its day
        if not dry_run and (due or weekly):
            progress(f"Sending to {_count(len(weekly or store.subscribers()), 'subscriber')}…")
            report.delivery = deliver(config, store, report.digest, only=None if due else weekly)
    return report


def why_empty(config: Config, report: RunReport) -> str:
    """One line on why a run's digest has no insights, and what would change that."""
    assert report.digest is not None
    if not report.feeds_polled:
        return "No feeds are followed yet: add one with `digest feeds add URL`."
    if len(report.feed_errors) == report.feeds_polled:
        return "Every feed failed to load (see above); `digest feeds list` shows each error."
    if report.digest.episodes_scanned:
        return (
            f"No statement of the {_count(report.digest.episodes_scanned, 'episode')} passed the quality bar "
            f"(rank.min_score = {config['rank.min_score']}) without repeating an earlier digest; "
            "`digest run --explain` lists the runners-up."
        )
    if report.failed:
        return f"{_count(len(report.failed), 'episode')} failed (see above); they are tried again next run."
    lookback, backfill = config["rank.lookback_days"], config["feeds.backfill_days"]
    return (
        f"No new episode is dated within {_count(lookback, 'day')} of {report.digest.date} (rank.lookback_days); "
        f"older ones are archived as already heard. A feed's first poll takes episodes of the last "
        f"{_count(backfill, 'day')} (feeds.backfill_days); after that, each new episode enters the next digest."
    )
