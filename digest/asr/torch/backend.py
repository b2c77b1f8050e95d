"""The openai-whisper backend (pure PyTorch): runs wherever torch runs, including CUDA 13 machines."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from digest.asr.audio import SAMPLE_RATE
from digest.asr.base import Transcriber
from digest.asr.faster_whisper import bundled_asr_model
from digest.config import Config
from digest.errors import BackendError, TranscriptionError
from digest.models import Segment


class OpenAIWhisper(Transcriber):
    """openai-whisper; with ``batch_size`` > 1, 30 s windows of many files share batches on the device."""

    name = "openai-whisper"

    def load(self, model: str) -> None:
        if importlib.util.find_spec("whisper") is None:
            raise BackendError("openai-whisper is not installed: pip install 'digest[openai-whisper]'")
        if not model:
            raise BackendError(
                "openai-whisper needs a model name such as tiny.en or a checkpoint path "
                "(`digest model export` writes one of the bundled tiny.en)"
            )
        self.fp16 = self.device == "cuda" and self.compute_type in {"auto", "float16"}
        from digest.asr.torch.export import load_model

        self.model = load_model(Path(model), self.device)
        self.batched = None
        if self.batch_size > 1:
            from digest.asr.torch.batched import BatchedDecoder

            self.batched = BatchedDecoder(self.model, self.language, self.batch_size, self.fp16)
            self.batches_files = True

    @staticmethod
    def cuda_available() -> bool:
        return bool(torch.cuda.is_available())

    @classmethod
    def default_model(cls, config: Config) -> str:
        """The bundled tiny.en as a checkpoint in ``$DIGEST_HOME/models``, exported on first use."""
        path = config.home / "models" / "tiny.en.pt"
        if not path.exists():
            from digest.asr.torch.export import export

            export(Path(bundled_asr_model()), path)
        return str(path)

    def transcribe(self, audio: np.ndarray) -> Iterator[Segment]:
        if self.batched is not None:
            yield from self.batched.transcribe_many([audio])[0]
            return
        result = self.model.transcribe(
            audio,
            language=self.language,
            fp16=self.fp16,
            temperature=0.0,
            beam_size=self.beam_size if self.beam_size > 1 else None,
            condition_on_previous_text=False,
            verbose=None,
        )
        length = len(audio) / SAMPLE_RATE  # a timestamp past the audio's end is clamped, as the batched decoder does
        for s in result["segments"]:
            if s.get("no_speech_prob", 0.0) > 0.6 and s.get("avg_logprob", 0.0) < -1.0:
                continue
            start = min(float(s["start"]), length)
            yield Segment(start, max(start, min(float(s["end"]), length)), s["text"])

    def transcribe_files(
        self, paths: list[Path], chunk_seconds: float = 600
    ) -> Iterator[tuple[int, list[Segment] | TranscriptionError]]:
        if self.batched is None:
            yield from super().transcribe_files(paths, chunk_seconds)
        else:
            yield from self.batched.transcribe_files(paths, chunk_seconds)
