"""The PyTorch (GPU) transcription path, checked on the CPU with the exported bundled tiny.en.

``digest.asr.torch.greedy`` must pick exactly the tokens ``whisper.decode`` picks; batches of windows
from many files must keep words and timestamps; a broken file costs only itself; and the
audio thread stays a bounded distance ahead of the decoder.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CORPUS
from metrics import wer
from speech import JFK, REFERENCES

from digest.asr.audio import decode_chunks
from digest.asr.executors import Job, LocalExecutor
from digest.errors import TranscriptionError
from digest.models import Episode

whisper = pytest.importorskip("whisper")
pytestmark = pytest.mark.slow

AUDIO = CORPUS / "audio"


@pytest.fixture(scope="module")
def torch_whisper(tmp_path_factory):
    """openai-whisper with the bundled tiny.en exported to a PyTorch checkpoint, 8 windows per batch."""
    from digest.asr.faster_whisper import bundled_asr_model
    from digest.asr.torch.backend import OpenAIWhisper
    from digest.asr.torch.export import export

    checkpoint = export(Path(bundled_asr_model()), tmp_path_factory.mktemp("model") / "tiny.en.pt")
    return OpenAIWhisper(model=str(checkpoint), device="cpu", batch_size=8)


def test_greedy_decoder_picks_the_tokens_whisper_decode_picks(torch_whisper):
    from digest.asr.torch.batched import recording_windows

    decoder, model = torch_whisper.batched, torch_whisper.model
    recordings = [
        np.concatenate(list(decode_chunks(AUDIO / name, 600)))
        for name in [*REFERENCES, "vosk_test.wav", "ds_LDC93S1.wav"]
    ]
    windows = list(recording_windows(recordings))
    mel = decoder.log_mel(decoder.pack(windows))
    theirs = [whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(w.audio))) for w in windows]
    assert float((mel - torch.stack(theirs)).abs().max()) < 1e-4
    ours = decoder.greedy(mel)
    options = whisper.DecodingOptions(language="en", without_timestamps=False, fp16=False, temperature=0.0)
    reference = whisper.decode(model, torch.stack(theirs), options)
    assert len(ours) == len(reference) == len(windows) == 6
    for mine, plain in zip(ours, reference):
        assert mine.tokens == plain.tokens
        assert mine.avg_logprob == pytest.approx(plain.avg_logprob, abs=1e-4)
        assert mine.no_speech_prob == pytest.approx(plain.no_speech_prob, abs=1e-4)
    assert sum(t >= decoder.tokenizer.timestamp_begin for out in ours for t in out.tokens) >= 2 * len(ours)


def test_a_window_that_reaches_the_token_limit_stops_where_whisper_decode_stops(torch_whisper):
    from digest.asr.torch.batched import recording_windows
    from digest.asr.torch.greedy import GreedyDecoder

    model, decoder = torch_whisper.model, torch_whisper.batched
    windows = list(recording_windows([np.concatenate(list(decode_chunks(AUDIO / "whisper_jfk.flac", 600)))]))
    mel = decoder.log_mel(decoder.pack(windows))
    ours = GreedyDecoder(model, "en", sample_len=10)(mel)
    options = whisper.DecodingOptions(
        language="en", without_timestamps=False, temperature=0.0, sample_len=10, fp16=False
    )
    [plain] = whisper.decode(model, mel, options)
    assert ours[0].tokens == plain.tokens and len(plain.tokens) == 10
    assert ours[0].avg_logprob == pytest.approx(plain.avg_logprob, abs=1e-4)


def test_windows_of_several_recordings_keep_words_and_timestamps(torch_whisper):
    recordings = [np.concatenate(list(decode_chunks(AUDIO / name, 600))) for name in REFERENCES]
    results = torch_whisper.batched.transcribe_many(recordings)  # windows of all three in shared batches
    for (name, reference), segments, audio in zip(REFERENCES.items(), results, recordings):
        assert wer(reference, " ".join(s.text for s in segments)) <= 0.05, name
        assert all(0 <= s.start <= s.end <= len(audio) / 16000 + 0.01 for s in segments), name
    harvard = results[2]
    assert len(harvard) >= 8 and harvard[-1].end > 30  # the second window's times are offset into the file
    assert list(torch_whisper.transcribe_file(AUDIO / "radiofeed_episode_silence.wav")) == []


def test_episodes_share_batches_and_a_broken_file_costs_only_itself(torch_whisper, config, tmp_path):
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"ID3" + bytes(range(256)) * 64)
    names = ["whisper_jfk.flac", "joinly_OSR_us_000_0034_8k.wav", "radiofeed_episode_silence.wav"]
    paths = [AUDIO / names[0], broken, AUDIO / names[1], AUDIO / names[2]]
    jobs = [Job(Episode(n, 1, p.name), p) for n, p in enumerate(paths)]
    executor = LocalExecutor(config, torch_whisper, progress=None)
    assert torch_whisper.batches_files
    outcomes = {job.path.name: outcome for job, outcome in executor.transcribe(jobs)}
    assert list(outcomes) == [p.name for p in paths]
    assert isinstance(outcomes["broken.mp3"], TranscriptionError) and "broken.mp3" in str(outcomes["broken.mp3"])
    alone = {name: list(torch_whisper.transcribe_file(AUDIO / name)) for name in names}
    for name in names:  # the same words as each file on its own (batch shape may move a kernel's sums, not words)
        assert wer(" ".join(s.text for s in alone[name]), " ".join(s.text for s in outcomes[name])) <= 0.05, name
    assert wer(JFK, " ".join(s.text for s in outcomes[names[0]])) <= 0.1
    assert outcomes[names[2]] == []


def test_the_audio_thread_stays_a_bounded_distance_ahead(torch_whisper):
    from digest.asr.torch.batched import PREFETCH, Window

    decoder, pulled, ahead = torch_whisper.batched, [0], []
    quiet = np.zeros(16000 * 30, dtype=np.float32)  # silent windows skip the model, so this is quick

    def source():
        for n in range(200):
            pulled[0] += 1
            yield Window(n, 0.0, quiet)

    for consumed, (window, segments) in enumerate(decoder.transcribe_windows(source()), 1):
        assert segments == [] and window.recording == consumed - 1
        ahead.append(pulled[0] - consumed)
    assert len(ahead) == 200 and max(ahead) <= decoder.batch_size * (PREFETCH + 2)


def test_a_failing_audio_source_raises_in_the_caller_and_stops_the_reader(torch_whisper):
    from digest.asr.torch.batched import Window

    def source():
        for n in range(20):
            yield Window(n, 0.0, np.zeros(16000, dtype=np.float32))
        raise OSError("disk went away")

    with pytest.raises(OSError, match="disk went away"):
        list(torch_whisper.batched.transcribe_windows(source()))
    assert not any(t.name == "digest-windows" and t.is_alive() for t in threading.enumerate())


def test_padded_batch_sizes_are_few():
    from digest.asr.torch.greedy import bucket

    assert [bucket(n) for n in (1, 8, 9, 100, 256, 257)] == [8, 8, 16, 128, 256, 512]
