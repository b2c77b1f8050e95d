"""Parse publisher transcripts (``<podcast:transcript>``): JSON, WebVTT, SRT, HTML and plain text."""

from __future__ import annotations

import html
import json
import re

from digest.errors import TranscriptParseError
from digest.models import Segment

_CUE_TIME = r"(?:(?:\d+:)?\d{1,2}:)?\d+(?:[.,]\d+)?"
_CUE = re.compile(rf"^\s*({_CUE_TIME})\s*-->\s*({_CUE_TIME})")
_INLINE_TIME = re.compile(r"^\s*\\?\[(\d{1,2}(?::\d{2}){1,2})\\?\]\s*")
# A time stamp of the published transcript inside its text ("[01:04:04.19]", "[36:50]"): not speech.
_STAMP = re.compile(r"\\?\[\d{1,2}(?::\d{2}){1,2}(?:[.,]\d+)?\\?\]")
# "Name:" at the start of a cue, up to four capitalised words and an optional credential ("…, Psy.D")
_SPEAKER = re.compile(r"^\s*(?:\*\*)?([A-Z][\w.'-]*(?: [A-Z][\w.'-]*){0,3}(?:, [A-Z][\w.'-]*)?):(?:\*\*)?\s+")
_VOICE = re.compile(r"<v(?:\.[^ >]*)?\s+([^>]*)>")


def _seconds(stamp: str) -> float:
    parts = stamp.replace(",", ".").split(":")
    total = 0.0
    for p in parts:
        total = total * 60 + float(p)
    return total


def _clean(text: str) -> str:
    return _with_speaker(text)[1]


def _with_speaker(text: str) -> tuple[str | None, str]:
    """A cue's text without markup, and its speaker from a WebVTT voice tag or a ``Name:`` label."""
    voice = _VOICE.search(text)
    text = re.sub(r"<[^>]+>", "", _VOICE.sub("", text))
    text = _STAMP.sub(" ", html.unescape(text)).strip()
    label = _SPEAKER.match(text)
    text = _SPEAKER.sub("", text)
    speaker = voice[1].strip() if voice else label[1] if label else None
    return speaker, " ".join(text.split())


def parse_json(document: str) -> list[Segment]:
    """Podcast namespace JSON: ``{"segments": [{"startTime", "endTime", "body"}]}``."""
    try:
        data = json.loads(document)
        raw = data["segments"] if isinstance(data, dict) else data
        segments = [Segment(float(s["startTime"]), float(s["endTime"]), _clean(str(s["body"]))) for s in raw]
    except (ValueError, KeyError, TypeError) as exc:
        raise TranscriptParseError(f"expected podcast-namespace JSON segments: {exc}") from None
    return _merge_words(s for s in segments if s.text)


def _merge_words(segments) -> list[Segment]:
    """Join segments that share one time span (word-level JSON often does)."""
    merged: list[Segment] = []
    for s in segments:
        if merged and merged[-1].start == s.start and merged[-1].end == s.end:
            merged[-1].text += " " + s.text
        else:
            merged.append(Segment(s.start, s.end, s.text))
    return merged


def parse_cues(document: str) -> list[Segment]:
    """WebVTT or SRT cues, including cue timings written in seconds only (``0.860 --> 7.380``)."""
    segments = []
    lines = document.replace("\r\n", "\n").replace("\ufeff", "").split("\n")
    i = 0
    while i < len(lines):
        match = _CUE.match(lines[i])
        i += 1
        if not match:
            continue
        body = []
        while i < len(lines) and lines[i].strip() and not _CUE.match(lines[i]):
            body.append(lines[i])
            i += 1
        speaker, text = _with_speaker(" ".join(body))
        if text:
            segments.append(Segment(_seconds(match[1]), _seconds(match[2]), text, speaker))
    if not segments:
        raise TranscriptParseError("expected WebVTT or SRT cues (00:00:01.000 --> 00:00:02.000), found none")
    return segments


def parse_text(document: str) -> list[Segment]:
    """HTML, Markdown or plain text: one segment per paragraph.

    Inline timestamps such as ``[07:37]`` give a paragraph its start; a paragraph
    without one starts where the previous one did.
    """
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", "", document)
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</h\d>|</li>", "\n\n", text)
    text = re.sub(r"<[^>]+>", "", text)
    segments: list[Segment] = []
    start = 0.0
    for para in re.split(r"\n\s*\n", html.unescape(text)):
        if stamp := _INLINE_TIME.match(para.lstrip("*_ ")):
            start = _seconds(stamp.group(1))
        para = _STAMP.sub(" ", _INLINE_TIME.sub("", para))
        para = re.sub(r"[*_#>`]+", "", re.sub(r"\\([\[\]()*_#>`])", r"\1", para))
        cleaned = _clean(para)
        if cleaned:
            segments.append(Segment(start, start, cleaned))
    for prev, nxt in zip(segments, segments[1:]):
        prev.end = max(prev.start, nxt.start)
    if not segments:
        raise TranscriptParseError("expected transcript text, found an empty document")
    return segments


def parse(document: str, mime_type: str) -> list[Segment]:
    """Parse a transcript by its declared type; sniff when the type says nothing useful."""
    kind = mime_type.lower().split(";")[0].strip()
    head = document.lstrip("\ufeff \n\r\t")[:200]
    if kind == "application/json" or (head.startswith("{") and '"segments"' in document[:2000]):
        return parse_json(document)
    if kind in {"text/vtt", "application/x-subrip", "application/srt", "text/srt"} or "-->" in document[:2000]:
        return parse_cues(document)
    return parse_text(document)
