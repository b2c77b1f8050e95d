"""The transcriber interface, its settings and the registry of backends by name."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np

from digest.asr.audio import SAMPLE_RATE, decode_chunks
from digest.config import Config
from digest.errors import TranscriptionError, unknown_name
from digest.models import Segment

BUNDLED_MODEL = "tiny.en"
DECODING = 3  # bumped when a backend's way of decoding changes, so cached transcripts are redone


@dataclass(frozen=True)
class AsrSettings:
    """The ``asr.*`` settings; see ``digest config`` for each one's meaning."""

    backend: str = "faster-whisper"
    model: str = ""
    device: str = "auto"
    compute_type: str = "auto"
    chunk_seconds: float = 600
    language: str | None = "en"
    batch_size: int = 0
    beam_size: int = 5

    @classmethod
    def from_config(cls, config: Config) -> AsrSettings:
        settings = config.section("asr", cls)
        return replace(settings, language=settings.language or None)  # empty: let Whisper detect it

    @property
    def cache_key(self) -> str:
        """Everything that changes a transcript: a cached one is reused only when all of it matches."""
        return (
            f"{self.backend}:{self.model or BUNDLED_MODEL}|lang={self.language or 'auto'}"
            f"|compute={self.compute_type}|batch={self.batch_size}|beam={self.beam_size}|decoding={DECODING}"
        )


class Transcriber(ABC):
    """Turns 16 kHz mono float32 audio into segments.

    Args:
        model: Model name or path; empty means the bundled tiny.en.
        device: ``auto``, ``cpu`` or ``cuda``; ``auto`` is cuda when the backend sees a GPU.
        compute_type: ``auto`` or a precision the backend knows (float16, int8, ...).
        language: Spoken language; None lets Whisper detect it.
        batch_size: Pieces of audio decoded per forward pass; 0 is the backend's own default.
        beam_size: Beam search width; 1 is greedy (faster, less accurate).

    Attributes:
        name: Registry name of the backend.
        model_id: Identifies backend and model.
        default_batch_size: ``batch_size`` when the setting is 0.
        batches_files: True where :meth:`transcribe_files` decodes windows of several files together.
    """

    name: ClassVar[str]
    default_batch_size: ClassVar[int] = 1
    batches_files: bool = False

    def __init__(
        self,
        model: str = "",
        device: str = "auto",
        compute_type: str = "auto",
        language: str | None = "en",
        batch_size: int = 0,
        beam_size: int = 5,
    ):
        self.device = device if device != "auto" else ("cuda" if self.cuda_available() else "cpu")
        self.compute_type = compute_type
        self.language = language
        self.batch_size = batch_size or self.default_batch_size
        self.beam_size = beam_size
        self.model_id = f"{self.name}:{Path(model).name if model else BUNDLED_MODEL}"
        self.load(model)

    @abstractmethod
    def load(self, model: str) -> None:
        """Load ``model`` (empty: the bundled one) with the settings above; :class:`BackendError` if it cannot."""

    @staticmethod
    def cuda_available() -> bool:
        """Whether this backend can run on a CUDA device here."""
        return False

    @classmethod
    def default_model(cls, config: Config) -> str:
        """The model used when ``asr.model`` is empty; empty means the backend's bundled one."""
        return ""

    @abstractmethod
    def transcribe(self, audio: np.ndarray) -> Iterator[Segment]:
        """Yield segments of one stretch of audio, times in seconds from its start."""

    def transcribe_file(
        self, path: Path, chunk_seconds: float = 600, progress: Callable[[float], None] | None = None
    ) -> Iterator[Segment]:
        """Decode a file chunk by chunk and yield its segments with file-relative times.

        Args:
            path: Any audio or video file PyAV can read.
            chunk_seconds: Audio held in memory at once.
            progress: Called with the seconds of audio finished so far.
        """
        offset = 0.0
        for chunk in decode_chunks(path, chunk_seconds):
            for s in self.transcribe(chunk):
                text = s.text.strip()
                if text:
                    yield Segment(round(offset + s.start, 2), round(offset + s.end, 2), text)
            offset += len(chunk) / SAMPLE_RATE
            if progress:
                progress(offset)

    def transcribe_files(
        self, paths: list[Path], chunk_seconds: float = 600
    ) -> Iterator[tuple[int, list[Segment] | TranscriptionError]]:
        """Each file's segments, or the error that stopped it, by its place in ``paths``.

        One file after the other here; a backend that batches across files overrides this.
        """
        for n, path in enumerate(paths):
            try:
                yield n, transcribe_audio(self, path, chunk_seconds)
            except TranscriptionError as exc:
                yield n, exc


# Backends by name, imported only when chosen, so `digest --help` loads neither CTranslate2 nor torch.
BACKENDS: dict[str, str] = {
    "faster-whisper": "digest.asr.faster_whisper:FasterWhisper",
    "openai-whisper": "digest.asr.torch.backend:OpenAIWhisper",
}


def backend_class(name: str) -> type[Transcriber]:
    """The backend registered as ``name``; an unknown name lists the known ones."""
    if name not in BACKENDS:
        raise unknown_name("ASR backend", name, list(BACKENDS))
    module, attr = BACKENDS[name].split(":")
    cls: type[Transcriber] = getattr(importlib.import_module(module), attr)
    return cls


def get_transcriber(config: Config) -> Transcriber:
    """The backend named by ``asr.backend``, loaded with the ``asr.*`` settings."""
    s = AsrSettings.from_config(config)
    cls = backend_class(s.backend)
    model = s.model or cls.default_model(config)
    return cls(
        model=model,
        device=s.device,
        compute_type=s.compute_type,
        language=s.language,
        batch_size=s.batch_size,
        beam_size=s.beam_size,
    )


def transcribe_audio(
    transcriber: Transcriber, path: Path, chunk_seconds: float, progress: Callable[[float], None] | None = None
) -> list[Segment]:
    """Transcribe one file; a plain function over stored rows, so an executor can map it."""
    try:
        return list(transcriber.transcribe_file(path, chunk_seconds, progress))
    except TranscriptionError:
        raise
    except Exception as exc:  # a backend's own failure on one file must not stop the run
        raise failure(path, exc) from exc


def failure(path: Path, exc: Exception) -> TranscriptionError:
    """``exc`` as the error that stopped transcribing ``path``, named after the file."""
    return (
        exc if isinstance(exc, TranscriptionError) else TranscriptionError(f"{path.name}: {type(exc).__name__}: {exc}")
    )
