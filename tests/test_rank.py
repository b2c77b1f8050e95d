"""Ranking logic on hand-made vectors: support, novelty, diversity, quiet days, determinism."""

from __future__ import annotations

import numpy as np

from digest.models import Claim
from digest.rank import ClaimInfo, RankSettings, rank, salience


def unit(*values: float) -> np.ndarray:
    v = np.zeros(8, dtype=np.float32)
    v[: len(values)] = values
    return v / np.linalg.norm(v)


def claims_for(topics: list[tuple[int, int, np.ndarray, str]]):
    """(feed, episode, vector, text) rows to claims, unit vectors and info."""
    claims = [Claim(i + 1, ep, feed, text, 10.0 * i, 10.0 * i + 5) for i, (feed, ep, _, text) in enumerate(topics)]
    # Each claim words its point a little differently: a small, distinct off-topic component.
    jitter = np.eye(8, dtype=np.float32)[[4 + i % 4 for i in range(len(topics))]] * 0.55
    vectors = np.stack([unit(*(t[2] + j)) for t, j in zip(topics, jitter)])
    info = {ep: ClaimInfo(f"Show {feed}", f"Episode {ep}", f"https://cdn.test/{ep}.mp3") for feed, ep, _, _ in topics}
    return claims, vectors, info


A, B, C = unit(1, 0.1), unit(0, 1, 0.1), unit(0, 0, 1)
TEXT = "Heat pumps outsold gas furnaces in the United States for the third year in a row."


def test_several_shows_beat_one_show_repeating_itself():
    claims, vectors, info = claims_for(
        [
            (1, 11, A, TEXT),
            (2, 21, A * 0.99 + B * 0.01, TEXT),  # two shows
            (3, 31, B, TEXT),
            (3, 32, B, TEXT),
            (3, 33, B, TEXT),  # one show, three episodes
        ]
    )
    insights, runners_up = rank(claims, vectors, info, RankSettings())
    assert [i.shows for i in insights] == [2]
    assert runners_up[0].reason == "said on 1 show only"


def test_stale_cluster_is_not_news_and_a_quiet_day_is_not_padded():
    claims, vectors, info = claims_for([(1, 11, A, TEXT), (2, 21, A, TEXT)])
    insights, runners_up = rank(claims, vectors, info, RankSettings(), sent=np.stack([A]))
    assert insights == [] and runners_up[0].reason.startswith("already sent")


def test_a_distinct_insight_beats_a_near_repeat_with_a_higher_score():
    x, near_x, y = unit(1, 0, 0), unit(0.4, 0.9165, 0), unit(0, 0, 1)
    claims, vectors, info = claims_for(
        [
            (1, 11, x, TEXT),
            (2, 21, x, TEXT),
            (3, 31, x, TEXT),
            (1, 12, near_x, TEXT),
            (2, 22, near_x, TEXT),
            (2, 23, near_x, TEXT),  # 2 shows, 3 episodes
            (3, 32, y, TEXT),
            (4, 42, y, TEXT),  # 2 shows, 2 episodes: a lower score
        ]
    )
    insights, runners_up = rank(claims, vectors, info, RankSettings(top_k=2))
    assert insights[0].shows == 3 and insights[1].claim_ids == [7, 8]
    assert runners_up[0].reason == "ranked below the top 2" and runners_up[0].shows == 2


def test_quotes_come_from_distinct_shows_first_and_link_to_the_second():
    claims, vectors, info = claims_for([(1, 11, A, TEXT), (1, 12, A, TEXT), (2, 21, A, TEXT), (3, 31, A, TEXT)])
    [insight] = rank(
        claims,
        vectors,
        info,
        RankSettings(),
    )[0]
    assert [q.show for q in insight.quotes] == ["Show 1", "Show 2", "Show 3"]
    assert insight.quotes[1].url == "https://cdn.test/21.mp3#t=20"
    assert insight.shows == 3 and insight.episodes == 4


def test_same_inputs_give_the_same_digest():
    rng = np.random.default_rng(7)
    rows = [(int(f), 10 * int(f) + int(e), unit(*rng.normal(size=3)), TEXT) for f, e in rng.integers(1, 6, (60, 2))]
    first = rank(*claims_for(rows), RankSettings())
    second = rank(*claims_for(rows), RankSettings())
    assert first == second and first[0]


def test_salience_prefers_self_contained_claims():
    good = "Heat pumps outsold gas furnaces in the United States for the third year in a row."
    assert salience(good) > salience("And it was honestly my favourite thing, I think.")
    assert salience(good) > salience("Prices fell.")
