"""The labelled real days in bench/data/evalsets (see its README for sources and licence), and the rule that
matches a digest's picks to an editor's.

A pick matches an editor's item when either

* the pick's statement or one of its quotes is **the same passage** as one of the item's verbatim quotes: the
  two share at least 60% of the shorter one's content words, and at least four of them (all of them when the
  shorter has fewer, but never a single word: "Right." matches nothing); or
* the pick's statement is **close to the item's headline**: MiniLM cosine similarity at least ``HEADLINE``.
  0.6 is where the evalsets draw the line: on the 18 training days, 19% of the editor's quotes reach their
  own item's headline at 0.6, none reaches another item's headline of the same day, and 0.8% of the
  statements the editor did not quote reach any headline. So it admits a paraphrase of the item's point and
  never confuses two items of one day.

Quotes are what the editor chose from the same transcripts the digest reads; a pick that merely shares a
topic with an item (a name, "open source") does not match.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EVALSETS = ROOT / "bench" / "data" / "evalsets"
sys.path.insert(0, str(ROOT))

from digest.features import tokens  # noqa: E402

MATCH_SHARE = 0.6
MATCH_MIN = 4
HEADLINE = 0.6


@dataclass
class Episode:
    show: str
    key: str
    number: int
    title: str
    path: Path
    hour: int


@dataclass
class GoldItem:
    headline: str
    quotes: list[str]


@dataclass
class Day:
    period: str
    date: str
    episodes: list[Episode]
    top: list[GoldItem]
    runners_up: list[GoldItem]
    stale: list[str] = field(default_factory=list)


def _periods(split: str) -> list[Path]:
    base = EVALSETS / split
    return [base] if (base / "days.json").exists() else sorted(p for p in base.iterdir() if (p / "days.json").exists())


def load(split: str) -> list[Day]:
    """Every day of ``real-train`` or ``real-dev``, in date order within each period."""
    days = []
    for period in _periods(split):
        gold = json.loads((period / "gold.json").read_text())
        for d in json.loads((period / "days.json").read_text()):
            g = gold[d["day"]]

            def items(key: str, g: dict = g) -> list[GoldItem]:
                return [GoldItem(i["headline"], [q["text"] for q in i["quotes"]]) for i in g.get(key, [])]

            eps = [
                Episode(e["show"], e["key"], e["number"], e["title"], period / e["file"], e["hour"])
                for e in sorted(d["episodes"], key=lambda e: e["hour"])
            ]
            days.append(Day(period.name, d["day"], eps, items("top"), items("runners_up"), g.get("stale", [])))
    return days


def same_passage(a: str, b: str) -> bool:
    """The matching rule of this module's docstring."""
    ta, tb = set(tokens(a)), set(tokens(b))
    shorter = min(len(ta), len(tb))
    overlap = len(ta & tb)
    return shorter > 1 and overlap >= min(MATCH_MIN, shorter) and overlap >= MATCH_SHARE * shorter


def matches(texts: list[str], item: GoldItem) -> bool:
    """Whether any of a pick's texts (statement, quotes) is the same passage as one of the item's quotes."""
    return any(same_passage(t, q) for t in texts for q in item.quotes)


def matched(texts: list[str], vector: np.ndarray, items: list[GoldItem], headlines: np.ndarray) -> set[int]:
    """Which items one pick matches: by passage (its statement and quotes), or by its statement's unit
    ``vector`` against the items' unit headline vectors."""
    close = set(np.flatnonzero(headlines @ vector >= HEADLINE).tolist()) if len(items) else set()
    return close | {k for k, item in enumerate(items) if matches(texts, item)}


@dataclass
class Score:
    """How a day's picks compare with the editor's."""

    matched: int  # top picks matched
    runner_up: int  # runners-up matched
    stale: int  # picks repeating an earlier day's top pick the editor marked stale


def score(
    day: Day, picks: list[list[str]], vectors: np.ndarray, top: np.ndarray, earlier: dict[str, GoldItem]
) -> Score:
    """Score a day's picks (each its statement, then its quotes; ``vectors`` the statements' unit vectors)
    against the editor's: ``top`` holds the unit vectors of the top headlines, ``earlier`` the top items
    of earlier days by headline."""
    hits = {k for texts, v in zip(picks, vectors) for k in matched(texts, v, day.top, top)}
    runners = {k for texts in picks for k, item in enumerate(day.runners_up) if matches(texts, item)}
    stale = sum(1 for h in day.stale if h in earlier and any(matches(texts, earlier[h]) for texts in picks))
    return Score(len(hits), len(runners), stale)


def scores(
    day: Day, picks: list[list[str]], vectors: np.ndarray, top: np.ndarray, earlier: dict[str, GoldItem]
) -> tuple[Score, Score]:
    """``score`` by each pick's statement and quotes, then by its statement alone (more quotes are more
    chances to match, so the second compares like with like)."""
    return score(day, picks, vectors, top, earlier), score(day, [p[:1] for p in picks], vectors, top, earlier)


JUDGED = ROOT / "bench" / "data" / "judged_picks.json"
FILLER = {"filler", "intro", "outro", "ad"}


def judged_picks() -> dict[str, dict]:
    """The labelled list of every pick a bench has shown, by statement: verdict, quotes_agree and why."""
    return {j["statement"]: j for j in json.loads(JUDGED.read_text())} if JUDGED.exists() else {}


def to_judge(date: str, statement: str, quotes: list[str], shows: int) -> dict:
    """An entry for the judged list with its verdict left to a person (``quotes_agree`` too, when it claims support)."""
    return {
        "date": date,
        "statement": statement,
        "quotes": quotes,
        "verdict": None,
        "quotes_agree": None if shows > 1 else True,
    }
