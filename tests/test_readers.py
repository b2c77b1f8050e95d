"""Each reader's own digest: ranking by shows, interests and clicks over a day's candidates (the bundled MiniLM
embeds real statements), stored preferences, and the links that change them."""

from __future__ import annotations

import functools
import itertools
import time
from dataclasses import replace

import numpy as np
import pytest

from digest.config import load
from digest.minilm import NumpyMiniLM
from digest.models import Insight
from digest.readers import Candidate, Click, Preferences, ReaderSettings, pick, reader_vector


def said(whos: list[str], whats: list[str]) -> list[str]:
    return [f"{who} {what}" for who, what in itertools.product(whos, whats)]


AI = said(
    ["OpenAI", "Anthropic", "Google DeepMind", "Meta's AI lab", "Mistral", "A startup building chatbots"],
    [
        "trained a larger language model that beats the previous one on coding benchmarks.",
        "says AI agents will replace much of the work of junior programmers within two years.",
        "argues that regulators should license the training of frontier AI models.",
        "cut the price of its large language model API by half to win developers.",
        "claims its neural network reasons better when given more compute at inference time.",
    ],
)
OTHER = said(
    ["Our guest", "The analyst", "The host", "A listener", "The researcher", "The economist"],
    [
        "says Postgres query plans go wrong when table statistics are stale after a bulk load.",
        "explains that Go's garbage collector pauses stay under a millisecond on large heaps.",
        "says heat pumps now outsell gas furnaces in most of the United States.",
        "argues the central bank will hold interest rates until inflation falls below three percent.",
        "says sodium batteries are cheaper than lithium ones for storing power on the grid.",
    ],
)
INFRA = [s for s in OTHER if "Postgres" in s or "Go's" in s]


@functools.cache
def _embedded() -> dict[str, np.ndarray]:
    """Every statement embedded once (the bundled MiniLM, NumPy port): a few seconds on two cores."""
    every = AI + OTHER
    return dict(zip(every, _minilm().embed(every)))


@functools.cache
def _minilm() -> NumpyMiniLM:
    return NumpyMiniLM()


def vectors_of(texts: tuple[str, ...]) -> np.ndarray:
    known = _embedded()
    fresh = [t for t in texts if t not in known]
    found = dict(zip(fresh, _minilm().embed(fresh))) if fresh else {}
    return np.stack([known[t] if t in known else found[t] for t in texts])


def day(texts: list[str], common: int = 5) -> tuple[list[Candidate], np.ndarray]:
    """Candidates in the given order (the first ``common`` are the common digest) with real vectors."""
    found = [
        Candidate(n, n <= common, [1 if t in AI else 2], Insight(n, t, t, 1, 1, 1.0, 0.5, 0.0))
        for n, t in enumerate(texts, 1)
    ]
    return found, vectors_of(tuple(texts))


def choose(candidates, vectors, prefs=None, clicks=(), sent=None, count=5, now=0.0):
    prefs = prefs or Preferences()
    settings = ReaderSettings()
    interest = reader_vector(prefs, list(clicks), settings, now)
    return pick(
        candidates,
        vectors,
        prefs,
        interest,
        sent,
        count=count,
        novelty_threshold=0.6,
        weight=settings.interest_weight,
    )


def interests(*phrases: str) -> Preferences:
    return Preferences(interests=list(phrases), vectors=vectors_of(phrases))


def texts(candidates, picks) -> list[str]:
    by = {c.position: c.insight.text for c in candidates}
    return [by[p.position] for p in picks]


def test_a_reader_without_preferences_gets_exactly_the_common_five_and_counts_take_them_in_order():
    candidates, vectors = day(AI[:4] + OTHER[:4] + AI[4:8])
    assert [p.position for p in choose(candidates, vectors)] == [1, 2, 3, 4, 5]
    assert [p.position for p in choose(candidates, vectors, count=3)] == [1, 2, 3]
    assert [p.position for p in choose(candidates, vectors, count=10)] == list(range(1, 11))
    assert choose(candidates, vectors)[0].why == "#1 of the common digest"


def test_readers_with_opposite_interests_share_at_most_two_picks():
    mixed = [t for pair in zip(AI[:8], OTHER[:8]) for t in pair]  # the day's order alternates topics
    candidates, vectors = day(mixed)
    ai_reader = choose(candidates, vectors, interests("artificial intelligence", "large language models"))
    infra_reader = choose(candidates, vectors, interests("Postgres performance", "Go programming"))
    ai_texts, infra_texts = texts(candidates, ai_reader), texts(candidates, infra_reader)
    assert sum(t in AI for t in ai_texts) >= 4, ai_texts
    assert sum(t in INFRA for t in infra_texts) >= 3, infra_texts  # the day has 4 on databases and Go
    assert len(set(ai_texts) & set(infra_texts)) <= 2
    assert "interests and feedback +" in ai_reader[0].why


def test_a_field_phrase_pulls_its_field_up_from_the_end_of_the_day_however_bunched_the_cosines():
    """A candidate's pull is how much nearer the reader's interests it is than the day's typical candidate, in the
    day's spread: a short phrase lifts its field from the bottom of the day's order, and squeezing every cosine
    together (as a phrase against conversational statements does) changes no pick."""
    field = [t for t in OTHER if "Postgres" in t][:3]  # the last three of the day's order
    candidates, vectors = day(AI[:6] + [t for t in OTHER if t not in INFRA][:6] + field)
    reader = interests("Postgres performance")
    got = choose(candidates, vectors, reader)
    assert set(field) <= set(texts(candidates, got)), texts(candidates, got)

    # the same statements sharing a direction that neither they nor the phrase have: each cosine to the phrase
    # becomes 0.3 of what it was, and any two statements' cosine lies within 0.09 of 0.91
    spanned = np.linalg.qr(np.concatenate([vectors, reader.vectors]).T.astype(np.float64))[0]
    shared = np.random.default_rng(0).standard_normal(vectors.shape[1])
    shared -= spanned @ (spanned.T @ shared)
    shared /= np.linalg.norm(shared)
    squeezed = (0.3 * vectors + np.sqrt(1 - 0.3**2) * shared).astype(np.float32)
    assert np.allclose(squeezed @ reader.vectors[0], 0.3 * (vectors @ reader.vectors[0]), atol=1e-5)
    assert [p.position for p in choose(candidates, squeezed, reader)] == [p.position for p in got]


def test_a_statement_that_lost_its_topic_is_read_with_the_episode_it_was_said_in():
    """Out of its conversation "159 people took the offer" is about nothing; with its show and episode title it is
    about a JavaScript show's news, and a reader of that field gets it from below the common picks."""
    from digest.models import Quote
    from digest.readers import contexts

    said = [(t, "Practical AI", "Practical AI: frontier models, agents and their benchmarks") for t in AI[:4]]
    said += [("Of the employees, 159 people took the offer.", "JS Party", "JS Party: Svelte 5 runes and a buyout")]
    energy = "The Energy Hour: heat pumps, grid batteries and interest rates"
    said += [(t, "The Energy Hour", energy) for t in OTHER if t not in INFRA][:3]
    candidates = [
        Candidate(n, n <= 3, [1], Insight(n, t, t, 1, 1, 1.0, 0.5, 0.0, quotes=[Quote(t, show, ep, 0.0, None)]))
        for n, (t, show, ep) in enumerate(said, 1)
    ]
    vectors = vectors_of(tuple(t for t, _, _ in said))
    reader = interests("JavaScript and web front-end frameworks")
    interest = reader_vector(reader, [], ReaderSettings(), 0.0)
    context = contexts(candidates, _minilm().embed, vectors.shape[1])
    assert context.shape == vectors.shape and np.allclose(np.linalg.norm(context, axis=1), 1, atol=1e-5)

    def picked(context):
        args = dict(count=3, novelty_threshold=0.6, weight=ReaderSettings().interest_weight, context=context)
        return [p.position for p in pick(candidates, vectors, reader, interest, None, **args)]

    assert 5 not in picked(None)  # alone, the statement is no nearer the field than the day's others
    assert 5 in picked(context)


def test_ten_days_of_less_like_this_on_ai_push_it_out_by_day_five():
    """Each day's order puts the AI statements first; the reader clicks "less like this" on every AI pick."""
    clicks: list[Click] = []
    sent: list[np.ndarray] = []
    ai_per_day = []
    for d in range(10):
        todays = [AI[(3 * d + k) % len(AI)] for k in range(6)] + [OTHER[(3 * d + k) % len(OTHER)] for k in range(8)]
        candidates, vectors = day(todays)
        now = d * 86400.0
        picks = choose(candidates, vectors, clicks=clicks, sent=np.stack(sent) if sent else None, now=now)
        got = texts(candidates, picks)
        ai_per_day.append(sum(t in AI for t in got))
        for p in picks:
            c = candidates[p.position - 1]
            sent.append(vectors[p.position - 1])
            if c.insight.text in AI:
                clicks.append(Click(f"d{d}", p.position, -1, c.insight.text, vectors[p.position - 1], now))
    assert ai_per_day[0] == 5  # without feedback the day's order rules
    assert max(ai_per_day[4:]) <= 1, ai_per_day


def test_a_readers_shows_filter_and_nothing_close_to_what_they_were_sent_comes_again():
    candidates, vectors = day(AI[:5] + OTHER[:5])
    only_other = choose(candidates, vectors, Preferences(feed_ids=[2]))
    assert texts(candidates, only_other) == OTHER[:5]
    again = [p.position for p in choose(candidates, vectors, sent=vectors[:2])]
    near = (vectors @ vectors[:2].T).max(axis=1)
    assert 1 not in again and 2 not in again and len(again) == 5
    assert all(near[p - 1] < 0.6 for p in again)
    assert any(near[n] >= 0.6 for n in range(2, 10) if n + 1 not in again)  # left out for repeating a sent one


def week(days: list[list[str]]) -> tuple[list[Candidate], np.ndarray]:
    """A week's candidates, day after day (dates 2026-11-16 on), each day's first two its common picks."""
    found, vectors = [], []
    for n, texts_ in enumerate(days):
        candidates, v = day(texts_, common=2)
        found += [replace(c, date=f"2026-11-{16 + n}") for c in candidates]
        vectors.append(v)
    return found, np.concatenate(vectors)


def test_a_weekly_reader_gets_the_weeks_best_each_story_once_and_nothing_sent_before():
    # Tuesday leads with Monday's story in other words (cosine 0.68), Friday with Thursday's (0.97)
    candidates, vectors = week(
        [[AI[0], OTHER[2]], [AI[5], OTHER[8]], [AI[12], OTHER[0]], [OTHER[4], OTHER[6]], [OTHER[9]]]
    )
    row = {(c.date, c.position): n for n, c in enumerate(candidates)}

    def weekly(prefs=None, sent=None):
        prefs = prefs or Preferences(frequency="weekly")
        interest = reader_vector(prefs, [], ReaderSettings(), 0.0)
        weight = ReaderSettings().interest_weight
        return pick(
            candidates, vectors, prefs, interest, sent, count=5, novelty_threshold=0.6, weight=weight, distinct=0.5
        )

    def days(picks) -> list[tuple[int, int]]:
        return [(int(p.date[-2:]), p.position) for p in picks]

    plain = weekly()  # each day's lead first, earliest first; a lead that repeats an earlier day's yields to it
    assert days(plain) == [(16, 1), (18, 1), (19, 1), (16, 2), (17, 2)]
    assert plain[0].why == "#1 of the common digest of 2026-11-16"
    picked = vectors[[row[p.date, p.position] for p in plain]]
    assert float((picked @ picked.T - 2 * np.eye(5)).max()) < 0.5  # distinct from each other

    infra = weekly(replace(interests("Postgres performance", "Go programming"), frequency="weekly"))
    # Wednesday's Postgres and Thursday's Go, neither among the plain picks, come in from across the week
    assert {(18, 2), (19, 2)} <= set(days(infra)[:3]) and {OTHER[0], OTHER[6]} <= set(INFRA)

    again = weekly(sent=picked[:2])  # nothing close to what the reader had before, Tuesday's lead included
    assert days(again) == [(19, 1), (16, 2), (17, 2), (18, 2), (19, 2)]


def test_feedback_fades_with_its_half_life():
    settings = ReaderSettings(feedback_half_life=14.0)
    v = np.ones(4, dtype=np.float32)
    click = Click("2026-11-20", 1, 1, "x", v, at=0.0)
    assert reader_vector(Preferences(), [], settings) is None
    fresh = reader_vector(Preferences(), [click], settings, now=0.0)
    old = reader_vector(Preferences(), [click], settings, now=14 * 86400.0)
    assert fresh is not None and old is not None
    assert float(old[0]) == pytest.approx(0.5 * float(fresh[0]))


def test_preferences_and_feedback_links_expire_need_csrf_and_stop_with_the_subscription(home, store):
    from digest import signing
    from digest.deliver import feedback_purpose, preferences_url
    from digest.models import Digest, SubscriberStatus
    from digest.web import App, Request

    config = load(home)
    app = App(config)
    store.add_subscriber("reader@example.com")
    fresh = preferences_url(config, "reader@example.com").split("/preferences/")[1]
    assert app.handle(Request("GET", f"/preferences/{fresh}", {})).status == 200
    no_csrf = app.handle(Request("POST", f"/preferences/{fresh}", {}, {"count": "3"}))  # a forged form post
    assert no_csrf.status == 403 and store.preferences(store.subscriber("reader@example.com").id) == Preferences()
    old = signing.sign(config, "preferences", "reader@example.com", int(time.time()) - 61 * 86400)
    expired = app.handle(Request("GET", f"/preferences/{old}", {}))
    assert expired.status == 400 and b"expired" in expired.body
    forged = fresh.split(".")[0] + "." + fresh.split(".")[1] + ".AAAA"
    assert app.handle(Request("GET", f"/preferences/{forged}", {})).status == 400
    store.save_digest(Digest("2026-11-20"), [])
    candidates, vectors = day(AI[:2])
    store.save_candidates("2026-11-20", candidates, vectors)
    token = signing.sign_expiring(config, feedback_purpose("less", "2026-11-20", 2), "reader@example.com")
    assert app.handle(Request("GET", f"/feedback/less/2026-11-20/2/{token}", {})).status == 200
    assert app.handle(Request("GET", f"/feedback/less/2026-11-20/1/{token}", {})).status == 400  # another insight
    store.set_subscriber_status("reader@example.com", SubscriberStatus.UNSUBSCRIBED)
    gone = app.handle(Request("POST", f"/feedback/less/2026-11-20/2/{token}", {}))
    assert gone.status == 400 and b"not subscribed" in gone.body
    assert not store.clicks(store.subscriber("reader@example.com").id)


def test_day_candidates_keep_the_common_picks_first_and_drop_runners_up_that_repeat_them():
    """The common picks come first and the wider pick (the ranker's, or the model's other grounded candidates)
    after them: a pool member that tells a common pick's story again is left out, whatever its wording."""
    from digest.models import Digest, Quote
    from digest.readers import day_candidates

    def insight(text: str, claim_id: int) -> Insight:
        return Insight(1, text, text, 1, 1, 1.0, 0.5, 0.0, quotes=[Quote(text, "Show", "Ep", 0.0, None, claim_id)])

    model_picks = [insight(AI[0], 1), insight(OTHER[2], 2)]
    pool = [insight(AI[0].replace("OpenAI", "OpenAI, our guest said,"), 3), insight(OTHER[0], 4)]
    vectors = vectors_of(tuple(i.text for i in model_picks + pool))
    digest = Digest("2026-11-20", model_picks)
    found, kept = day_candidates(digest, pool, vectors, {1: 10, 2: 20, 3: 30, 4: 40}, threshold=0.5)
    assert [(c.position, c.common, c.insight.text, c.feed_ids, c.date) for c in found] == [
        (1, True, AI[0], [10], digest.date),
        (2, True, OTHER[2], [20], digest.date),
        (3, False, OTHER[0], [40], digest.date),
    ]
    assert kept.shape == (3, 384) and np.allclose(kept[2], vectors[3])
