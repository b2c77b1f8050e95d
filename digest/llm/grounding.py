"""Grounding: nothing a language model writes reaches a reader unless the transcripts back it.

A quote must be a passage of its episode's transcript, word for word after whitespace (and typographic
quote marks and letter case) are normalised; what readers see is the transcript's own text, at the
transcript's own time. The model's timestamp must point at that passage. An insight may hold no number
and no proper name that its quotes do not hold.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from digest.models import Segment

MIN_QUOTE_WORDS = 5  # a shorter "quote" matches too many places to prove anything
TIME_TOLERANCE = 5.0  # seconds a model's timestamp may sit outside the passage's line
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# A capitalised word that does not open a sentence: a name, in English.
NAME = re.compile(r"(?<![.!?:]\s)(?<!^)(?<![\"“(])\b[A-Z][a-zA-Z]+")
_QUOTE_MARKS = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-"})
_OPENERS = {"While", "Although", "As", "But", "And", "The", "A", "An", "In", "On", "For", "Yet", "So", "I"}


def _normalise(text: str) -> str:
    return " ".join(text.translate(_QUOTE_MARKS).split()).lower()


@dataclass
class Passage:
    """A grounded quote: the transcript's own words and the second they start at."""

    text: str
    start: float


class Transcript:
    """An episode's segments as one normalised text, with each character's segment."""

    def __init__(self, segments: list[Segment]):
        self.segments = segments
        self.starts: list[int] = []  # offset of each segment in the joined text
        raw_parts, offset = [], 0
        for seg in segments:
            part = " ".join(seg.text.split())
            self.starts.append(offset)
            raw_parts.append(part)
            offset += len(part) + 1
        self.raw = " ".join(raw_parts)
        # Folded char by char, so an offset in it is the same offset in raw.
        self.folded = "".join(c.lower() if len(c.lower()) == 1 else c for c in self.raw.translate(_QUOTE_MARKS))

    def locate(self, quote: str, stated: float | None) -> tuple[Passage | None, str]:
        """The passage ``quote`` is, or ``None`` and why not."""
        needle = _normalise(quote).strip(" \"'.,")
        if len(needle.split()) < MIN_QUOTE_WORDS:
            return None, f"quote too short to check ({len(needle.split())} words)"
        at = self.folded.find(needle)
        if at < 0:
            return None, "quote not in the transcript"
        seg = self.segments[bisect.bisect_right(self.starts, at) - 1]
        if stated is not None and not seg.start - TIME_TOLERANCE <= stated <= seg.end + TIME_TOLERANCE:
            return None, f"timestamp {stated:.0f} s is not where the transcript has it ({seg.start:.0f} s)"
        return Passage(self.raw[at : at + len(needle)], seg.start), ""


def seconds(stamp: object) -> float | None:
    """A model's timestamp (``h:mm:ss``, ``mm:ss`` or seconds) in seconds, or ``None`` when unreadable."""
    if isinstance(stamp, bool):
        return None
    if isinstance(stamp, int | float):
        return float(stamp)
    if isinstance(stamp, str) and re.fullmatch(r"\s*\[?\d+(?::\d{1,2}){0,2}(?:\.\d+)?\]?\s*", stamp):
        total = 0.0
        for part in stamp.strip(" []").split(":"):
            total = total * 60 + float(part)
        return total
    return None


def unsupported(text: str, quotes: list[str]) -> str | None:
    """Why ``text`` says more than its quotes (a number or a name they lack), or ``None`` when it does not."""
    source = _normalise(" ".join(quotes))
    numbers = sorted(set(NUMBER.findall(text)) - set(NUMBER.findall(source)))
    if numbers:
        return f"numbers not in the quotes: {', '.join(numbers)}"
    names = sorted({n for n in NAME.findall(text) if n not in _OPENERS and n.lower() not in source})
    if names:
        return f"names not in the quotes: {', '.join(names)}"
    return None
