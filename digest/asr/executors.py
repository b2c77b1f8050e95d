"""Executors map transcription over fetched episodes: in this process, or on a Ray cluster.

Either way, results come back to the driver, which alone writes the store.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digest.asr.base import Transcriber, get_transcriber, transcribe_audio
from digest.config import Config, choices
from digest.errors import BackendError, DigestError, TranscriptionError, unknown_name
from digest.models import Episode, Segment

log = logging.getLogger(__name__)

Outcome = list[Segment] | DigestError
Progress = Callable[["Job"], AbstractContextManager[Callable[[float], None]]]


@dataclass
class Job:
    """One episode's audio to transcribe."""

    episode: Episode
    path: Path


class Executor(ABC):
    """Runs transcription jobs and yields each job's segments, or the error that stopped it."""

    @abstractmethod
    def transcribe(self, jobs: list[Job]) -> Iterator[tuple[Job, Outcome]]:
        """Yield ``(job, segments or error)`` once per job, in any order."""

    def close(self) -> None:
        """Release workers."""


def give_back_freed_memory() -> None:
    """Return the heap's freed pages to the system: glibc keeps them for reuse otherwise. Elsewhere a no-op."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class LocalExecutor(Executor):
    """In this process; the transcriber loads on first use.

    A backend that batches across files (openai-whisper with ``asr.batch_size`` > 1, the
    GPU path) gets all episodes at once, so windows of many episodes share each forward
    pass; otherwise episodes go one after the other, each with its progress bar.
    """

    def __init__(self, config: Config, transcriber: Transcriber | None = None, progress: Progress | None = None):
        self.config, self._transcriber, self.progress = config, transcriber, progress
        self._given = transcriber is not None

    def close(self) -> None:
        """Let go of a model this executor loaded, and give its memory back to the system, so the stages
        after transcription do not stack on it (about 150 MB less at the embedding stage's peak)."""
        if not self._given and self._transcriber is not None:
            self._transcriber = None
            gc.collect()
            give_back_freed_memory()

    def transcribe(self, jobs: list[Job]) -> Iterator[tuple[Job, Outcome]]:
        if not jobs:
            return
        try:
            if self._transcriber is None:
                self._transcriber = get_transcriber(self.config)
        except DigestError as exc:
            for job in jobs:
                yield job, exc
            return
        transcriber, chunk = self._transcriber, self.config["asr.chunk_seconds"]
        if transcriber.batches_files or self.progress is None:
            for n, outcome in transcriber.transcribe_files([job.path for job in jobs], chunk):
                yield jobs[n], outcome
            return
        for job in jobs:
            try:
                with self.progress(job) as update:
                    segments = transcribe_audio(transcriber, job.path, chunk, update)
            except DigestError as exc:
                yield job, exc
                continue
            yield job, segments


class TranscriberActor:
    """A Ray worker: loads the model once, then transcribes audio sent to it as bytes."""

    def __init__(self, config: Config):
        self.config = config
        self.transcriber = get_transcriber(config)

    def pid(self) -> int:
        import os

        return os.getpid()

    def transcribe(self, audio: bytes, suffix: str) -> list[tuple[float, float, str]]:
        with tempfile.NamedTemporaryFile(suffix=suffix) as fh:
            fh.write(audio)
            fh.flush()
            segments = transcribe_audio(self.transcriber, Path(fh.name), self.config["asr.chunk_seconds"])
        return [(s.start, s.end, s.text) for s in segments]


class RayExecutor(Executor):
    """On a Ray cluster: one model per worker actor, a GPU each when the cluster has them.

    A worker that dies mid-episode is restarted and its task retried (``max_restarts``,
    ``max_task_retries``), so an episode costs a retry, never a lost or doubled transcript.
    """

    RETRIES = 3

    def __init__(self, config: Config, address: str | None = None, workers: int = 2, **ray_init: Any):
        try:
            import ray
        except ImportError:
            raise BackendError("the Ray executor needs Ray: pip install 'digest[ray]'") from None
        self.ray: Any = ray
        if not ray.is_initialized():
            ray.init(address=address or None, include_dashboard=False, log_to_driver=False, **ray_init)
        gpus = int(ray.cluster_resources().get("GPU", 0))
        count = max(1, min(workers, gpus) if gpus else workers)
        actor: Any = ray.remote(
            max_restarts=self.RETRIES,
            max_task_retries=self.RETRIES,
            num_gpus=1 if gpus else 0,
            num_cpus=0 if gpus else 1,
        )(TranscriberActor)
        self.actors: list[Any] = [actor.remote(config) for _ in range(count)]
        log.info("Ray executor: %d workers (%s)", count, f"{gpus} GPUs" if gpus else "CPU")

    def transcribe(self, jobs: list[Job]) -> Iterator[tuple[Job, Outcome]]:
        ray = self.ray
        pending = {}
        for n, job in enumerate(jobs):
            actor = self.actors[n % len(self.actors)]
            pending[actor.transcribe.remote(ray.put(job.path.read_bytes()), job.path.suffix)] = job
        while pending:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ref)
            try:
                yield job, [Segment(*s) for s in ray.get(ref)]
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if isinstance(getattr(exc, "cause", None), DigestError) else None
                yield job, cause or TranscriptionError(f"{job.path.name}: {exc}")
            except ray.exceptions.RayError as exc:
                yield job, TranscriptionError(f"{job.path.name}: Ray worker lost after {self.RETRIES} retries: {exc}")

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)


def get_executor(
    config: Config,
    name: str | None = None,
    address: str | None = None,
    transcriber: Transcriber | None = None,
    progress: Progress | None = None,
) -> Executor:
    """The executor named by ``name`` or ``executor.name``."""
    name = name or config["executor.name"]
    if name == "local":
        return LocalExecutor(config, transcriber, progress)
    if name == "ray":
        return RayExecutor(config, address or config["executor.address"], config["executor.workers"])
    raise unknown_name("executor", name, list(choices("executor.name")))
