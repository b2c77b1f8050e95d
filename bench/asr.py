"""Transcription on long-form speech: about ten minutes of a real podcast conversation read by espeak-ng in
two voices, through faster-whisper's library default and digest's paths, with WER against the text read.

The text is the opening turns of a real-dev transcript (bench/data/evalsets, CC BY-SA 4.0), one voice per
speaker. Every path runs tiny.en on the same audio in the same run:

* the library default: ``WhisperModel.transcribe`` with its defaults (sequential, beam 5, VAD on), the
  baseline, and the same with beam 1 beside it;
* digest's default path (``digest.asr.faster_whisper``) at each ``asr.batch_size`` and ``asr.beam_size``
  given, with the stretches of speech it had to decode again;
* the library's ``BatchedInferencePipeline`` with its defaults (no timestamp tokens; one segment per clip of up
  to 30 s, so no times within a clip);
* with ``--torch``, the PyTorch path the GPU uses (exported tiny.en, fp32 on this CPU): openai-whisper's
  ``model.transcribe`` with beam 5 against digest's batched greedy windows (``digest/asr/torch``).

Also reported: how far digest's word times are from the library default's for the same words, and how much
speech the earlier default (timed decoding) left without words on this CPU's kernels.

    python bench/asr.py [--minutes 10] [--episode friends-40] [--beams 1 5] [--batch-sizes 1 8] [--torch]
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def time_shifts(ours: list, theirs: list) -> np.ndarray:
    """|Δ start| in seconds of the words two transcripts share, aligned by text."""

    def bare(text: str) -> str:
        return text.strip(" ,.?!").lower()

    matcher = difflib.SequenceMatcher(a=[bare(w.text) for w in ours], b=[bare(w.word) for w in theirs], autojunk=False)
    return np.array(
        [abs(ours[b.a + k].start - theirs[b.b + k].start) for b in matcher.get_matching_blocks() for k in range(b.size)]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--episode", default="friends-40")
    parser.add_argument("--beams", type=int, nargs="+", default=[5, 1])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 1])
    parser.add_argument("--torch", action="store_true", help="also the PyTorch path (a few minutes more)")
    args = parser.parse_args()

    from faster_whisper import BatchedInferencePipeline, WhisperModel
    from metrics import wer
    from speech import VOICES, conversation

    from digest.asr.faster_whisper import FasterWhisper, bundled_asr_model

    with tempfile.TemporaryDirectory() as tmp:
        audio, reference = conversation(args.episode, args.minutes, Path(tmp))
    seconds = len(audio) / 16000
    print(f"{seconds / 60:.1f} min of {args.episode} in {len(VOICES)} voices, {len(reference.split())} words")

    def report(name: str, run, base: float | None = None) -> float:
        started = time.perf_counter()
        text = run()
        elapsed = time.perf_counter() - started
        ratio = f"  {base / elapsed:.2f}x the library default" if base else ""
        print(
            f"  {name:<44} WER {wer(reference, text):.3f}  {elapsed:6.1f} s  {seconds / elapsed:5.1f}x realtime{ratio}"
        )
        return elapsed

    library = WhisperModel(bundled_asr_model(), device="cpu", compute_type="int8")
    words: list = []

    def bare(**options) -> str:
        segments, _ = library.transcribe(audio, language="en", vad_filter=True, **options)
        found = list(segments)
        words[:] = [w for s in found for w in s.words or []]
        return " ".join(s.text for s in found)

    base = report("library default (sequential, beam 5)", bare)
    bare(word_timestamps=True)  # untimed: the word times digest's are compared with
    reference_words = list(words)
    report("library sequential, beam 1", lambda: bare(beam_size=1), base)
    for batch in args.batch_sizes:
        for beam in args.beams:
            ours = FasterWhisper(device="cpu", batch_size=batch, beam_size=beam)
            report(
                f"digest batch {batch}, beam {beam}",
                lambda ours=ours: " ".join(s.text for s in ours.transcribe(audio)),
                base,
            )
            shifts = time_shifts(ours.last_words, reference_words)
            print(
                f"      decoded again: {len(ours.redecoded)} stretches; word times vs the library default: "
                f"median {np.median(shifts):.2f} s, p95 {np.percentile(shifts, 95):.2f} s, "
                f"over 1 s {np.mean(shifts > 1):.1%} of {len(shifts)} words"
            )
    dropped_by_timed_decoding(audio)
    pipeline = BatchedInferencePipeline(library)
    report(
        "library batched pipeline, its defaults (batch 8)",
        lambda: " ".join(s.text for s in pipeline.transcribe(audio, language="en", batch_size=8)[0]),
        base,
    )
    if args.torch:
        torch_paths(audio, reference, seconds)


def dropped_by_timed_decoding(audio: np.ndarray) -> None:
    """How much speech digest's earlier default (batched, with timestamp tokens) left without words: it ends
    windows early on some CPUs' kernels (``CT2_FORCE_CPU_ISA``), the reason the default decodes without them."""
    from digest.asr.faster_whisper import FasterWhisper, Word, speech_regions, uncovered

    timed, _ = FasterWhisper(device="cpu").pipeline.transcribe(
        audio, language="en", batch_size=8, beam_size=5, chunk_length=25, without_timestamps=False
    )
    dropped = uncovered(speech_regions(audio), [Word(s.start, s.end, s.text) for s in timed], 2.0)
    print(
        f"  earlier default, timed decoding (batch 8, beam 5): {sum(e - s for s, e in dropped):.0f} s of speech"
        f" in {len(dropped)} stretches left without words (CT2_FORCE_CPU_ISA={os.environ.get('CT2_FORCE_CPU_ISA', '')})"
    )


def torch_paths(audio: np.ndarray, reference: str, seconds: float) -> None:
    """The PyTorch path on this CPU: openai-whisper's beam 5 against digest's batched greedy windows."""
    from metrics import wer

    from digest.asr.faster_whisper import bundled_asr_model
    from digest.asr.torch.backend import OpenAIWhisper
    from digest.asr.torch.export import export

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = export(Path(bundled_asr_model()), Path(tmp) / "tiny.en.pt")
        batched = OpenAIWhisper(model=str(checkpoint), device="cpu", batch_size=8)
        for name, run in (
            (
                "openai-whisper model.transcribe, beam 5",
                lambda: batched.model.transcribe(
                    audio, language="en", fp16=False, beam_size=5, condition_on_previous_text=False
                )["text"],
            ),
            ("digest batched windows, greedy (batch 8)", lambda: " ".join(s.text for s in batched.transcribe(audio))),
        ):
            started = time.perf_counter()
            text = run()
            elapsed = time.perf_counter() - started
            print(f"  PyTorch: {name:<40} WER {wer(reference, text):.3f}  {elapsed:6.1f} s  {seconds / elapsed:5.1f}x")


if __name__ == "__main__":
    main()
