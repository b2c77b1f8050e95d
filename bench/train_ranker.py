"""Train the statement ranker on the editor-labelled real days and report how well it picks.

    python bench/train_ranker.py            # leave-one-period-out on real-train, then fit on all of it,
                                            # check on real-dev, and write digest/data/ranker.json
    python bench/train_ranker.py --check    # the same report, without writing the weights

Candidates are the kept statements of each day, cut by the same code as the digest (Markdown transcript →
synthesised SRT → publisher-transcript parser → ``digest.claims.extract``). A candidate is a positive when
it matches a top pick of the editor's by ``real_days.matched`` (the same passage as a quote, or close to the
headline), a soft positive (weight ``RUNNER_UP_WEIGHT``) when it matches a runner-up, and a negative
otherwise. The model is an L2-regularised logistic regression over the features and the statement's MiniLM
vector, fitted by Newton's method: deterministic, so no seed is needed. The L2 strength was chosen by the
mean reciprocal rank of the editor's picks under leave-one-period-out on real-train (see the data card).
Never trains on real-dev.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_days  # noqa: E402
from real_days import ROOT, Day  # noqa: E402

from digest import publisher_transcripts  # noqa: E402
from digest.claims import extract  # noqa: E402
from digest.demo.markdown_cues import to_srt  # noqa: E402
from digest.embed import SentenceTransformerEmbedder, embed_cached  # noqa: E402
from digest.features import NAMES, EpisodeStats, document_frequencies, features  # noqa: E402
from digest.models import Claim  # noqa: E402
from digest.rank import ClaimInfo, DayContext, RankSettings, rank  # noqa: E402
from digest.ranker import Ranker  # noqa: E402
from digest.store import Store  # noqa: E402

RUNNER_UP_WEIGHT = 0.5
L2 = 10_000.0
QUALITY_L2 = 10.0  # the reader head's, chosen under leave-one-period-out (see the data card)
QUALITY_WEIGHT = 0.3  # how much the reader head counts against the editor head, likewise
# Left out of the reader head: agreement is already a boost on top of the score (rank.support_boost), so
# among the picks, those that other shows agree with needed less else to get in, and a head fitted on the
# picks alone learns agreement as a sign of filler (Berkson's paradox). It would undo the boost.
NOT_FOR_READERS = {"agreeing_shows"}
WEIGHTS = ROOT / "digest" / "data" / "ranker.json"
SHOWS: dict[str, int] = {}  # show key → feed id
# The hand-tuned score the learned one is compared with: substance and cross-show support up, chatter down.
HAND = {
    "numbers": 1.0,
    "names": 1.0,
    "rare_terms": 1.0,
    "centrality_shows": 1.0,
    "agreeing_shows": 1.0,
    "words": 0.5,
    "first_person": -0.5,
    "hedges": -0.5,
    "opens_with_connective": -0.5,
    "heard": -0.5,
}


@dataclass
class DayData:
    day: Day
    claims: list[Claim]
    vectors: np.ndarray
    info: dict[int, ClaimInfo]
    context: DayContext
    x: np.ndarray
    y: np.ndarray  # 1 editor's pick, RUNNER_UP_WEIGHT runner-up, 0 otherwise
    top: np.ndarray  # unit vectors of the editor's top headlines


def prepare(days: list[Day], store: Store, embedder: SentenceTransformerEmbedder) -> list[DayData]:
    """Statements, vectors, features and labels of each day; earlier days of a period are its archive."""
    out: list[DayData] = []
    history: dict[str, tuple[list[str], list[np.ndarray]]] = {}
    next_id = 1
    for day in days:
        texts, vecs = history.setdefault(day.period, ([], []))
        claims: list[Claim] = []
        stats: dict[int, EpisodeStats] = {}
        info: dict[int, ClaimInfo] = {}
        for ep in day.episodes:
            episode_id = next_id * 1000
            segments = publisher_transcripts.parse(to_srt(ep.path.read_text(encoding="utf-8")), "application/x-subrip")
            every = extract(episode_id, SHOWS.setdefault(ep.key, len(SHOWS) + 1), segments)
            stats[episode_id] = EpisodeStats.of(every)
            info[episode_id] = ClaimInfo(ep.show, ep.title, None)
            for c in every:
                if c.dropped is None:
                    c.id = next_id
                    next_id += 1
                    claims.append(c)
        vectors = embed_cached(store, embedder, [c.text for c in claims])
        heard = np.stack(vecs) if vecs else None
        df = document_frequencies(texts + [c.text for c in claims])
        context = DayContext(stats, df, None, heard)
        x = features(claims, vectors, stats, df, heard)
        top = embedder.embed([i.headline for i in day.top])
        runners = embedder.embed([i.headline for i in day.runners_up])
        y = np.array(
            [
                1.0
                if real_days.matched([c.text], v, day.top, top)
                else RUNNER_UP_WEIGHT
                if real_days.matched([c.text], v, day.runners_up, runners)
                else 0.0
                for c, v in zip(claims, vectors)
            ],
            dtype=np.float32,
        )
        out.append(DayData(day, claims, vectors, info, context, x, y, top))
        texts.extend(c.text for c in claims)
        vecs.extend(vectors)
    return out


def fit(
    data: list[DayData], names: list[str], l2: float = L2, embedding: bool = True, judged: dict[str, dict] | None = None
) -> Ranker:
    """The editor head: positives up-weighted to balance the classes; with ``judged``, the reader head too."""
    columns = [NAMES.index(n) for n in names]
    x = np.concatenate([np.hstack([d.x[:, columns], d.vectors]) if embedding else d.x[:, columns] for d in data])
    y = np.concatenate([d.y for d in data]).astype(np.float64)
    weight = np.where(y > 0, y * (len(y) - (y > 0).sum()) / max((y > 0).sum(), 1), 1.0)
    editor = _logistic(names, x, (y > 0).astype(np.float64), weight, l2, embedding)
    if judged is not None:
        readable = [n for n in names if n not in NOT_FOR_READERS]
        editor.quality, editor.quality_weight = fit_quality(data, readable, judged), QUALITY_WEIGHT
    return editor


def fit_quality(data: list[DayData], names: list[str], judged: dict[str, dict]) -> Ranker:
    """The reader head: the judged picks among ``data``'s statements, insight (1) against filler (0). Inputs
    are standardised over all statements, as the editor head's are."""
    columns = [NAMES.index(n) for n in names]
    every = np.concatenate([d.x[:, columns] for d in data])
    rows = judged_rows(data, judged)
    x = np.array([d.x[i, columns] for d, i, _ in rows])
    target = np.array([v not in real_days.FILLER for _, _, v in rows], dtype=np.float64)
    return _logistic(names, x, target, np.ones(len(rows)), QUALITY_L2, embedding=False, population=every)


def judged_rows(data: list[DayData], judged: dict[str, dict]) -> list[tuple[DayData, int, str]]:
    """The statements of ``data`` that the judged list has a verdict for: day, index and verdict."""
    return [(d, i, judged[c.text]["verdict"]) for d in data for i, c in enumerate(d.claims) if c.text in judged]


def _logistic(
    names: list[str],
    x: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray,
    l2: float,
    embedding: bool,
    population: np.ndarray | None = None,
) -> Ranker:
    """L2-regularised logistic regression by Newton's method; the bias is not penalised. Inputs are
    standardised over ``population`` (by default ``x``), and its range of each named feature is where the
    ranker holds them."""
    x = x.astype(np.float64)
    population = x if population is None else population.astype(np.float64)
    mean, scale = population.mean(axis=0), population.std(axis=0) + 1e-6
    named = population[:, : len(names)]
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0
    for _ in range(50):
        p = 1 / (1 + np.exp(-(z @ w)))
        grad = z.T @ (weight * (p - target)) + penalty * w
        hess = (z * (weight * p * (1 - p))[:, None]).T @ z + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return Ranker(
        names,
        mean.astype(np.float32),
        scale.astype(np.float32),
        w[:-1].astype(np.float32),
        float(w[-1]),
        low=named.min(axis=0).astype(np.float32),
        high=named.max(axis=0).astype(np.float32),
        embedding=embedding,
    )


def hand_tuned(data: list[DayData]) -> Ranker:
    names = list(HAND)
    columns = [NAMES.index(n) for n in names]
    x = np.concatenate([d.x[:, columns] for d in data])
    return Ranker(names, x.mean(axis=0), x.std(axis=0) + 1e-6, np.array(list(HAND.values()), dtype=np.float32), 0.0)


class RandomScores(Ranker):
    """The floor to compare with: the digest's selection and quoting over scores drawn at random."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__([], np.zeros(0), np.ones(0), np.zeros(0), 0.0)
        self.rng = np.random.default_rng(seed)

    def scores(self, x: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        return self.rng.normal(size=len(x)).astype(np.float32)


@dataclass
class DayScore:
    date: str
    score: real_days.Score  # by each pick's statement and quotes
    alone: real_days.Score  # by each pick's statement alone
    picks: list[str]
    shows: list[int]
    quotes: list[list[str]]  # "Show: text" of each pick's quotes


def evaluate(data: list[DayData], ranker: Ranker, settings: RankSettings) -> list[DayScore]:
    """Run the days of each period in order with ``ranker``; what was picked is sent, so later days see it."""
    results = []
    sent: dict[str, list[np.ndarray]] = {}
    earlier_top: dict[str, dict[str, real_days.GoldItem]] = {}
    for d in data:
        sent_vecs = sent.setdefault(d.day.period, [])
        d.context.sent = np.stack(sent_vecs) if sent_vecs else None
        insights, _ = rank(d.claims, d.vectors, d.info, settings, d.context, ranker)
        by_id = {c.id: i for i, c in enumerate(d.claims)}
        texts = [[q.text for q in ins.quotes] for ins in insights]
        vecs = np.array([d.vectors[by_id[ins.claim_ids[0]]] for ins in insights])
        old = earlier_top.setdefault(d.day.period, {})
        score, alone = real_days.scores(d.day, texts, vecs, d.top, old)
        quotes = [[f"{q.show}: {q.text}" for q in ins.quotes] for ins in insights]
        results.append(
            DayScore(d.day.date, score, alone, [i.statement for i in insights], [i.shows for i in insights], quotes)
        )
        for ins in insights:
            sent_vecs.extend(d.vectors[by_id[cid]] for cid in ins.claim_ids)
        old.update((item.headline, item) for item in d.day.top)
    return results


def report(name: str, scores: list[DayScore], judged: dict[str, dict] | None = None) -> float:
    """One line per model: matched per day, and with ``judged`` the filler picks by the judged list."""
    mean = float(np.mean([s.score.matched for s in scores])) if scores else 0.0
    alone = float(np.mean([s.alone.matched for s in scores])) if scores else 0.0
    days = " ".join(f"{s.date}:{s.score.matched}(+{s.score.runner_up}){'!' * s.score.stale}" for s in scores)
    print(f"  {name:<34} {mean:.2f}/5 per day ({alone:.2f} by statements alone)   {days}")
    if judged is not None:
        verdicts = [[judged.get(p, {}).get("verdict") for p in s.picks] for s in scores]
        filler = [sum(v in real_days.FILLER for v in day) for day in verdicts]
        unjudged = sum(v is None for day in verdicts for v in day)
        claims = [judged.get(p, {}) for s in scores for p, n in zip(s.picks, s.shows) if n > 1]
        right = sum(bool(j.get("quotes_agree")) for j in claims)
        print(
            f"  {'':<34} filler {sum(filler)} of {sum(map(len, verdicts))} picks ({unjudged} unjudged): {filler};"
            f" said on N shows right {right}/{len(claims)}"
        )
    return mean


def unjudged(scores: list[DayScore], judged: dict[str, dict]) -> list[dict]:
    """Entries for the judged list: the picks in ``scores`` that it does not have yet."""
    return [
        real_days.to_judge(s.date, pick, quotes, shows)
        for s in scores
        for pick, quotes, shows in zip(s.picks, s.quotes, s.shows)
        if pick not in judged
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report only; do not write the weights")
    parser.add_argument("--show", action="store_true", help="print the real-dev picks")
    parser.add_argument(
        "--unjudged",
        type=Path,
        help="write the leave-one-period-out picks (of both rankers) not yet in judged_picks.json here, to judge",
    )
    args = parser.parse_args()
    cache = ROOT / ".bench" / "real-days.sqlite"
    store = Store(cache)
    embedder = SentenceTransformerEmbedder()
    train = prepare(real_days.load("real-train"), store, embedder)
    dev = prepare(real_days.load("real-dev"), store, embedder)
    settings = RankSettings()
    positives = sum(int((d.y == 1).sum()) for d in train)
    print(f"real-train: {len(train)} days, {sum(len(d.claims) for d in train)} statements, {positives} positives")
    names = list(NAMES)
    print("leave-one-period-out on real-train (matched editor's picks; +runners-up; ! stale repeats):")
    periods = sorted({d.day.period for d in train})
    judged = real_days.judged_picks()
    lopo, editor_only, hand = [], [], []
    for p in periods:
        held = [d for d in train if d.day.period == p]
        rest = [d for d in train if d.day.period != p]
        learned = fit(rest, names, judged=judged)
        lopo += evaluate(held, learned, settings)
        editor_only += evaluate(held, replace(learned, quality=None), settings)
        hand += evaluate(held, hand_tuned(rest), settings)
    report("learned (LOPO)", lopo, judged)
    report("editor head alone (LOPO)", editor_only, judged)
    report("hand-tuned (LOPO)", hand)
    report("random scores", evaluate(train, RandomScores(), settings))
    model = fit(train, names, judged=judged)
    print("real-dev (trained on all of real-train):")
    dev_scores = evaluate(dev, model, settings)
    report("learned", dev_scores, judged)
    report("editor head alone", evaluate(dev, replace(model, quality=None), settings), judged)
    report("hand-tuned", evaluate(dev, hand_tuned(train), settings))
    order = np.argsort(-np.abs(model.weights))
    order = order[order < len(model.features)]
    print("feature weights (standardised):", ", ".join(f"{model.features[i]} {model.weights[i]:+.2f}" for i in order))
    if model.quality:
        q = model.quality
        verdicts = [v for _, _, v in judged_rows(train, judged)]
        filler = sum(v in real_days.FILLER for v in verdicts)
        print(f"reader head: trained on {len(verdicts)} judged picks, {filler} of them filler, intro or ad")
        print("reader head:", ", ".join(f"{q.features[i]} {q.weights[i]:+.2f}" for i in np.argsort(-np.abs(q.weights))))
    editors = [v for d, i, v in judged_rows(train + dev, judged) if d.y[i] == 1]
    print(
        f"judged statements that match an editor's top pick: {len(editors)},"
        f" {sum(v in real_days.FILLER for v in editors)} of them filler when shown alone"
    )
    if args.show:
        for s in dev_scores:
            print(s.date)
            for t, n in zip(s.picks, s.shows):
                print(f"   [{n}] {t[:200]}")
    if args.unjudged:
        todo = unjudged(lopo, judged) + unjudged(editor_only, judged)
        todo = list({t["statement"]: t for t in todo}.values())
        args.unjudged.write_text(json.dumps(todo, indent=1, ensure_ascii=False) + "\n")
    if not args.check:
        WEIGHTS.parent.mkdir(exist_ok=True)
        WEIGHTS.write_text(json.dumps(model.to_json(), indent=1) + "\n")
        print(f"wrote {WEIGHTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
