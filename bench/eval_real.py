"""Insight quality on real podcast days: the editor-labelled days of bench/data/evalsets, run through `digest run`.

    python bench/eval_real.py                 # real-dev (3 days, never trained on)
    python bench/eval_real.py --split real-train   # the 18 training days (in-sample for the shipped ranker;
                                                   # bench/train_ranker.py reports leave-one-period-out)

Each day's published Markdown transcripts become SRT files with synthesised cues
(``digest.demo.markdown_cues``), linked as ``<podcast:transcript>`` from one RSS feed per show. The days of a
period run in date order in one data directory, each with ``digest run --date DAY``, so what one day sends
is the archive of the next. Reported per day:

* **matched**: editor's top picks matched (``real_days.matched``: the pick's statement or one of its quotes is
  the same passage as one of the item's quotes, or the statement is close to its headline); ``+n`` counts picks
  that match a runner-up instead; "by the statement alone" leaves the quotes out;
* **filler**: picks judged filler, intro/outro or ad in ``bench/data/judged_picks.json`` (every pick this
  bench has shown is judged there; an unjudged pick is printed so it can be judged);
* **stale**: picks that repeat an earlier day's top pick the editor marked stale;
* **support**: of the picks claiming two or more shows, how many the judged list says truly agree;
* **seconds**: wall time of ``digest run`` for the day.

With ``llm.mode = select`` each day also reports: insights and multi-show insights; the model's key points
found, grounded (a verbatim quote) and shown to selection; names and numbers of an insight that appear
nowhere in its episodes' transcripts or titles; calls, prompt and answer tokens, and the wall time.
``--save DIR`` keeps each day's digest JSON (with ``--explain``) for later reading.

With ``--llm-url URL --llm-model NAME`` the same days run with ``llm.mode = select`` against that
OpenAI-compatible endpoint (the key, if any, from ``DIGEST_LLM_API_KEY``), and the table says which
method made each day (``ranker`` when the run fell back).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_days  # noqa: E402
from real_days import Day  # noqa: E402

from digest.demo.markdown_cues import to_srt  # noqa: E402
from digest.llm.grounding import unsupported  # noqa: E402
from digest.minilm import NumpyMiniLM  # noqa: E402
from digest.rss import RssItem, rss  # noqa: E402


@dataclass
class DayResult:
    date: str
    score: real_days.Score  # by each pick's statement and quotes
    alone: real_days.Score  # by each pick's statement alone
    seconds: float
    picks: list[dict] = field(default_factory=list)
    verdicts: list[str | None] = field(default_factory=list)
    support_claims: int = 0
    support_right: int = 0
    method: str = "ranker"
    invented: list[str] = field(default_factory=list)  # "insight: what its episodes lack"
    key_points: list[dict] = field(default_factory=list)
    usage: dict = field(default_factory=dict)


def write_feeds(days: list[Day], media: Path, feeds: Path, link: Callable[[Path], str] = Path.as_uri) -> list[Path]:
    """One RSS feed per show holding its episodes of ``days``, transcripts as SRT files that ``link`` gives
    the URL of (a ``file:`` URI by default)."""
    items: dict[str, list[RssItem]] = {}
    for day in days:
        for ep in day.episodes:
            slug = f"{ep.key}-{ep.number}"
            srt = media / f"{slug}.srt"
            if not srt.exists():
                srt.write_text(to_srt(ep.path.read_text(encoding="utf-8")), encoding="utf-8")
            when = datetime.fromisoformat(day.date).replace(hour=ep.hour, tzinfo=UTC)
            item = RssItem(ep.title, slug, when, f"https://cdn.example.com/{slug}.mp3")
            item.transcripts = ((link(srt), "application/x-subrip"),)
            items.setdefault(ep.show, []).append(item)
    paths = []
    for show, show_items in items.items():
        path = feeds / f"{show_items[0].guid.rsplit('-', 1)[0]}.xml"
        path.write_text(rss(show, show_items[::-1]), encoding="utf-8")
        paths.append(path)
    return paths


def invented(day: Day, insight: dict) -> str | None:
    """What names or numbers of an insight's text appear nowhere in its episodes (transcripts and titles)."""
    shows = {q["show"] for q in insight["quotes"]}
    sources = [f"{ep.show} {ep.title} {ep.path.read_text(encoding='utf-8')}" for ep in day.episodes if ep.show in shows]
    return unsupported(insight["text"], sources)


def run_period(
    days: list[Day], judged: dict[str, dict], embedder: NumpyMiniLM, llm: dict[str, str], save: Path | None
) -> list[DayResult]:
    results = []
    earlier: dict[str, real_days.GoldItem] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "media").mkdir()
        (base / "feeds").mkdir()
        env = {**os.environ, **llm, "DIGEST_HOME": str(base / "home"), "HF_HUB_OFFLINE": "1"}
        digest = [sys.executable, "-m", "digest"]
        for n, day in enumerate(days):
            for path in write_feeds(days[: n + 1], base / "media", base / "feeds"):
                subprocess.run([*digest, "feeds", "add", path.as_uri()], env=env, capture_output=True, check=False)
            started = time.perf_counter()
            out = subprocess.run(
                [*digest, "run", "--date", day.date, "--dry-run", "--json", "--explain"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            seconds = time.perf_counter() - started
            made = json.loads(out.stdout)["digest"]
            picks = made["insights"]
            texts = [[i["statement"], *(q["text"] for q in i["quotes"])] for i in picks]
            vectors = embedder.embed([i["statement"] for i in picks])
            top = embedder.embed([item.headline for item in day.top])
            result = DayResult(day.date, *real_days.scores(day, texts, vectors, top, earlier), seconds, picks)
            result.method = made["method"]
            result.key_points, result.usage = made.get("key_points", []), made.get("llm_usage", {})
            result.invented = [f"{p['text']}: {why}" for p in picks if (why := invented(day, p))]
            if save:
                (save / f"{day.date}.json").write_text(json.dumps(made, indent=1, ensure_ascii=False) + "\n")
            for p in picks:
                verdict = judged.get(p["statement"], {})
                result.verdicts.append(verdict.get("verdict"))
                if p["support"]["shows"] > 1:
                    result.support_claims += 1
                    result.support_right += bool(verdict.get("quotes_agree"))
            results.append(result)
            earlier.update((item.headline, item) for item in day.top)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="real-dev", choices=["real-dev", "real-train"])
    parser.add_argument(
        "--unjudged", type=Path, help="write the picks not yet in judged_picks.json here, as entries to judge"
    )
    parser.add_argument("--llm-url", help="run with llm.mode = select against this OpenAI-compatible endpoint")
    parser.add_argument("--llm-model", help="the model name to send with --llm-url")
    parser.add_argument("--save", type=Path, help="keep each day's digest JSON (with --explain) in this folder")
    args = parser.parse_args()
    if bool(args.llm_url) != bool(args.llm_model):
        parser.error("--llm-url and --llm-model go together")
    llm = (
        {"DIGEST_LLM_MODE": "select", "DIGEST_LLM_BASE_URL": args.llm_url, "DIGEST_LLM_MODEL": args.llm_model}
        if args.llm_url
        else {}
    )
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
    judged = real_days.judged_picks()
    days = real_days.load(args.split)
    results: list[DayResult] = []
    embedder = NumpyMiniLM()
    for period in dict.fromkeys(d.period for d in days):
        results += run_period([d for d in days if d.period == period], judged, embedder, llm, args.save)
    print(f"{args.split}: editor's picks matched per day (runners-up in brackets), filler, stale, support, seconds")
    for r in results:
        filler = sum(v in real_days.FILLER for v in r.verdicts)
        unjudged = sum(v is None for v in r.verdicts)
        print(
            f"  {r.date}: matched {r.score.matched}/5 (+{r.score.runner_up}; {r.alone.matched} by the statement alone)"
            f"  filler {filler}"
            + (f" ({unjudged} unjudged)" if unjudged else "")
            + f"  stale {r.score.stale}  support {r.support_right}/{r.support_claims}  {r.seconds:.0f} s  ({r.method})"
        )
        multi = sum(p["support"]["shows"] > 1 for p in r.picks)
        print(f"     {len(r.picks)} insights, {multi} multi-show; {len(r.invented)} with names or numbers nowhere in")
        print("     their episodes" + "".join(f"\n       - {line}" for line in r.invented))
        if r.key_points:
            grounded = [k for k in r.key_points if not k["fate"].startswith("ungrounded")]
            shown = [k for k in r.key_points if "shown to selection" in k["fate"]]
            fixed = [k for k in grounded if k["fate"].startswith(("restated", "claim replaced"))]
            print(
                f"     key points: {len(r.key_points)} found, {len(grounded)} grounded ({len(fixed)} restated or"
                f" replaced by a quote), {len(shown)} shown to selection"
            )
        if r.usage:
            u = r.usage
            print(
                f"     model: {u['calls']} calls, {u['prompt_tokens']} prompt + {u['answer_tokens']} answer tokens,"
                f" {u['cached']} cached, {u['seconds']:.0f} s waiting on it"
            )
        for p, v in zip(r.picks, r.verdicts):
            print(f"     [{v or 'UNJUDGED'}] ({p['support']['shows']} shows) {p['text'][:200]}")
    mean = sum(r.score.matched for r in results) / len(results)
    alone = sum(r.alone.matched for r in results) / len(results)
    print(f"  mean matched {mean:.2f}/5 per day ({alone:.2f} by the statements alone) over {len(results)} days")
    if args.unjudged:
        todo = [
            real_days.to_judge(
                r.date, p["statement"], [f"{q['show']}: {q['text']}" for q in p["quotes"]], p["support"]["shows"]
            )
            for r in results
            for p, v in zip(r.picks, r.verdicts)
            if v is None
        ]
        args.unjudged.write_text(json.dumps(todo, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
