"""Precision and recall of the chatter filter on hand-labelled real sentences.

    python bench/eval_chatter.py

``bench/data/chatter_labels.json`` holds 60 sentences drawn at random (seed 11, 20 each) from three real
conversations of real-dev (friends-63, jsparty-344, shipit-126), each labelled by hand: chatter (small talk,
reactions, jokes, questions, talk about the show, fragments that say nothing) or content. The filter flags a
sentence when ``digest.claims.why_not_a_claim`` gives a reason or it is shorter than ``MIN_WORDS``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LABELS = ROOT / "bench" / "data" / "chatter_labels.json"

from digest.claims import MIN_WORDS, why_not_a_claim, words  # noqa: E402


def flagged(text: str) -> bool:
    return why_not_a_claim(text) is not None or len(words(text)) < MIN_WORDS


def precision_recall() -> tuple[float, float, list[tuple[bool, bool, str]]]:
    rows = [(r["chatter"], flagged(r["text"]), r["text"]) for r in json.loads(LABELS.read_text())]
    hits = sum(1 for truth, flag, _ in rows if truth and flag)
    return hits / max(1, sum(f for _, f, _ in rows)), hits / max(1, sum(t for t, _, _ in rows)), rows


def main() -> None:
    precision, recall, rows = precision_recall()
    print(f"chatter filter on {len(rows)} labelled real sentences: precision {precision:.2f}, recall {recall:.2f}")
    for truth, flag, text in rows:
        if truth != flag:
            print(f"  {'missed' if truth else 'wrongly dropped'}: {text[:120]}")


if __name__ == "__main__":
    main()
