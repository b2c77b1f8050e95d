"""Select mode against what earlier digests sent: a repeat is dropped, a story close to one goes to the model
with what was sent, so a new development of it can still be picked (the editor's picks on real-dev day three
are such developments: the case against Kubernetes, the WordPress fight's open-source norms)."""

from __future__ import annotations

from collections import Counter

import numpy as np

from digest.llm.select import Day, KeyPoint, _Candidate, _entry, _judge_novelty
from digest.models import Quote
from digest.rank import DayContext, RankSettings


def unit(*v: float) -> np.ndarray:
    a = np.array(v, dtype=np.float32)
    return a / np.linalg.norm(a)


def candidate(n: int, vector: np.ndarray) -> _Candidate:
    quote = Quote("Sodium cells now cost less than lithium ones.", "The Grid Report", "Grid 41", 20.0, None, n)
    return _Candidate(n, [KeyPoint("claim", 1, 1, [quote])], vector)


def test_a_repeat_of_what_was_sent_is_dropped_and_a_close_story_goes_to_selection_with_it():
    sent = ["Sodium-ion cells now undercut lithium for grid storage.", "Heat pumps outsold gas furnaces."]
    context = DayContext({}, (Counter(), 0), np.stack([unit(1, 0, 0), unit(0, 1, 0)]), None)
    day = Day([], {}, {}, [], np.zeros((0, 3)), {}, context, RankSettings(novelty_threshold=0.6), {}, sent)
    repeat, close, new = candidate(1, unit(1, 0.1, 0)), candidate(2, unit(0, 0.7, 0.7)), candidate(3, unit(0, 0, 1))
    _judge_novelty([repeat, close, new], day)
    assert repeat.rejected.startswith("already sent in an earlier digest (similarity ")
    assert not close.rejected and close.sent_before == sent[1] and _entry(close)["sent_before"] == sent[1]
    assert not new.rejected and new.sent_before == "" and new.novelty == 1.0
