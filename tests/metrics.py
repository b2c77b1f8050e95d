"""Word error rate for the speech tests and benchmarks."""

from __future__ import annotations

import re

_NUMBERS = {"20": "twenty", "40": "forty"}


def words(text: str) -> list[str]:
    """Lower-case words without punctuation; a few digits spelled out as Whisper may write them."""
    return [_NUMBERS.get(w, w) for w in re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))]


def wer(reference: str, hypothesis: str) -> float:
    """Word-level Levenshtein distance divided by the reference length."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(1, len(ref))


def recovered(expected: list[str], heard: list[str]) -> float:
    """Share of ``expected`` words found in ``heard`` in the same order (longest common subsequence)."""
    row = [0] * (len(heard) + 1)
    for e in expected:
        prev = 0
        for j, h in enumerate(heard, 1):
            prev, row[j] = row[j], prev + 1 if e == h else max(row[j], row[j - 1])
    return row[-1] / max(1, len(expected))
