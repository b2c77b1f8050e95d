"""The Quickstart's demo: a real day of published transcripts plus one spoken show, offline."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from digest.cli import cli
from digest.config import load
from digest.models import Status
from digest.store import Store

pytestmark = pytest.mark.slow


def test_the_demo_runs_a_real_day_and_a_spoken_show_offline(home):
    runner = CliRunner()
    out = runner.invoke(cli, ["run", "--demo", "--json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["failed"] == [] and len(report["transcribed"]) == 6
    digest = report["digest"]
    assert digest["episodes_scanned"] == 6 and len(digest["insights"]) == 5
    shows = {q["show"] for i in digest["insights"] for q in i["quotes"]}
    assert shows & {"Changelog News", "The Changelog", "Changelog & Friends", "Ship It!", "Practical AI"}
    assert (home / "demo" / "news-91.srt").read_text().startswith("1\n00:00:00,000 --> ")
    # The spoken show went through speech recognition; the others came as publisher transcripts.
    store = Store(load(home).db_path)
    episodes = {e.show: e for e in store.episodes(Status.TRANSCRIBED)}
    spoken = episodes.pop("The Grid Report")
    assert not (spoken.transcript_source or "").startswith("publisher")
    assert "batteries" in " ".join(s.text.lower() for s in store.segments(spoken.id))
    assert {e.transcript_source for e in episodes.values()} == {"publisher:application/x-subrip"}
    # --explain says which features decided each pick and why each runner-up lost.
    explained = runner.invoke(cli, ["show", "--explain"], catch_exceptions=False).output
    assert explained.count("decided by:") >= 5 and "Runners-up:" in explained and "content" in explained
    # A second run finds nothing new and sends nothing twice.
    again = json.loads(runner.invoke(cli, ["run", "--demo", "--json"], catch_exceptions=False).output)
    assert again["new_episodes"] == 0 and again["delivery"]["sent"] == []
