"""Grounding: nothing a language model writes reaches a reader unless the transcripts back it.

A quote must be a passage of its episode's transcript, word for word after whitespace (and typographic
quote marks and letter case) are normalised; what readers see is the transcript's own text, at the
transcript's own time. The model's timestamp must point at that passage. A claim or an insight may hold
no number and no proper name that its episodes do not hold near its quotes (:func:`unsupported`, given
the text around the quotes, the speakers there and the episode's and show's titles).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from digest.models import Segment

MIN_QUOTE_WORDS = 5  # a shorter "quote" matches too many places to prove anything
TIME_TOLERANCE = 5.0  # seconds a model's timestamp may sit outside the passage's line
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# A word, a number, or a compound of them joined by hyphens or points ("GPT-4", "3.5", "H100", "gpt4all").
TOKEN = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|[\w’']+(?:[-.][\w’']+)*")
# What makes a word that opens a sentence a name too: a possessive, or a verb of saying after it ("Meta says").
_SUBJECT = re.compile(r"\s+(?:says|said|argues|claims|announced|announces|warns|reports|thinks)\b")
_OPENS = re.compile(r"(?:^|[.!?:]\s+|[\"“(]\s*)$")  # what precedes a word that opens a sentence or quote
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


def facts(text: str) -> tuple[list[str], list[str]]:
    """The numbers and the names in ``text``, each a whole token: "GPT-4", "3.5", "H100" and "Llama" are one
    each, and a possessive or hyphenated suffix ("Meta's", "BUSL-licensed") is not part of the name."""
    numbers: list[str] = []
    names: list[str] = []
    for m in TOKEN.finditer(text):
        token = m.group().rstrip(".,'’")  # a closing quotation mark is not part of the word
        if any(c.isdigit() for c in token):
            (names if any(c.isalpha() for c in token) else numbers).append(token)
        elif token[0].isupper() and (
            m.start() > 0
            and not _OPENS.search(text[: m.start()])
            or token[-2:] in ("'s", "’s")
            or _SUBJECT.match(text, m.end())
        ):
            names.append(token.split("-")[0].removesuffix("'s").removesuffix("’s"))
    return numbers, [n for n in names if n not in _OPENERS]


def unsupported(text: str, sources: list[str], named: list[str] | None = None) -> str | None:
    """Why ``text`` says more than ``sources`` (a number or a name none of them holds), or ``None``; names
    may also stand in ``named`` (the whole episode, where numbers must stand near their quotes).

    Tokens are compared whole and without case; "4" in "GPT-4" is not the number 4; an all-capital
    abbreviation is backed by the words it abbreviates ("CTO" by "chief technology officer")."""
    source = _normalise(" ".join(sources))
    numbers, names = facts(text)
    source_numbers = {n.replace(",", "") for n in NUMBER.findall(source)}
    missing = sorted({n for n in numbers if n.replace(",", "") not in source_numbers})
    if missing:
        return f"numbers not in the source: {', '.join(missing)}"
    source = _normalise(" ".join([*sources, *(named or [])])).replace(" dot ", ".")
    words = {w.removesuffix("'s") for w in re.findall(r"[\w'.]*\w", source)}
    words |= {part for w in words for part in w.split(".")} | {w[:-1] for w in words if w.endswith("s")}  # LLMs
    compact = re.sub(r"[\s\-]", "", source)
    initials = "".join(w[0] for w in re.findall(r"[a-z0-9]+", source))
    absent = sorted(
        {
            n
            for n in names
            if not (
                n.lower() in words
                or n.lower().removesuffix("s") in words
                or ("-" in n or len(n) >= 6 or any(c.isdigit() for c in n))  # "OpenSearch" for "Open Search"
                and re.sub(r"[\s\-]", "", n.lower()) in compact
                or n.isupper()
                and len(n) >= 2
                and n.lower() in initials
            )
        }
    )
    if absent:
        return f"names not in the source: {', '.join(absent)}"
    return None
