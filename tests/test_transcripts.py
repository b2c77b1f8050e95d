"""Publisher transcripts from the corpus: every format and quirk the MANIFEST lists, one named test each."""

from __future__ import annotations

import pytest
from conftest import CORPUS

from digest.errors import TranscriptParseError
from digest.publisher_transcripts import parse

T = CORPUS / "transcripts"


def load(name: str, mime: str):
    return parse((T / name).read_text(encoding="utf-8"), mime)


def test_every_corpus_transcript_is_covered():
    covered = {
        "podcastns_example.srt",
        "podcastns_example.vtt",
        "transcriptator_buzzcast.json",
        "transcriptator_podcasting_20_episode_124.srt",
        "transcriptator_podnews_daily_2024-01-25.vtt",
        "changelog_the-changelog-532.md",
        "changelog_practical-ai-240.md",
        "changelog_practical-ai-300.md",
    }
    assert {p.name for p in T.iterdir()} == covered


def test_srt_speaker_prefix_is_removed_and_cues_keep_their_times():
    segments = load("podcastns_example.srt", "application/x-subrip")
    assert len(segments) == 222 and segments[0].start == pytest.approx(0.179)
    assert not any(s.text.startswith("Travis:") for s in segments)
    assert all(s.start <= s.end for s in segments)


def test_a_speaker_label_with_a_credential_is_a_speaker():
    srt = "1\n00:00:01,000 --> 00:00:04,000\nMireille B. Reece, Psy.D: Where attention goes, energy flows.\n"
    (segment,) = parse(srt, "application/x-subrip")
    assert segment.speaker == "Mireille B. Reece, Psy.D" and segment.text == "Where attention goes, energy flows."


def test_vtt_voice_tags_and_entities_are_cleaned():
    segments = load("podcastns_example.vtt", "text/vtt")
    assert len(segments) == 7 and not any("<v" in s.text or "&amp;" in s.text for s in segments)
    assert segments[0].text.startswith("In today's episode")


def test_vtt_with_seconds_only_cue_timings_parses():
    segments = load("transcriptator_podnews_daily_2024-01-25.vtt", "text/vtt")
    assert segments[0].start == pytest.approx(0.86) and segments[0].end == pytest.approx(7.38)
    assert len(segments) == 44 and "SPEAKER_1" not in segments[0].text


def test_srt_with_adam_curry_prefixes_parses():
    segments = load("transcriptator_podcasting_20_episode_124.srt", "application/srt")
    assert len(segments) == 646 and not any(s.text.startswith("Adam Curry:") for s in segments)


def test_json_segments_sharing_one_time_span_are_joined():
    segments = load("transcriptator_buzzcast.json", "application/json")
    spans = [(s.start, s.end) for s in segments]
    assert len(spans) == len(set(spans)) and len(segments) == 489


@pytest.mark.parametrize(
    "name", ["changelog_the-changelog-532.md", "changelog_practical-ai-240.md", "changelog_practical-ai-300.md"]
)
def test_markdown_with_inline_timestamps_gives_timed_paragraphs(name):
    segments = load(name, "text/markdown")
    assert len(segments) > 50
    starts = [s.start for s in segments]
    assert starts == sorted(starts) and starts[-1] > 1000  # "\\[07:37\\]" style stamps were read
    assert not any("**" in s.text or "\\[" in s.text for s in segments)


def test_type_is_sniffed_when_the_declared_one_says_nothing():
    assert parse((T / "podcastns_example.vtt").read_text(), "text/plain")[0].start == 0.0
    assert len(parse((T / "transcriptator_buzzcast.json").read_text(), "application/octet-stream")) == 489


@pytest.mark.parametrize(
    "document,mime",
    [
        ('{"segments": [{"body": "x"}]}', "application/json"),
        ("WEBVTT\n\nno cues here", "text/vtt"),
        ("   ", "text/html"),
    ],
)
def test_broken_transcripts_raise_a_clear_error(document, mime):
    with pytest.raises(TranscriptParseError, match="expected"):
        parse(document, mime)
