"""Transcription on speech the default was not tuned on: digest's paths beside faster-whisper's library
default, per file and pooled, on the same audio in the same run.

The recordings:

* three real transcripts from shows other than friends-40, the one the default was first tuned on (real-dev
  gotime-333, practicalai-265 and shipit-126; bench/data/evalsets, CC BY-SA 4.0), the opening turns of each read
  by espeak-ng twice: in American and British voices at 165 words a minute, and in Scottish and Caribbean
  voices at 190, one voice per speaker;
* the corpus's real recordings whose words are known (tests/data/corpus: JFK, "new home in the stars", the
  Harvard sentences at 8 kHz).

Paths, each running the bundled tiny.en int8 on every recording:

* the library default, ``WhisperModel.transcribe`` with its defaults: sequential 30 s windows over the speech
  Silero VAD finds, beam 5, each window conditioned on the text before it, temperature fallback;
* digest's default (``digest.asr.faster_whisper``);
* with ``--causes``, the steps between the two, one change at a time, to split the difference by cause;
* with ``--variants``, digest's default a second time (how much the same call varies from run to run), and at
  batch 8 and beam 1.

WER is word errors over reference words; "pooled" sums both over every file. Speed is the library default's
time over the path's. ``--hours H`` instead times the whole ``digest run`` on one episode of H hours of the
held-out speech looped, and the library default on the same file, each in a process of its own, with its peak
resident memory.

    python bench/asr.py [--minutes 4] [--causes] [--variants] [--times] [--timed-decoding] [--torch]
    python bench/asr.py --hours 4 [--library-hours 1]
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

HELD_OUT = ("gotime-333", "practicalai-265", "shipit-126")
READINGS = {"us-gb@165": (("en-us", "en-gb"), 165), "scot-carib@190": (("en-gb-scotland", "en-029"), 190)}


@dataclass
class Recording:
    """A stretch of speech and the words it says."""

    name: str
    audio: np.ndarray
    reference: str

    @property
    def seconds(self) -> float:
        return len(self.audio) / 16000


@dataclass
class Result:
    """One path over every recording: its errors and time per file."""

    name: str
    errors: dict[str, tuple[int, int]] = field(default_factory=dict)  # file: (word errors, reference words)
    seconds: float = 0.0

    def wer(self, file: str | None = None) -> float:
        pairs = [self.errors[file]] if file else list(self.errors.values())
        return sum(e for e, _ in pairs) / max(1, sum(n for _, n in pairs))


def recordings(minutes: float, work: Path) -> list[Recording]:
    """The held-out readings and the corpus's real recordings (see the module docstring)."""
    from conftest import CORPUS
    from speech import REFERENCES, conversation

    from digest.asr.audio import decode_chunks

    found = []
    for episode in HELD_OUT:
        for reading, (voices, speed) in READINGS.items():
            audio, text = conversation(episode, minutes, work, voices=voices, speed=speed)
            found.append(Recording(f"{episode} {reading}", audio, text))
    for name, text in REFERENCES.items():
        found.append(Recording(name, np.concatenate(list(decode_chunks(CORPUS / "audio" / name, 600))), text))
    return found


def errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """Word errors (Levenshtein) and reference words."""
    from metrics import wer, words

    n = len(words(reference))
    return round(wer(reference, hypothesis) * max(1, n)), n


def library_paths(model, ours) -> dict[str, Callable[[np.ndarray], str]]:
    """The library default and the steps from it to digest's default (see ``--causes``)."""
    from faster_whisper import BatchedInferencePipeline

    from digest.asr.faster_whisper import clips, speech_regions

    pipeline = BatchedInferencePipeline(model)

    def sequential(audio: np.ndarray, **options) -> str:
        return " ".join(s.text for s in model.transcribe(audio, language="en", **options)[0])

    def on_clips(audio: np.ndarray, batched: bool, **options) -> str:
        bounds = clips(speech_regions(audio))
        if batched:
            found, _ = pipeline.transcribe(
                audio,
                language="en",
                batch_size=8,
                clip_timestamps=[{"start": s, "end": e} for s, e in bounds],
                **options,
            )
        else:
            flat = [t for clip in bounds for t in clip]
            found, _ = model.transcribe(
                audio, language="en", clip_timestamps=flat, vad_filter=False, without_timestamps=True, **options
            )
        return " ".join(s.text for s in found)

    return {
        "1 library default, no conditioning": lambda a: sequential(
            a, vad_filter=True, condition_on_previous_text=False
        ),
        "2 ... and no temperature fallback": lambda a: sequential(
            a, vad_filter=True, condition_on_previous_text=False, temperature=0.0
        ),
        "3 ... on digest's clips, untimed": lambda a: on_clips(
            a, False, condition_on_previous_text=False, temperature=0.0
        ),
        "4 ... batched (8 clips a pass)": lambda a: on_clips(a, True, without_timestamps=True),
        "5 ... with word times": lambda a: on_clips(a, True, without_timestamps=True, word_timestamps=True),
        "6 ... and dropped speech decoded again (digest)": lambda a: " ".join(s.text for s in ours.transcribe(a)),
    }


def run_paths(files: list[Recording], paths: dict[str, Callable[[np.ndarray], str]]) -> list[Result]:
    """Every path over every file, timed; file by file, so that a change in the machine's load falls on all."""
    results = {name: Result(name) for name in paths}
    for f in files:
        for name, path in paths.items():
            started = time.perf_counter()
            text = path(f.audio)
            results[name].seconds += time.perf_counter() - started
            results[name].errors[f.name] = errors(f.reference, text)
        print(f"  {f.name}: " + ", ".join(f"{r.wer(f.name):.3f}" for r in results.values()), flush=True)
    return list(results.values())


def table(files: list[Recording], results: list[Result]) -> None:
    """Per-file and pooled WER, and speed against the first result (the library default)."""
    base = results[0]
    print(f"\n{'file':<30}{'min':>6}{'words':>7}  " + "  ".join(f"{r.name[:18]:>18}" for r in results))
    for f in files:
        cells = "  ".join(f"{r.wer(f.name):>18.3f}" for r in results)
        print(f"{f.name:<30}{f.seconds / 60:>6.1f}{base.errors[f.name][1]:>7}  {cells}")
    minutes = sum(f.seconds for f in files) / 60
    words = sum(n for _, n in base.errors.values())
    print(f"{'pooled':<30}{minutes:>6.1f}{words:>7}  " + "  ".join(f"{r.wer():>18.3f}" for r in results))
    worst = "  ".join(f"{max(r.wer(f.name) - base.wer(f.name) for f in files):>+18.3f}" for r in results)
    print(f"{'worst file vs library':<43}  {worst}")
    print(f"{'seconds':<43}  " + "  ".join(f"{r.seconds:>18.1f}" for r in results))
    print(f"{'speed vs library default':<43}  " + "  ".join(f"{base.seconds / r.seconds:>17.2f}x" for r in results))


def time_shifts(ours: list, theirs: list) -> np.ndarray:
    """|Δ start| in seconds of the words two transcripts share, aligned by text."""

    def bare(text: str) -> str:
        return text.strip(" ,.?!").lower()

    matcher = difflib.SequenceMatcher(a=[bare(w.text) for w in ours], b=[bare(w.word) for w in theirs], autojunk=False)
    return np.array(
        [abs(ours[b.a + k].start - theirs[b.b + k].start) for b in matcher.get_matching_blocks() for k in range(b.size)]
    )


def word_times(files: list[Recording], model) -> None:
    """How far digest's word times are from the library default's for the same words, over every file."""
    from digest.asr.faster_whisper import FasterWhisper

    ours, shifts, again = FasterWhisper(device="cpu"), [], 0
    for f in files:
        list(ours.transcribe(f.audio))
        found, _ = model.transcribe(f.audio, language="en", vad_filter=True, word_timestamps=True)
        shifts.append(time_shifts(ours.last_words, [w for s in found for w in s.words or []]))
        again += len(ours.redecoded)
    s = np.concatenate(shifts)
    print(
        f"  digest's word times vs the library default's: median {np.median(s):.2f} s,"
        f" p95 {np.percentile(s, 95):.2f} s, over 1 s {np.mean(s > 1):.1%} of {len(s)} words;"
        f" {again} stretches decoded again"
    )


def dropped_by_timed_decoding(files: list[Recording]) -> None:
    """How much speech digest's earlier default (batched, with timestamp tokens) left without words: it ends
    windows early on some CPUs' kernels (``CT2_FORCE_CPU_ISA``), the reason the default decodes without them."""
    from digest.asr.faster_whisper import FasterWhisper, Word, speech_regions, uncovered

    pipeline, total, stretches = FasterWhisper(device="cpu").pipeline, 0.0, 0
    for f in files:
        timed, _ = pipeline.transcribe(
            f.audio, language="en", batch_size=8, beam_size=5, chunk_length=25, without_timestamps=False
        )
        dropped = uncovered(speech_regions(f.audio), [Word(s.start, s.end, s.text) for s in timed], 2.0)
        total, stretches = total + sum(e - s for s, e in dropped), stretches + len(dropped)
    print(
        f"  earlier default, timed decoding (batch 8, beam 5): {total:.0f} s of speech in {stretches} stretches left"
        f" without words (CT2_FORCE_CPU_ISA={os.environ.get('CT2_FORCE_CPU_ISA', '')})"
    )


def torch_paths(files: list[Recording]) -> None:
    """The PyTorch path the GPU uses, on this CPU: openai-whisper's beam 5 against digest's batched greedy
    windows (exported tiny.en, fp32)."""
    from digest.asr.faster_whisper import bundled_asr_model
    from digest.asr.torch.backend import OpenAIWhisper
    from digest.asr.torch.export import export

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = export(Path(bundled_asr_model()), Path(tmp) / "tiny.en.pt")
        batched = OpenAIWhisper(model=str(checkpoint), device="cpu", batch_size=8)
        run_paths(
            files,
            {
                "PyTorch: openai-whisper model.transcribe, beam 5": lambda a: batched.model.transcribe(
                    a, language="en", fp16=False, beam_size=5, condition_on_previous_text=False
                )["text"],
                "PyTorch: digest batched windows, greedy (batch 8)": lambda a: " ".join(
                    s.text for s in batched.transcribe(a)
                ),
            },
        )


def long_episode(hours: float, minutes: float, library_hours: float) -> None:
    """``hours`` of held-out speech looped into one episode: the whole ``digest run`` on it (a local feed), and
    the library default on the same file (its first ``library_hours``) a chunk at a time, each in a process of
    its own."""
    import wave
    from datetime import UTC, datetime

    from digest.rss import RssItem, rss

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        speech = np.concatenate([r.audio for r in recordings(minutes, base)[: len(HELD_OUT) * len(READINGS)]])
        wav = base / "episode.wav"
        samples = int(hours * 3600 * 16000)
        with wave.open(str(wav), "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
            for start in range(0, samples, len(speech)):
                w.writeframes((speech[: samples - start] * 32767).astype(np.int16).tobytes())
        feed = base / "feed.xml"
        feed.write_text(rss("Long show", [RssItem("Four hours", "long-1", datetime.now(UTC), wav.as_uri())]))
        print(f"{hours:g} h episode: {len(speech) / 16000 / 60:.1f} min of held-out speech looped", flush=True)
        env = {**os.environ, "DIGEST_HOME": str(base / "home"), "DIGEST_FETCH_MAX_AUDIO_MB": "2000"}
        digest = [sys.executable, "-m", "digest"]
        subprocess.run([*digest, "feeds", "add", feed.as_uri()], env=env, check=True, capture_output=True)
        started = time.perf_counter()
        subprocess.run([*digest, "run", "--dry-run", "--quiet"], env=env, check=True, capture_output=True)
        ours = time.perf_counter() - started
        rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(
            f"  digest run (fetch, transcribe, rank): {ours:.0f} s, {hours * 3600 / ours:.1f}x realtime;"
            f" peak RSS {rss_mb:.0f} MB",
            flush=True,
        )
        child = subprocess.run(
            [sys.executable, __file__, "--one-file", str(wav), "--library-hours", str(library_hours)],
            capture_output=True,
            text=True,
            check=True,
        )
        library = json.loads(child.stdout.splitlines()[-1])
        speed = library["hours"] * 3600 / library["seconds"]
        print(
            f"  library default on the first {library['hours']:g} h, {library['chunk']:.0f} s at a time:"
            f" {library['seconds']:.0f} s, {speed:.1f}x realtime; peak RSS {library['rss_mb']:.0f} MB;"
            f" chunks {min(library['chunks']):.1f}-{max(library['chunks']):.1f} s each"
        )
        print(f"  digest run: {hours * 3600 / ours / speed:.2f}x the library default's speed")


def one_file(path: Path, hours: float) -> None:
    """The library default on the first ``hours`` of one file, ``asr.chunk_seconds`` at a time (so that its
    memory stays bounded, as digest's does); prints its figures as JSON."""
    from faster_whisper import WhisperModel

    from digest.asr.audio import decode_chunks
    from digest.asr.base import AsrSettings
    from digest.asr.faster_whisper import bundled_asr_model

    chunk = AsrSettings().chunk_seconds
    model = WhisperModel(bundled_asr_model(), device="cpu", compute_type="int8")
    times = []
    started = time.perf_counter()
    done = 0.0
    for audio in decode_chunks(path, chunk):
        began = time.perf_counter()
        list(model.transcribe(audio, language="en", vad_filter=True)[0])
        times.append(time.perf_counter() - began)
        done += len(audio) / 16000
        if done >= hours * 3600:
            break
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "hours": done / 3600, "rss_mb": rss_mb, "chunk": chunk, "chunks": times}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4, help="of each held-out transcript read")
    parser.add_argument("--causes", action="store_true", help="also each step from the library default to digest's")
    parser.add_argument("--variants", action="store_true", help="also the default again, batch 8 and beam 1")
    parser.add_argument("--times", action="store_true", help="also digest's word times against the library's")
    parser.add_argument("--timed-decoding", action="store_true", help="also what the earlier default dropped")
    parser.add_argument("--torch", action="store_true", help="also the PyTorch path (several minutes more)")
    parser.add_argument("--hours", type=float, help="instead: one long episode of this many hours")
    parser.add_argument("--library-hours", type=float, help="with --hours: the library on this much of it (all)")
    parser.add_argument("--one-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_file:
        return one_file(args.one_file, args.library_hours)
    if args.hours:
        return long_episode(args.hours, args.minutes, args.library_hours or args.hours)

    from faster_whisper import WhisperModel

    from digest.asr.faster_whisper import FasterWhisper, bundled_asr_model

    with tempfile.TemporaryDirectory() as tmp:
        files = recordings(args.minutes, Path(tmp))
    minutes = sum(f.seconds for f in files) / 60
    print(f"{len(files)} recordings, {minutes:.1f} min; {os.cpu_count()} CPUs; {time.strftime('%Y-%m-%d')}")
    model = WhisperModel(bundled_asr_model(), device="cpu", compute_type="int8")
    ours = FasterWhisper(device="cpu")
    paths: dict[str, Callable[[np.ndarray], str]] = {
        "library default": lambda a: " ".join(s.text for s in model.transcribe(a, language="en", vad_filter=True)[0]),
        "digest default": lambda a: " ".join(s.text for s in ours.transcribe(a)),
    }
    if args.causes:
        paths.update(library_paths(model, ours))
    if args.variants:
        eight, greedy = FasterWhisper(device="cpu", batch_size=8), FasterWhisper(device="cpu", beam_size=1)
        paths.update(
            {
                "digest default, again": paths["digest default"],  # the same call: how much the kernels vary
                "digest, batch 8": lambda a: " ".join(s.text for s in eight.transcribe(a)),
                "digest, beam 1": lambda a: " ".join(s.text for s in greedy.transcribe(a)),
            }
        )
    table(files, run_paths(files, paths))
    if args.times:
        word_times(files, model)
    if args.timed_decoding:
        dropped_by_timed_decoding(files)
    if args.torch:
        torch_paths(files)


if __name__ == "__main__":
    main()
