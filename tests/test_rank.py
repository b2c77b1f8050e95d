"""Ranking with the bundled ranker and real MiniLM vectors: agreement-based support, single-show picks,
staleness, repeats, syndicated copies, the quality bar, explanations and determinism."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import pytest

from digest.features import NAMES, EpisodeStats, document_frequencies, features
from digest.minilm import NumpyMiniLM
from digest.models import Claim
from digest.rank import TOPIC, ClaimInfo, DayContext, RankSettings, rank
from digest.ranker import Ranker, bundled

REDIS = "Redis moved to a source-available licence last month, and developers are leaving for the Valkey fork."
REDIS_AGREES = "Since Redis dropped its open source licence, many developers have switched to the Valkey fork instead."
REDIS_TOPIC = "I have used Redis as a cache in every web application I built over the last ten years."
SQLITE = "SQLite now runs the production database for Basecamp's new product, on one server with 32 cores."
XZ = "The XZ backdoor was planted by a maintainer who spent two years earning the trust of the project."
SPONSOR = "FireHydrant gives engineering teams end-to-end incident management, alerting and on-call in one place."


@pytest.fixture(scope="module")
def minilm() -> NumpyMiniLM:
    return NumpyMiniLM()


def day(minilm: NumpyMiniLM, rows: list[tuple[int, str]], **context):
    """(show, text) rows as one episode per show: claims, vectors, info and a day context."""
    claims = [Claim(n + 1, 100 + show, show, text, 30.0 * n, 30.0 * n + 20) for n, (show, text) in enumerate(rows)]
    vectors = minilm.embed([c.text for c in claims])
    info = {100 + s: ClaimInfo(f"Show {s}", f"Episode {s}", f"https://cdn.example.com/{s}.mp3") for s, _ in rows}
    by_episode: dict[int, list[Claim]] = {}
    for c in claims:
        by_episode.setdefault(c.episode_id, []).append(c)
    stats = {e: EpisodeStats.of(cs) for e, cs in by_episode.items()}
    ctx = DayContext(stats, document_frequencies([c.text for c in claims]), **context)
    return claims, vectors, info, ctx


def test_said_on_n_shows_counts_only_shows_that_agree(minilm):
    claims, vectors, info, ctx = day(minilm, [(1, REDIS), (2, REDIS_AGREES), (3, REDIS_TOPIC), (3, SQLITE)])
    insights, _ = rank(claims, vectors, info, RankSettings(top_k=5), ctx)
    redis = next(i for i in insights if i.statement in (REDIS, REDIS_AGREES))
    assert redis.shows == 2 and redis.show_names == ["Show 1", "Show 2"]
    assert {q.text for q in redis.quotes} == {REDIS, REDIS_AGREES}
    assert redis.quotes[0].url is not None and redis.quotes[0].url.startswith("https://cdn.example.com/")
    # Quoting fewer does not count fewer.
    insights, _ = rank(claims, vectors, info, RankSettings(top_k=5, max_quotes=1), ctx)
    redis = next(i for i in insights if i.statement in (REDIS, REDIS_AGREES))
    assert redis.shows == 2 and len(redis.quotes) == 1


def test_a_strong_single_show_point_is_picked_unless_min_shows_asks_for_more(minilm):
    rows = [(1, SQLITE), (2, XZ)]
    insights, _ = rank(*day(minilm, rows)[:3], RankSettings(), day(minilm, rows)[3])
    assert {i.statement for i in insights} == {SQLITE, XZ} and all(i.shows == 1 for i in insights)
    insights, runners_up = rank(*day(minilm, rows)[:3], RankSettings(min_shows=2), day(minilm, rows)[3])
    assert insights == [] and all("fewer than rank.min_shows" in r.reason for r in runners_up)


def test_what_was_sent_before_is_stale(minilm):
    sent = minilm.embed([REDIS])
    claims, vectors, info, ctx = day(minilm, [(1, REDIS_AGREES), (2, XZ)], sent=sent)
    insights, runners_up = rank(claims, vectors, info, RankSettings(), ctx)
    assert [i.statement for i in insights] == [XZ]
    assert any(r.statement == REDIS_AGREES and r.reason.startswith("already sent") for r in runners_up)


def test_one_pick_per_point_and_a_quiet_day_is_not_padded(minilm):
    claims, vectors, info, ctx = day(minilm, [(1, REDIS), (1, REDIS_AGREES)])
    insights, runners_up = rank(claims, vectors, info, RankSettings(top_k=5), ctx)
    assert len(insights) == 1 and runners_up[0].reason.startswith("repeats #1")


@dataclass
class FixedScoresRanker(Ranker):
    """Test double: the bundled ranker with the log-odds of each statement set by the test."""

    fixed: tuple[float, ...] = ()

    def scores(self, x: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        return np.array(self.fixed, dtype=float)


def test_a_much_stronger_pick_on_a_related_point_beats_a_weak_one_on_another(minilm):
    # Both are near certain as probabilities (0.998 and 0.97), so only log-odds tell them apart; the
    # second pick is about Redis too, but not the same point (cosine 0.36, below rank.cluster_threshold).
    claims, vectors, info, ctx = day(minilm, [(1, REDIS), (2, REDIS_TOPIC), (3, XZ)])
    assert 0.3 < float(vectors[0] @ vectors[1]) < 0.5 and float(vectors[0] @ vectors[2]) < 0.3
    model = bundled()
    scorer = FixedScoresRanker(**{f.name: getattr(model, f.name) for f in fields(model)}, fixed=(9.0, 6.0, 3.5))
    insights, runners_up = rank(claims, vectors, info, RankSettings(top_k=2), ctx, scorer)
    assert [i.statement for i in insights] == [REDIS, REDIS_TOPIC]
    assert runners_up[0].statement == XZ and runners_up[0].reason == "ranked below the top 2"


def test_the_same_words_on_two_shows_are_a_syndicated_read(minilm):
    claims, vectors, info, ctx = day(minilm, [(1, SPONSOR), (2, SPONSOR), (3, XZ)])
    insights, runners_up = rank(claims, vectors, info, RankSettings(), ctx)
    assert [i.statement for i in insights] == [XZ]
    assert [r.reason for r in runners_up] == ["the same words on several shows: a syndicated ad or promo"] * 2


def test_the_quality_bar_leaves_a_day_empty_rather_than_pad_it(minilm):
    claims, vectors, info, ctx = day(minilm, [(1, SQLITE), (2, XZ)])
    insights, runners_up = rank(claims, vectors, info, RankSettings(min_score=0.999), ctx)
    assert insights == [] and all(r.reason.startswith("below the quality bar") for r in runners_up)


def test_each_pick_says_which_features_decided_it_and_ties_are_not_alphabetical(minilm):
    claims, vectors, info, ctx = day(minilm, [(1, SQLITE), (2, XZ), (3, REDIS)])
    insights, _ = rank(claims, vectors, info, RankSettings(), ctx)
    names = set(bundled().features) | {"content"}
    assert insights and all(i.why and set(i.why) <= names for i in insights)
    scores = [i.score for i in insights]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == len(scores)


def test_same_inputs_give_the_same_digest(minilm):
    rows = [(1, SQLITE), (2, XZ), (3, REDIS), (4, REDIS_AGREES), (4, REDIS_TOPIC)]
    first = rank(*day(minilm, rows)[:3], RankSettings(), day(minilm, rows)[3])
    second = rank(*day(minilm, rows)[:3], RankSettings(), day(minilm, rows)[3])
    assert first == second and first[0]


def test_a_statement_its_speaker_does_not_vouch_for_scores_below_the_same_point_asserted(minilm):
    asserted = "Laravel raised 57 million dollars from Accel, the largest round an open source PHP company has had."
    disclaimed = [
        "I'm not sure, but Laravel raised 57 million dollars from Accel, the largest round a PHP company has had.",
        "If the press is to be believed, Laravel raised 57 million dollars from Accel, the largest PHP round yet.",
        "Correct me if I'm wrong, but Laravel raised 57 million dollars from Accel, the largest PHP round yet.",
    ]
    claims, vectors, _, ctx = day(minilm, [(1, asserted), *((n + 2, t) for n, t in enumerate(disclaimed))])
    x = features(claims, vectors, ctx.stats, ctx.df)
    assert x[:, NAMES.index("disclaims")].tolist() == [0.0, 1.0, 1.0, 1.0]
    model = bundled()
    assert model.weights[model.features.index("disclaims")] < 0
    flipped = x.copy()
    flipped[1:, NAMES.index("disclaims")] = 0.0
    assert np.all(model.scores(x, vectors)[1:] < model.scores(flipped, vectors)[1:])


def test_the_reader_head_lowers_a_statement_that_leans_on_what_came_before(minilm):
    # Judged picks that read as filler most often point outside themselves ("they", "it") or hedge.
    claims, vectors, _, ctx = day(minilm, [(1, SQLITE), (2, XZ), (3, REDIS)])
    x = features(claims, vectors, ctx.stats, ctx.df)
    model = bundled()
    assert model.quality is not None and model.quality_weight > 0
    leaning = x.copy()
    leaning[:, NAMES.index("references")] += 2
    leaning[:, NAMES.index("hedges")] += 2
    assert np.all(model.quality.scores(leaning, vectors) < model.quality.scores(x, vectors))
    assert np.all(model.scores(leaning, vectors) < model.scores(x, vectors))
    # The score is the editor head's log-odds plus the reader head's, weighted.
    editor_only = replace(model, quality=None)
    assert np.allclose(
        model.scores(x, vectors),
        editor_only.scores(x, vectors) + model.quality_weight * model.quality.scores(x, vectors),
    )


def test_an_input_beyond_anything_seen_in_training_is_held_to_the_trained_range(minilm):
    # One statement per episode: each spends its whole episode on its topic, far beyond any real one.
    claims, vectors, _, ctx = day(minilm, [(1, SQLITE), (2, XZ)])
    x = features(claims, vectors, ctx.stats, ctx.df)
    model = bundled()
    dwell = NAMES.index("dwell")
    top = model.high[model.features.index("dwell")]
    assert np.all(x[:, dwell] > top)
    held = x.copy()
    held[:, dwell] = top
    assert np.allclose(model.scores(x, vectors), model.scores(held, vectors))
    assert all(abs(v) < 5 for v in model.explain(x[0], vectors[0]).values())


def test_the_bundled_ranker_reads_its_own_features():
    model = bundled()
    assert model.embedding and len(model.weights) == len(model.features) + 384
    assert np.all(model.scale > 0)


ELEVEN_POINTS_ONE_FIELD = [
    (1, "Nvidia shipped two million H100 accelerators last year, and most of them went to four cloud providers."),
    (1, "Training a frontier model now takes about fifty thousand GPUs running for three months in one data center."),
    (1, "Microsoft signed a twenty year deal to restart the Three Mile Island reactor to power its AI data centers."),
    (1, "Google's TPU v5 chips cost roughly half as much per training run as renting Nvidia hardware on AWS."),
    (
        2,
        "Data centers already use about four percent of all electricity in the "
        "United States, double the share of 2018.",
    ),
    (
        2,
        "Inference, not training, is now the larger share of AI compute "
        "spending at OpenAI, according to its finance chief.",
    ),
    (
        2,
        "TSMC says its advanced packaging capacity, not wafer supply, is the "
        "real bottleneck for AI chips through 2026.",
    ),
    (2, "Meta plans to spend forty billion dollars on capital expenditure this year, most of it on GPU clusters."),
    (
        3,
        "Liquid cooling is becoming mandatory because a single rack of the "
        "newest GPUs draws over one hundred kilowatts.",
    ),
    (
        3,
        "Startups now rent GPUs by the minute from marketplaces where prices "
        "for an H100 fell below two dollars an hour.",
    ),
    (
        3,
        "The European Union counts any model trained with more than ten to the "
        "twenty five operations as a systemic risk.",
    ),
]


def test_a_day_of_eleven_distinct_points_in_one_field_gives_five_distinct_picks(minilm):
    claims, vectors, info, ctx = day(minilm, ELEVEN_POINTS_ONE_FIELD)
    insights, _ = rank(claims, vectors, info, RankSettings(), ctx)
    assert len(insights) == 5 and len({i.statement for i in insights}) == 5
    assert {i.show_names[0] for i in insights} == {"Show 1", "Show 2", "Show 3"}


SQLITE_MORE = "In Basecamp's benchmark that one SQLite server handled ten thousand concurrent chat users at once."
SQLITE_FAR = "SQLite also keeps the background job queue for that Basecamp product, so no Redis server is needed."
UNRELATED = [
    "My daughter started learning the violin this autumn and practises every single evening after school.",
    "The hiking trail above the lake was closed for most of the summer after a rock slide blocked the path.",
    "We baked sourdough bread every weekend during the winter, and the starter is still alive two years later.",
    "The football club sold its stadium naming rights to an airline for the next fifteen seasons of matches.",
    "Tomato plants need about eight hours of direct sunlight a day to produce a good crop before the frost.",
    "The city repaved the old bridge over the river and added a wide lane for bicycles on both of its sides.",
    "Our cat learned to open the kitchen cupboard where the treats are kept, so we had to fit a child lock.",
    "The museum reopened its dinosaur hall with a full skeleton of a long-necked sauropod from Argentina.",
    "A new bakery on the corner sells croissants that sell out by eight in the morning on most weekdays.",
]


SQLITE_AD = "Turso gives every developer a hosted SQLite database at the edge, with a free tier to start today."


def test_a_pick_is_quoted_with_the_best_statements_of_its_own_passage(minilm):
    rows = [(1, SQLITE), (1, SQLITE_MORE), (1, SQLITE_AD), *((1, t) for t in UNRELATED), (1, SQLITE_FAR)]
    claims, vectors, info, ctx = day(minilm, [*rows, (2, XZ), (2, SQLITE_AD)])
    assert float(vectors[2] @ vectors[0]) >= TOPIC  # the ad is on topic, but read on two shows
    insights, _ = rank(claims, vectors, info, RankSettings(), ctx)
    pick = next(i for i in insights if i.statement in (SQLITE, SQLITE_MORE))
    texts = [q.text for q in pick.quotes]
    # Not off topic, not ten statements away, not a syndicated read.
    assert texts[0] == pick.statement and set(texts) == {SQLITE, SQLITE_MORE}
    assert pick.shows == 1 and pick.show_names == ["Show 1"] and len({q.start for q in pick.quotes}) == 2
    insights, _ = rank(claims, vectors, info, RankSettings(max_quotes=1), ctx)
    assert all(len(i.quotes) == 1 for i in insights)
    # A passage statement already sent is not quoted again.
    ctx.sent = minilm.embed([SQLITE_MORE])
    insights, _ = rank(claims, vectors, info, RankSettings(), ctx)
    assert insights and all(q.text != SQLITE_MORE for i in insights for q in i.quotes)
