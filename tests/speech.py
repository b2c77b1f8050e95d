"""Make test speech with espeak-ng, encoded by PyAV, so ASR errors are part of the tests.

``python tests/speech.py`` regenerates the bundled demo audio from ``digest/demo/shows.toml``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from xml.sax.saxutils import escape

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TRANSCRIPTS = ROOT / "bench" / "data" / "evalsets" / "real-dev" / "transcripts"  # CC BY-SA 4.0, see its README
VOICES = ("en-us", "en-gb")
JFK = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
HARVARD = (
    "A gold ring will please most any girl. The long journey home took a year. She saw a cat in the neighbor's house. "
    "A pink shell was found on the sandy beach. Small children came to see him. The grass and bushes were wet with "
    "dew. The blind man counted his old coins. A severe storm tore down the barn. She called his name many times. "
    "When you hear the bell, come quickly."
)
REFERENCES = {  # the corpus's real recordings whose words are known (MANIFEST.md gives each one's source)
    "whisper_jfk.flac": JFK,
    "ds_new-home-in-the-stars-16k.wav": "we must find a new home in the stars",
    "joinly_OSR_us_000_0034_8k.wav": HARVARD,
}


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def synthesize(text: str, dest: Path, voice: str = "en-us", speed: int = 140, pause_ms: int = 700) -> Path:
    """Speak ``text`` to ``dest`` (.wav, .mp3 or .ogg by suffix), a pause between lines."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        lines = [escape(line.strip()) for line in text.strip().splitlines() if line.strip()]
        ssml = "<speak>" + f'<break time="{pause_ms}ms"/>'.join(lines) + "</speak>"
        subprocess.run(
            ["espeak-ng", "-m", "-v", voice, "-s", str(speed), "-w", str(wav), ssml],
            check=True,
            capture_output=True,
        )
        encode(wav, dest)
    return dest


def encode(source: Path, dest: Path, rate: int = 16000) -> None:
    """Re-encode any audio PyAV reads into ``dest``'s format, mono at ``rate``."""
    codec = {".mp3": "libmp3lame", ".wav": "pcm_s16le", ".ogg": "libvorbis", ".flac": "flac"}[dest.suffix]
    with av.open(str(source)) as src, av.open(str(dest), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        if codec == "libmp3lame":
            stream.bit_rate = 32000
        resampler = av.AudioResampler(
            format=stream.format.name if codec != "libmp3lame" else "s16p", layout="mono", rate=rate
        )
        for frame in src.decode(audio=0):
            for r in resampler.resample(frame):
                out.mux(stream.encode(r))
        for r in resampler.resample(None):
            out.mux(stream.encode(r))
        out.mux(stream.encode(None))


def silence(dest: Path, seconds: float, rate: int = 16000) -> Path:
    """A WAV file of digital silence."""
    import wave

    with wave.open(str(dest), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.zeros(int(seconds * rate), dtype=np.int16).tobytes())
    return dest


def conversation(
    episode: str, minutes: float, work: Path, voices: tuple[str, ...] = VOICES, speed: int = 165
) -> tuple[np.ndarray, str]:
    """Audio of the episode's first turns, spoken turn by turn at ``speed`` words a minute, one of ``voices``
    per speaker, and the text read."""
    from digest.asr.audio import SAMPLE_RATE, decode_chunks
    from digest.demo.markdown_cues import turns

    voice_of: dict[str, str] = {}
    parts, texts, total = [], [], 0
    for n, turn in enumerate(turns((TRANSCRIPTS / f"{episode}.md").read_text(encoding="utf-8"))):
        voice = voice_of.setdefault(turn.speaker, voices[len(voice_of) % len(voices)])
        said = " ".join(turn.text.replace("[unintelligible]", " ").split())  # a gap is not read aloud
        wav = synthesize(said, work / f"turn{n}.wav", voice=voice, speed=speed)
        clip = np.concatenate(list(decode_chunks(wav, 600)))
        parts += [clip, np.zeros(SAMPLE_RATE // 2, dtype=np.float32)]
        texts.append(said)
        total += len(clip) + SAMPLE_RATE // 2
        if total >= minutes * 60 * SAMPLE_RATE:
            break
    return np.concatenate(parts), " ".join(texts)


if __name__ == "__main__":
    demo = Path(__file__).resolve().parent.parent / "digest" / "demo"
    shows = tomllib.loads((demo / "shows.toml").read_text())["show"]
    for show in shows:
        for ep in (e for e in show["episode"] if "audio" in e):
            synthesize(ep["text"], demo / ep["audio"], speed=ep.get("speed", 140))
            print("wrote", demo / ep["audio"], file=sys.stderr)
