"""Turn a published Markdown transcript (``**Speaker:** text`` turns, no timings) into timed SRT cues.

Publishers such as the Changelog network publish transcripts as Markdown without per-line
times. The demo and ``bench/eval_real.py`` serve them as ``<podcast:transcript>`` SRT, so
the cues are synthesised: each speaker turn is split at sentence ends into cues of at most
``MAX_CUE_WORDS`` words, timed at ``WORDS_PER_SECOND`` with a short gap between turns and a longer one at a break. Each
cue starts with ``Speaker:``, which the transcript parser keeps as the segment's speaker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WORDS_PER_SECOND = 2.6
MAX_CUE_WORDS = 40
TURN_GAP = 0.6
BREAK_GAP = 2.0  # a ``**Break:**`` (where a show cuts to a sponsor or a new segment) is a longer pause
_TURN = re.compile(r"^\*\*([^*]{1,60}?):\*\*\s*(.*)$")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_ESCAPE = re.compile(r"\\([\[\]#*_()>`.-])")
_CLOCK = r"\d{1,2}(?::\d{2}){1,2}(?:\.\d+)?"
_TIMESTAMP = re.compile(rf"\\?\[{_CLOCK}\\?\]")  # a section's start time: not speech
_GAP = re.compile(rf"\\?\[unintelligible {_CLOCK}\\?\]")  # words the transcriber could not make out
_ITEM = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*+])\s+")  # a list item's marker
_SENTENCE = re.compile(r"(?<=[.!?…])\s+(?=[\"'“(\[]?[A-Z0-9])")


@dataclass
class Turn:
    """What one speaker said without interruption."""

    speaker: str
    text: str
    after_break: bool = False


def _plain(line: str) -> str:
    line = _TIMESTAMP.sub(" ", line)
    line = _GAP.sub(" [unintelligible] ", line)
    line = _LINK.sub(r"\1", line)
    line = _ESCAPE.sub(r"\1", line)
    line = re.sub(r"^\s*>\s?", "", line)
    line = re.sub(r"[*_`]{1,3}", "", line)
    return " ".join(line.split())


def turns(markdown: str) -> list[Turn]:
    """The speaker turns of a transcript; ``**Break:**`` ends a turn and says nothing. A new paragraph or
    list item within a turn ends the sentence before it, even where the transcript has no full stop."""
    found: list[Turn] = []
    speaker: str | None = None
    pause = False
    new_block = False
    for raw in markdown.splitlines():
        if match := _TURN.match(raw.strip()):
            speaker = None if match[1].strip().lower() == "break" else match[1].strip()
            pause = pause or speaker is None
            if speaker:
                found.append(Turn(speaker, "", pause))
                pause = False
            raw = match[2]
        item = _ITEM.match(raw)
        text = _plain(raw[item.end() :] if item else raw)
        if text and speaker and found:
            before = found[-1].text
            if (item or new_block) and before.rstrip("\"')”’")[-1:] not in ("", *".!?…:;-—]"):
                before += "."
            found[-1].text = f"{before} {text}".strip()
        new_block = not raw.strip()
    return [t for t in found if t.text]


def _clock(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def to_srt(markdown: str) -> str:
    """SRT cues for a Markdown transcript, each prefixed with its speaker's name."""
    cues: list[str] = []
    clock = 0.0
    for turn in turns(markdown):
        clock += BREAK_GAP if turn.after_break else 0.0
        chunk: list[str] = []
        pieces = _SENTENCE.split(turn.text)
        for i, sentence in enumerate(pieces):
            chunk.append(sentence)
            words = sum(len(s.split()) for s in chunk)
            if i + 1 < len(pieces) and words + len(pieces[i + 1].split()) <= MAX_CUE_WORDS:
                continue
            duration = max(1.0, words / WORDS_PER_SECOND)
            cues.append(
                f"{len(cues) + 1}\n{_clock(clock)} --> {_clock(clock + duration)}\n{turn.speaker}: {' '.join(chunk)}\n"
            )
            clock += duration
            chunk = []
        clock += TURN_GAP
    return "\n".join(cues)
