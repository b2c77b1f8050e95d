"""Batched Whisper decoding through PyTorch: many 30-second windows, from many episodes, per forward pass.

This is the GPU path (CTranslate2's CUDA build cannot load on CUDA 13 machines): audio is
cut into windows at quiet moments, log-mel spectrograms are computed on the model's
device, and ``whisper.decode`` runs a whole batch of windows at once, with timestamps.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from digest.audio import SAMPLE_RATE, windows
from digest.models import Segment

NO_SPEECH = 0.6  # openai-whisper's own thresholds for "this window is silence"
LOW_LOGPROB = -1.0
TIME_STEP = 0.02  # seconds per timestamp token
SILENCE_RMS = 1e-3  # about -60 dBFS: a window this quiet is not decoded (Whisper would invent "you")


def segments_from_tokens(tokens: Iterable[int], tokenizer, offset: float, length: float) -> list[Segment]:
    """Segments of one window from its decoded tokens: text between pairs of timestamp tokens."""
    found: list[Segment] = []
    start: float | None = None
    text: list[int] = []
    for token in tokens:
        if token >= tokenizer.timestamp_begin:
            stamp = (token - tokenizer.timestamp_begin) * TIME_STEP
            if text and start is not None:
                found.append(
                    Segment(
                        round(offset + start, 2), round(offset + min(stamp, length), 2), tokenizer.decode(text).strip()
                    )
                )
                text = []
            start = stamp
        elif token < tokenizer.eot:
            text.append(token)
    if text:
        found.append(
            Segment(round(offset + (start or 0.0), 2), round(offset + length, 2), tokenizer.decode(text).strip())
        )
    return [s for s in found if s.text]


class BatchedDecoder:
    """Decodes the windows of many recordings together, ``batch_size`` windows per forward pass.

    Args:
        model: A loaded ``whisper.Whisper`` model.
        language: Spoken language, e.g. ``en``.
        batch_size: Windows per forward pass (hundreds on a GPU, a few on a CPU).
        fp16: Half precision (CUDA only).
    """

    def __init__(self, model, language: str | None = "en", batch_size: int = 32, fp16: bool = False):
        import whisper

        self.whisper, self.model = whisper, model
        self.batch_size, self.fp16 = batch_size, fp16
        self.options = whisper.DecodingOptions(language=language, without_timestamps=False, fp16=fp16, temperature=0.0)
        self.tokenizer = whisper.tokenizer.get_tokenizer(
            model.is_multilingual, num_languages=model.num_languages, language=language, task="transcribe"
        )

    def mel(self, audio: np.ndarray):
        """A 30-second log-mel spectrogram, computed on the model's device."""
        import torch

        w = self.whisper
        samples = w.pad_or_trim(torch.from_numpy(np.ascontiguousarray(audio)).to(self.model.device))
        return w.log_mel_spectrogram(samples, self.model.dims.n_mels)

    def transcribe_many(self, recordings: list[np.ndarray]) -> list[list[Segment]]:
        """Segments of each recording (16 kHz mono float32), decoded in shared batches of windows."""
        import torch

        jobs = [
            (n, offset, audio)
            for n, recording in enumerate(recordings)
            for offset, audio in windows(recording)
            if len(audio) and float(np.sqrt(np.mean(audio**2))) >= SILENCE_RMS
        ]
        results: list[list[Segment]] = [[] for _ in recordings]
        for first in range(0, len(jobs), self.batch_size):
            batch = jobs[first : first + self.batch_size]
            mel = torch.stack([self.mel(audio) for _, _, audio in batch])
            with torch.inference_mode():
                decoded = self.whisper.decode(self.model, mel.half() if self.fp16 else mel, self.options)
            for (n, offset, audio), out in zip(batch, decoded):
                if out.no_speech_prob > NO_SPEECH and out.avg_logprob < LOW_LOGPROB:
                    continue
                results[n] += segments_from_tokens(out.tokens, self.tokenizer, offset, len(audio) / SAMPLE_RATE)
        return results
