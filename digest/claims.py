"""Cut transcripts into claim-sized statements and drop what is not a claim, saying why."""

from __future__ import annotations

import re
from collections.abc import Iterable

from digest.models import Claim, Segment

MIN_WORDS = 6
MAX_WORDS = 60
EDGE_SENTENCES = 12  # intros and outros live in the first and last sentences of an episode
_SENTENCE_END = re.compile(
    r"(?<!\bMr\.)(?<!\bMrs\.)(?<!\bMs\.)(?<!\bDr\.)(?<!\bSt\.)(?<!\bvs\.)(?<!\be\.g\.)(?<!\bi\.e\.)"
    r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Za-z0-9])"
)
_AD = re.compile(
    r"brought to you by|sponsored by|our sponsor|promo code|discount code|use code\b|percent off|% off"
    r"|free trial|\bsign up (?:today|now)\b|visit \S+\.(?:com|io|net|org)|go to \S+\.(?:com|io|net|org)"
    r"|support for (?:this|the) (?:show|podcast) comes from|ships free|free shipping|money.back guarantee"
    r"|order (?:now|today)|limited time offer",
    re.IGNORECASE,
)
_QUESTION_START = re.compile(
    r"\W*(?:what|why|how|who|whom|whose|when|where|which|do|does|did|is|are|was|were|can|could|would|should"
    r"|will|have|has|had|isn't|aren't|don't|doesn't|didn't|so what|and what|but what|right|okay|ok)\b",
    re.IGNORECASE,
)
_SMALL_TALK = re.compile(
    r"^(?:(?:hi|hello|hey|welcome|thanks|thank you|good morning|good evening)\b"
    r"|(?:that'?s|that is) (?:all|it|our show)\b|see you\b|bye\b|i'?m your host\b)"
    r"|\b(?:thanks for listening|thank you for listening|see you next|until next time|welcome (?:back )?to"
    r"|subscribe|rate and review|leave (?:us )?a review|follow us on|send us)\b",
    re.IGNORECASE,
)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def sentences(segments: list[Segment]) -> list[tuple[str, float, float]]:
    """Split segments into sentences, each timed by where its characters fall in the segments.

    A sentence that spans segments starts in the first and ends in the last; inside a
    segment, time is interpolated by character position.
    """
    text, spans = "", []
    for seg in segments:
        piece = seg.text.strip()
        if not piece:
            continue
        if text:
            text += " "
        spans.append((len(text), len(text) + len(piece), seg.start, seg.end))
        text += piece

    def at(pos: int) -> float:
        for lo, hi, start, end in spans:
            if pos < hi:
                return start + (end - start) * max(0, pos - lo) / max(1, hi - lo)
        return spans[-1][3] if spans else 0.0

    found, begin = [], 0
    for match in list(_SENTENCE_END.finditer(text)) + [None]:
        stop = match.start() if match else len(text)
        chunk = text[begin:stop].strip()
        if chunk:
            found.append((chunk, round(at(begin), 2), round(at(max(begin, stop - 1)), 2)))
        if match:
            begin = match.end()
    return found


def _merge_short(parts: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """Join a short sentence to the next one, so a claim is not cut in two."""
    merged: list[tuple[str, float, float]] = []
    carry: tuple[str, float, float] | None = None
    for text, start, end in parts:
        if carry:
            text, start = f"{carry[0]} {text}", carry[1]
            carry = None
        if len(_words(text)) < MIN_WORDS and not text.endswith("?") and not _SMALL_TALK.search(text):
            carry = (text, start, end)
            continue
        merged.append((text, start, end))
    if carry:
        merged.append(carry)
    return merged


def _signature(text: str) -> frozenset[str]:
    return frozenset(_words(text))


def _similar(a: frozenset[str], b: frozenset[str]) -> bool:
    return len(a) >= 3 and len(b) >= 3 and len(a & b) / len(a | b) >= 0.5


def boilerplate_signatures(other_episodes: Iterable[list[Segment]]) -> list[frozenset[str]]:
    """Word sets of the intro and outro sentences of a show's other episodes."""
    sigs: list[frozenset[str]] = []
    for segs in other_episodes:
        parts = [p[0] for p in sentences(segs)]
        edge = parts[:EDGE_SENTENCES] + parts[-EDGE_SENTENCES:]
        sigs.extend(_signature(p) for p in edge)
    return sigs


def why_not_a_claim(text: str, boilerplate: list[frozenset[str]] | None = None) -> str | None:
    """The reason a sentence is not a claim, or ``None`` when it is one."""
    words = _words(text)
    if _AD.search(text):
        return "ad"
    if boilerplate and any(_similar(_signature(text), sig) for sig in boilerplate):
        return "boilerplate"
    if text.rstrip().endswith("?") and _QUESTION_START.match(text):
        return "question"
    if _SMALL_TALK.search(text):
        return "small talk"
    if len(words) < MIN_WORDS:
        return "fragment"
    return None


def extract(
    episode_id: int, feed_id: int, segments: list[Segment], other_episodes: Iterable[list[Segment]] = ()
) -> list[Claim]:
    """Claims of one episode, dropped ones included with their reason.

    Args:
        episode_id: The episode the segments belong to.
        feed_id: Its show.
        segments: The episode's transcript.
        other_episodes: Transcripts of the same show's other episodes; sentences that
            recur in their intros and outros are dropped as boilerplate.
    """
    boilerplate = boilerplate_signatures(other_episodes)
    parts = _merge_short(sentences(segments))
    claims = []
    for i, (text, start, end) in enumerate(parts):
        words = text.split()
        if len(words) > MAX_WORDS:
            text = " ".join(words[:MAX_WORDS]) + " …"
        edge = i < EDGE_SENTENCES or i >= len(parts) - EDGE_SENTENCES
        reason = why_not_a_claim(text, boilerplate if edge else [])
        claims.append(Claim(0, episode_id, feed_id, text, start, end, reason))
    return claims
