"""Insight quality on the labelled corpus in tests/data/eval: recall of planted themes, and junk, duplicates
and stale repeats in the top five (all three must be 0).

    python bench/eval_insights.py            # text: publisher transcripts, no ASR
    python bench/eval_insights.py --audio    # the same episodes spoken by espeak-ng and transcribed by tiny.en

Both run the real pipeline (poll → fetch → transcribe → claims → embed → rank) over local feeds.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT / "tests" / "data" / "eval"
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

_LABEL = re.compile(r"^\[([a-z]+)(?::([a-z0-9-]+))?\]\s*(.*)$")


@dataclass
class Line:
    label: str  # theme, ad, intro, outro, aside, chat
    theme: str | None
    text: str
    show: str


@dataclass
class DayResult:
    date: str
    planted: set[str]
    found: list[str | None]  # per insight: the theme it matched, or its label when not a theme
    statements: list[str]
    recall: float = 0.0
    junk: int = 0
    duplicates: int = 0
    stale: int = 0
    themes: set[str] = field(default_factory=set)


def load_day(path: Path) -> dict:
    day = tomllib.loads(path.read_text())
    for ep in day["episode"]:
        ep["parsed"] = []
        for raw in ep["lines"].strip().splitlines():
            m = _LABEL.match(raw.strip())
            assert m, f"{path.name}: unlabelled line {raw!r}"
            ep["parsed"].append(Line(m[1], m[2], m[3], ep["show"]))
    return day


def _slug(show: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", show.lower()).strip("-")


def _vtt(lines: list[Line]) -> str:
    cues = ["WEBVTT", ""]
    for i, line in enumerate(lines):
        cues += [
            f"00:{i * 10 // 60:02d}:{i * 10 % 60:02d}.000 --> 00:{(i * 10 + 9) // 60:02d}:{(i * 10 + 9) % 60:02d}.000",
            line.text,
            "",
        ]
    return "\n".join(cues)


def write_feeds(days: list[dict], upto: int, media: Path, feeds_dir: Path, audio: bool) -> list[Path]:
    """RSS feeds per show holding the episodes of days[:upto], transcripts or audio as file:// URLs."""
    from digest.rss import RssItem, rss

    shows: dict[str, list[RssItem]] = {}
    for n, day in enumerate(days[:upto]):
        for ep in day["episode"]:
            slug = f"{_slug(ep['show'])}-d{n + 1}"
            item = RssItem(ep["title"], slug, datetime.fromisoformat(day["date"]).replace(hour=6, tzinfo=UTC))
            if audio:
                path = media / f"{slug}.mp3"
                if not path.exists():
                    from speech import synthesize

                    synthesize("\n".join(line.text for line in ep["parsed"]), path)
                item.url = path.as_uri()
            else:
                path = media / f"{slug}.vtt"
                path.write_text(_vtt(ep["parsed"]))
                item.transcripts = ((path.as_uri(), "text/vtt"),)
                item.url = f"https://cdn.invalid/{slug}.mp3"
            shows.setdefault(ep["show"], []).append(item)
    paths = []
    for show, items in shows.items():
        path = feeds_dir / f"{_slug(show)}.xml"
        path.write_text(rss(show, items))
        paths.append(path)
    return paths


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def match_line(statement: str, lines: list[Line]) -> Line:
    """The labelled line an insight statement came from: the largest word overlap."""
    return max(
        lines, key=lambda line: len(_words(statement) & _words(line.text)) / len(_words(statement) | _words(line.text))
    )


def score_day(day: dict, digest, sent_themes: set[str]) -> DayResult:
    lines = [line for ep in day["episode"] for line in ep["parsed"]]
    shows_by_theme: dict[str, set[str]] = {}
    for line in lines:
        if line.theme:
            shows_by_theme.setdefault(line.theme, set()).add(line.show)
    planted = {t for t, shows in shows_by_theme.items() if len(shows) >= 2 and t not in sent_themes}
    found = []
    for insight in digest.insights:
        line = match_line(insight.statement, lines)
        found.append(line.theme if line.label == "theme" else line.label)
    themes = {f for f in found if f in shows_by_theme}
    result = DayResult(day["date"], planted, found, [i.statement for i in digest.insights], themes=themes)
    result.recall = len(themes & planted) / len(planted) if planted else 1.0
    result.junk = sum(f in {"ad", "intro", "outro", "chat"} for f in found)
    result.duplicates = sum(found.count(t) - 1 for t in themes)
    result.stale = len(themes & sent_themes)
    return result


def evaluate(audio: bool = False, work: Path | None = None, transcriber=None, embedder=None) -> list[DayResult]:
    """Run both days through the pipeline in a fresh data directory and score each day's digest."""
    from digest import pipeline
    from digest.config import load
    from digest.store import Store

    days = [load_day(EVAL / "day1.toml"), load_day(EVAL / "day2.toml")]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        media = work or base / "media"
        media.mkdir(parents=True, exist_ok=True)
        feeds_dir = base / "feeds"
        feeds_dir.mkdir()
        config = load(base / "home", overrides={"fetch.retries": 0})
        store = Store(config.db_path)
        results, sent = [], set()
        for n, day in enumerate(days, 1):
            for path in write_feeds(days, n, media, feeds_dir, audio):
                store.add_feed(path.as_uri())
            report = pipeline.run(
                config, store, date=day["date"], quiet=True, transcriber=transcriber, embedder=embedder
            )
            assert not report.failed, report.failed
            result = score_day(day, report.digest, sent)
            sent |= result.themes
            results.append(result)
        store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", action="store_true", help="speak the corpus with espeak-ng and transcribe it")
    args = parser.parse_args()
    results = evaluate(audio=args.audio)
    print(f"insight evaluation ({'audio: espeak-ng + tiny.en' if args.audio else 'text transcripts'})")
    for r in results:
        print(
            f"\n{r.date}: recall {r.recall:.2f} ({len(r.themes & r.planted)}/{len(r.planted)} planted themes)"
            f"  junk {r.junk}  duplicates {r.duplicates}  stale {r.stale}"
        )
        for n, (label, statement) in enumerate(zip(r.found, r.statements), 1):
            print(f"  {n}. [{label}] {statement}")


if __name__ == "__main__":
    main()
