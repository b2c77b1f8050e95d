"""Long-form transcription: about ten minutes of a real podcast conversation read by espeak-ng in two voices,
transcribed by faster-whisper's library default and by digest's paths, with WER against the text read.

The text is the opening turns of a real-dev transcript (bench/data/evalsets, CC BY-SA 4.0), one voice per
speaker. Every path runs tiny.en int8 on the same file in the same run:

* library default: ``WhisperModel.transcribe`` with its defaults (sequential, beam 5) and VAD on;
* library sequential, beam 1;
* digest with each ``asr.beam_size`` and ``asr.batch_size`` given.

    python bench/asr_longform.py [--minutes 10] [--episode friends-40] [--beams 1 5] [--batch-sizes 1 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
TRANSCRIPTS = ROOT / "bench" / "data" / "evalsets" / "real-dev" / "transcripts"
VOICES = ("en-us", "en-gb")


def conversation(episode: str, minutes: float, work: Path) -> tuple[np.ndarray, str]:
    """Audio of the episode's first turns, spoken turn by turn in alternating voices, and the text read."""
    from speech import synthesize

    from digest.asr.audio import SAMPLE_RATE, decode_chunks
    from digest.demo.markdown_cues import turns

    voice_of: dict[str, str] = {}
    parts, texts, total = [], [], 0
    for n, turn in enumerate(turns((TRANSCRIPTS / f"{episode}.md").read_text(encoding="utf-8"))):
        voice = voice_of.setdefault(turn.speaker, VOICES[len(voice_of) % len(VOICES)])
        wav = synthesize(turn.text, work / f"turn{n}.wav", voice=voice, speed=165)
        clip = np.concatenate(list(decode_chunks(wav, 600)))
        parts += [clip, np.zeros(SAMPLE_RATE // 2, dtype=np.float32)]
        texts.append(turn.text)
        total += len(clip) + SAMPLE_RATE // 2
        if total >= minutes * 60 * SAMPLE_RATE:
            break
    return np.concatenate(parts), " ".join(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--episode", default="friends-40")
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()

    from faster_whisper import WhisperModel
    from metrics import wer

    from digest.asr.faster_whisper import FasterWhisper, bundled_asr_model

    with tempfile.TemporaryDirectory() as tmp:
        audio, reference = conversation(args.episode, args.minutes, Path(tmp))
    seconds = len(audio) / 16000
    print(f"{seconds / 60:.1f} min of {args.episode} in {len(VOICES)} voices, {len(reference.split())} words")

    def report(name: str, run) -> float:
        started = time.perf_counter()
        text = run()
        elapsed = time.perf_counter() - started
        print(f"  {name:<38} WER {wer(reference, text):.3f}  {elapsed:6.1f} s  {seconds / elapsed:5.1f}x realtime")
        return elapsed

    library = WhisperModel(bundled_asr_model(), device="cpu", compute_type="int8")

    def bare(**options) -> str:
        segments, _ = library.transcribe(audio, language="en", vad_filter=True, **options)
        return " ".join(s.text for s in segments)

    base = report("library default (sequential, beam 5)", bare)
    report("library sequential, beam 1", lambda: bare(beam_size=1))
    for batch in args.batch_sizes:
        for beam in args.beams:
            ours = FasterWhisper(device="cpu", batch_size=batch, beam_size=beam)
            took = report(
                f"digest batch {batch}, beam {beam}", lambda ours=ours: " ".join(s.text for s in ours.transcribe(audio))
            )
            print(f"      speed vs library default: {base / took:.2f}x")


if __name__ == "__main__":
    main()
