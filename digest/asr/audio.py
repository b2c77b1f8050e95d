"""Decode audio with PyAV (no ffmpeg binary) into 16 kHz mono float32, a bounded chunk at a time."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from digest.errors import TranscriptionError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
_CUT_SEARCH_SECONDS = 5.0
_FRAME = 1600  # 0.1 s: the unit in which a quiet place to cut is looked for


def duration(path: Path) -> float | None:
    """The container's duration in seconds, when it declares one."""
    import av

    try:
        with av.open(str(path)) as container:
            return container.duration / 1_000_000 if container.duration else None
    except av.FFmpegError:
        return None


def quiet_cut(samples: np.ndarray, limit: int) -> int:
    """Index near ``limit`` where to cut without splitting a word: the quietest 0.1 s before it."""
    search = int(_CUT_SEARCH_SECONDS * SAMPLE_RATE)
    start = max(0, limit - search)
    window = samples[start:limit]
    frames = len(window) // _FRAME
    if frames < 2:
        return limit
    energy = (window[: frames * _FRAME].reshape(frames, _FRAME) ** 2).mean(axis=1)
    return start + int(np.argmin(energy)) * _FRAME + _FRAME // 2


def windows(samples: np.ndarray, seconds: float = 30.0) -> list[tuple[float, np.ndarray]]:
    """Split audio into windows of at most ``seconds``, each cut at a quiet moment, with their start times."""
    limit = int(seconds * SAMPLE_RATE)
    found, start = [], 0
    while len(samples) - start > limit:
        cut = start + quiet_cut(samples[start : start + limit], limit)
        found.append((start / SAMPLE_RATE, samples[start:cut]))
        start = cut
    if len(samples) > start:
        found.append((start / SAMPLE_RATE, samples[start:]))
    return found


def decode_chunks(path: Path, chunk_seconds: float) -> Iterator[np.ndarray]:
    """Yield consecutive chunks of about ``chunk_seconds`` of 16 kHz mono float32 audio.

    Chunks are cut at the quietest moment of their last few seconds, and together
    cover the whole file, so their lengths give each chunk's offset. Memory stays
    bounded by one chunk whatever the episode's length. A file that is truncated
    yields what could be decoded; one with no decodable audio raises
    :class:`TranscriptionError`.
    """
    import av

    limit = int(chunk_seconds * SAMPLE_RATE)
    pending: list[np.ndarray] = []
    pending_len = 0
    total = 0
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise TranscriptionError(f"{path.name}: cannot open audio: {exc}") from None
    with container:
        if not container.streams.audio:
            raise TranscriptionError(f"{path.name}: expected an audio stream, found none")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

        def frames() -> Iterator[np.ndarray]:
            try:
                for frame in container.decode(stream):
                    for out in resampler.resample(frame):
                        yield out.to_ndarray().reshape(-1)
            except av.FFmpegError as exc:
                if not total and not pending_len:
                    raise TranscriptionError(f"{path.name}: cannot decode audio: {exc}") from None
                log.warning("%s: audio truncated after %.1fs: %s", path.name, (total + pending_len) / SAMPLE_RATE, exc)
            for out in resampler.resample(None):
                yield out.to_ndarray().reshape(-1)

        for samples in frames():
            pending.append(samples)
            pending_len += len(samples)
            if pending_len >= limit + int(_CUT_SEARCH_SECONDS * SAMPLE_RATE):
                buffer = np.concatenate(pending)
                cut = quiet_cut(buffer, limit)
                total += cut
                yield buffer[:cut]
                pending, pending_len = [buffer[cut:]], len(buffer) - cut
    if pending_len:
        yield np.concatenate(pending)
    elif not total:
        raise TranscriptionError(f"{path.name}: no audio could be decoded")
