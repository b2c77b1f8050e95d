"""A real model's findings survive the select path: recorded key points of a real-dev day, replayed.

The map answers in ``tests/data/llm-replay`` are a capable model's key points on the real transcripts of the
real-dev days, every quote verbatim. A replaying server (a test double of the model endpoint: no model runs
offline) answers each map request with the recorded points of that show and episode whose quotes stand in the
part it was sent, and trivial answers for the later steps. At least 80% of the points with a verbatim quote
must reach selection, whatever the prompts and the checks become.
"""

from __future__ import annotations

import json
import re
import sys

import pytest
from conftest import ROOT
from scripted_llm import ScriptedOpenAIServer

from digest import pipeline
from digest.config import load
from digest.store import Store

sys.path.insert(0, str(ROOT / "bench"))
import eval_real  # noqa: E402
import real_days  # noqa: E402

pytestmark = pytest.mark.slow
RECORDED = json.loads((ROOT / "tests" / "data" / "llm-replay" / "real-dev-before-map.json").read_text())
DAY = "2024-04-22"


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower().replace("’", "'")))


def replay_map_by_show_and_episode(request: dict) -> str:
    """The recorded key points of this request's show and episode whose first quote opens in this part."""
    user = request["messages"][1]["content"]
    show, episode = re.search(r"^Show: (.+)$", user, re.M)[1], re.search(r"^Episode: (.+)$", user, re.M)[1]
    part = _words(user.split("(This part:)")[-1])
    points = [
        p
        for r in RECORDED
        if (r["show"], r["episode"]) == (show, episode)
        for p in r["key_points"]
        if p["quotes"] and " ".join(_words(p["quotes"][0]["text"]).split()[:6]) in part
    ]
    return json.dumps({"key_points": points})


@pytest.fixture
def replay():
    server = ScriptedOpenAIServer(model="replayed-hand", context=32768)
    server.scripts.update(
        map=replay_map_by_show_and_episode,
        agree=lambda request: '{"agree": []}',
        write=lambda request: '{"headline": "", "quotes": []}',
        restate=lambda request: '{"claim": ""}',
    )
    yield server
    server.close()


def test_recorded_key_points_of_a_real_day_reach_selection(home, replay, tmp_path):
    day = next(d for d in real_days.load("real-dev") if d.date == DAY)
    (tmp_path / "media").mkdir()
    (tmp_path / "feeds").mkdir()
    config = load(
        home,
        overrides={
            "llm.mode": "select",
            "llm.base_url": replay.url,
            "llm.model": "replayed-hand",
            "llm.context_tokens": 32768,
        },
    )
    store = Store(config.db_path)
    for path in eval_real.write_feeds([day], tmp_path / "media", tmp_path / "feeds"):
        store.add_feed(path.as_uri())
    digest = pipeline.run(config, store, date=DAY, quiet=True, dry_run=True).digest
    assert digest.method == "llm", digest.method_note
    titles = {(ep.show, ep.title) for ep in day.episodes}
    recorded = [p for r in RECORDED if (r["show"], r["episode"]) in titles for p in r["key_points"]]
    ungrounded = [k for k in digest.key_points if k.fate.startswith("ungrounded")]
    shown = [k for k in digest.key_points if "shown to selection" in k.fate]
    assert len(recorded) >= 30
    assert len(shown) >= 0.8 * (len(recorded) - len(ungrounded)), [(k.claim, k.fate) for k in digest.key_points]
    [select] = [r for r in replay.requests if r["messages"][0]["content"].startswith("Task: select")]
    assert len(re.findall(r"^\[\d+\] shows:", select["messages"][1]["content"], re.M)) >= 0.8 * len(shown)
    assert digest.insights and all(i.quotes for i in digest.insights)
