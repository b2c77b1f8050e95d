"""Batched Whisper transcription through PyTorch: many 30-second windows, from many episodes, per forward pass.

This is the GPU path (CTranslate2's CUDA build cannot load on CUDA 13 machines). Audio is
cut into windows at quiet moments; a worker thread reads the audio and packs the next
batch into pinned memory while the GPU decodes the current one; log-mel spectrograms are
computed on the model's device; :class:`digest.asr.torch.greedy.GreedyDecoder` decodes the whole
batch at once, with timestamps. Memory stays bounded by the batch size, however long the
episodes are. It needs torch and openai-whisper; only the openai-whisper backend imports it.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import whisper

from digest.asr.audio import SAMPLE_RATE, decode_chunks, windows
from digest.asr.base import failure
from digest.asr.torch.greedy import GreedyDecoder
from digest.errors import TranscriptionError
from digest.models import Segment

NO_SPEECH = 0.6  # openai-whisper's own thresholds for "this window is silence"
LOW_LOGPROB = -1.0
TIME_STEP = 0.02  # seconds per timestamp token
SILENCE_RMS = 1e-3  # about -60 dBFS: a window this quiet is not decoded (Whisper would invent "you")
WINDOW_SAMPLES = 30 * SAMPLE_RATE
PREFETCH = 2  # batches packed ahead of the GPU
COPY_ROWS = 32  # windows one copier thread packs at a time


@dataclass(frozen=True)
class Window:
    """At most 30 s of one recording (16 kHz mono float32), starting ``offset`` seconds into it."""

    recording: int
    offset: float
    audio: np.ndarray


def recording_windows(recordings: Iterable[np.ndarray]) -> Iterator[Window]:
    """The quiet-cut windows of each recording, in order."""
    for n, recording in enumerate(recordings):
        for offset, audio in windows(recording):
            yield Window(n, offset, audio)


def segments_from_tokens(tokens: Iterable[int], tokenizer, offset: float, length: float) -> list[Segment]:
    """Segments of one window from its decoded tokens: text between pairs of timestamp tokens."""
    found: list[Segment] = []
    start: float | None = None
    text: list[int] = []
    for token in tokens:
        if token >= tokenizer.timestamp_begin:
            stamp = min((token - tokenizer.timestamp_begin) * TIME_STEP, length)  # never past the window's audio
            if text and start is not None:
                found.append(
                    Segment(round(offset + start, 2), round(offset + stamp, 2), tokenizer.decode(text).strip())
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


def _audible(window: Window) -> bool:
    audio = window.audio
    return len(audio) > 0 and float(np.dot(audio, audio)) / len(audio) >= SILENCE_RMS**2


class BatchedDecoder:
    """Transcribes the windows of many recordings together, ``batch_size`` windows per forward pass.

    Args:
        model: A loaded ``whisper.Whisper`` model.
        language: Spoken language, e.g. ``en``.
        batch_size: Windows per forward pass (hundreds on a GPU, a few on a CPU).
        fp16: Half-precision activations (CUDA only).
    """

    def __init__(self, model, language: str | None = "en", batch_size: int = 32, fp16: bool = False):
        self.model, self.batch_size = model, batch_size
        self.greedy = GreedyDecoder(model, language, torch.float16 if fp16 else torch.float32)
        self.tokenizer = whisper.tokenizer.get_tokenizer(
            model.is_multilingual, num_languages=model.num_languages, language=language, task="transcribe"
        )
        self.filters = whisper.audio.mel_filters(model.device, model.dims.n_mels)
        self.hann = torch.hann_window(whisper.audio.N_FFT, device=model.device)
        self.pinned = model.device.type == "cuda"
        self.copiers = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1), thread_name_prefix="digest-pack")
        if self.pinned:
            torch.backends.cudnn.benchmark = True  # the encoder's convolutions always see the same shapes

    def pack(self, batch: list[Window]):
        """The batch's audio as one zero-padded windows × 30 s float32 tensor, pinned when it goes to a GPU."""
        packed = torch.empty((len(batch), WINDOW_SAMPLES), pin_memory=self.pinned)
        rows = packed.numpy()

        def fill(first: int) -> None:  # numpy copies without the GIL, so the copiers run in parallel
            for row, window in zip(rows[first : first + COPY_ROWS], batch[first : first + COPY_ROWS]):
                audio = window.audio[:WINDOW_SAMPLES]
                row[: len(audio)] = audio
                row[len(audio) :] = 0.0

        list(self.copiers.map(fill, range(0, len(batch), COPY_ROWS)))
        return packed

    def log_mel(self, packed):
        """openai-whisper's log-mel spectrogram of each window, computed on the model's device."""
        audio = packed.to(self.model.device, non_blocking=True)
        stft = torch.stft(audio, whisper.audio.N_FFT, whisper.audio.HOP_LENGTH, window=self.hann, return_complex=True)
        power = stft[..., :-1].abs() ** 2
        log = (self.filters @ power).clamp(min=1e-10).log10()
        log = torch.maximum(log, log.amax(dim=(1, 2), keepdim=True) - 8.0)
        return (log + 4.0) / 4.0

    def decode(self, batch: list[Window], packed) -> list[list[Segment]]:
        """Segments of each window of ``batch``, whose audio ``packed`` holds."""
        found: list[list[Segment]] = []
        for window, out in zip(batch, self.greedy(self.log_mel(packed))):
            if out.no_speech_prob > NO_SPEECH and out.avg_logprob < LOW_LOGPROB:
                found.append([])
            else:
                found.append(
                    segments_from_tokens(out.tokens, self.tokenizer, window.offset, len(window.audio) / SAMPLE_RATE)
                )
        return found

    def transcribe_windows(self, source: Iterable[Window]) -> Iterator[tuple[Window, list[Segment]]]:
        """Each window of ``source`` with its segments, in order; silent windows get none.

        A worker thread pulls windows from ``source`` (reading and decoding audio there) and
        packs batches ahead of the GPU, at most ``PREFETCH`` of them.
        """
        ready: queue.Queue = queue.Queue(maxsize=PREFETCH)
        stop = threading.Event()

        def hand_over(batch: list[Window]) -> None:
            audible = [w for w in batch if _audible(w)]
            ready.put((batch, audible, self.pack(audible) if audible else None))

        def produce() -> None:
            try:
                batch: list[Window] = []
                for window in source:
                    batch.append(window)
                    if len(batch) == self.batch_size:
                        hand_over(batch)
                        batch = []
                        if stop.is_set():
                            return
                if batch:
                    hand_over(batch)
                ready.put(None)
            except BaseException as exc:  # handed to the consumer, which raises it
                ready.put(exc)

        worker = threading.Thread(target=produce, name="digest-windows", daemon=True)
        worker.start()
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                batch, audible, packed = item
                decoded = dict(zip(map(id, audible), self.decode(audible, packed) if audible else []))
                for window in batch:
                    yield window, decoded.get(id(window), [])
        finally:
            stop.set()
            while worker.is_alive():  # unblock a producer waiting on a full queue
                try:
                    ready.get(timeout=0.1)
                except queue.Empty:
                    pass

    def transcribe_files(
        self, paths: list[Path], chunk_seconds: float = 600
    ) -> Iterator[tuple[int, list[Segment] | TranscriptionError]]:
        """Each file's segments, or the error that stopped it, in order; windows of all files share batches.

        Files are decoded chunk by chunk on the worker thread, so memory stays bounded
        however long the episodes are. A file that cannot be decoded costs only itself.
        """
        failures: dict[int, TranscriptionError] = {}

        def source() -> Iterator[Window]:
            for n, path in enumerate(paths):
                offset = 0.0
                try:
                    for chunk in decode_chunks(path, chunk_seconds):
                        for start, audio in windows(chunk):
                            yield Window(n, offset + start, audio)
                        offset += len(chunk) / SAMPLE_RATE
                except Exception as exc:  # recorded before any window of a later file is handed over
                    failures[n] = failure(path, exc)

        found: list[Segment] = []
        current = 0
        for window, segments in self.transcribe_windows(source()):
            while current < window.recording:  # every file before this window's is complete
                yield current, failures.get(current, found)
                current, found = current + 1, []
            found += segments
        while current < len(paths):
            yield current, failures.get(current, found)
            current, found = current + 1, []

    def transcribe_many(self, recordings: list[np.ndarray]) -> list[list[Segment]]:
        """Segments of each recording (16 kHz mono float32), decoded in shared batches of windows."""
        results: list[list[Segment]] = [[] for _ in recordings]
        for window, segments in self.transcribe_windows(recording_windows(recordings)):
            results[window.recording] += segments
        return results
