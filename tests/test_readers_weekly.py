"""Weekly readers end to end: a week of stored digests in a real SQLite file (candidates embedded by the bundled
MiniLM), sent day by day through a real aiosmtpd server on loopback, with a send killed mid-way on the
weekly send day (a Sunday, ``readers.weekly_day``'s default)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter

from click.testing import CliRunner
from conftest import ROOT
from test_readers_mail import headlines

from digest.cli import cli
from digest.config import load
from digest.minilm import NumpyMiniLM
from digest.models import Digest, Insight, Quote
from digest.readers import Candidate, Preferences
from digest.store import Store

WEEK = [f"2026-11-{d}" for d in range(16, 23)]  # Monday to Sunday
# Each day's two common picks and one runner-up, each a story of its own.
SAID = [
    [
        "Heat pumps now outsell gas furnaces in most of the United States.",
        "The central bank will hold interest rates until inflation falls below three percent.",
        "Sodium batteries are cheaper than lithium ones for storing power on the grid.",
    ],
    [
        "Teams working from home two days a week ship as much code as teams in the office.",
        "Wildfire smoke now causes more asthma admissions than traffic pollution in California.",
        "Postgres query plans go wrong when table statistics are stale after a bulk load.",
    ],
    [
        "Microplastic particles were found in nearly every bottle of drinking water tested.",
        "Waking at a fixed hour every day steadies the body clock more than sleeping longer.",
        "A four-day school week did not lower test scores in rural Missouri districts.",
    ],
    [
        "Container shipping rates doubled after ships began avoiding the Red Sea.",
        "Coral reefs bleached across every ocean basin in the same year for the first time.",
        "Rust is now allowed in the Linux kernel's core subsystems.",
    ],
    [
        "Electric bus fleets cut city maintenance costs by a third over five years.",
        "Honeybee colony losses fell last winter after a decade of rises.",
        "The James Webb telescope found carbon dioxide in a planet's atmosphere outside our solar system.",
    ],
    [
        "Vertical farms are closing because lighting costs more than the lettuce earns.",
        "Lab-grown diamonds now make up half of engagement ring sales.",
        "Cities that removed parking minimums saw more housing built within two years.",
    ],
    [
        "A new malaria vaccine cut child deaths by a fifth in its first year of rollout.",
        "Airline fares rose faster than inflation because planes are in short supply.",
        "Undersea cables carry almost all intercontinental internet traffic, and repairs take weeks.",
    ],
]


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def store_week(store: Store) -> dict[str, str]:
    """A digest for each day of the week with its candidates; returns each statement's date."""
    embedder = NumpyMiniLM()  # the bundled model's NumPy port
    when = {}
    for date, texts in zip(WEEK, SAID):
        store.save_digest(Digest(date, episodes_scanned=3, shows_scanned=3), [])
        found = []
        for n, text in enumerate(texts, 1):
            quote = Quote(text, f"Show {n}", f"Episode of {date}", 10.0 * n, f"https://cdn.example.com/{date}.mp3")
            insight = Insight(n if n <= 2 else 0, text, text, 1, 1, 0.9, 0.5, 0.0, [quote], show_names=[f"Show {n}"])
            found.append(Candidate(n, n <= 2, [n], insight, date))
            when[text] = date
        store.save_candidates(date, found, embedder.embed(texts))
    return when


def test_a_weekly_reader_gets_the_weeks_best_once_on_sunday_across_a_kill_and_reruns(home, smtp):
    store = Store(load(home).db_path)
    when = store_week(store)
    # subscribed in this order, so the killed send below is a weekly reader's
    weekly, _ = store.add_subscriber("weekly@example.com")
    store.save_preferences(weekly.id, Preferences(count=3, frequency="weekly"))
    keen, _ = store.add_subscriber("keen@example.com")
    interest = NumpyMiniLM().embed(["Postgres database performance"])
    keen_prefs = Preferences(interests=["Postgres database performance"], vectors=interest, frequency="weekly")
    store.save_preferences(keen.id, keen_prefs)
    store.add_subscriber("daily@example.com")

    for date in WEEK[:-1]:  # Monday to Saturday: the daily reader's mail, nothing for the weekly ones
        assert "1 sent" in invoke("send", "--date", date) and "2 weekly readers wait" in invoke("send", "--date", date)
    assert Counter(smtp.recipients()) == {"daily@example.com": 6}
    assert not store.delivery(WEEK[2], weekly.id)
    shown = invoke("subscribers", "show", "weekly@example.com", "--date", WEEK[2])
    assert "insights a week, on sundays: 3" in shown and "weekly: sent on sundays" in shown and "why:" not in shown

    smtp.delay = 3.0  # Sunday: the first weekly mail arrives, then the run is killed before the server answers
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    send = [sys.executable, "-m", "digest", "send", "--date", WEEK[-1]]
    proc = subprocess.Popen(send, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while len(smtp.messages) < 7 and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)  # the message is whole and the ledger says so; the server has not answered yet
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert smtp.recipients()[6:] == ["weekly@example.com"]
    smtp.delay = 0
    for _ in range(2):  # reruns: each reader has Sunday's mail once
        invoke("send", "--date", WEEK[-1])
    assert Counter(smtp.recipients()) == {"daily@example.com": 7, "weekly@example.com": 1, "keen@example.com": 1}

    mails = {m["To"]: m for m in smtp.messages if m["To"] != "daily@example.com"}
    assert mails["weekly@example.com"]["Subject"].startswith("The week's top podcast insights")
    plain = headlines(mails["weekly@example.com"])
    # the week's best for a reader without preferences: Monday's, Tuesday's and Wednesday's leads
    assert plain == [SAID[0][0], SAID[1][0], SAID[2][0]]
    mine = headlines(mails["keen@example.com"])
    assert len(mine) == 5 and mine[0] == SAID[1][2]  # Tuesday's runner-up on Postgres leads the keen reader's
    assert len({when[t] for t in mine}) >= 3  # from across the week, not Sunday's digest alone
    body = mails["keen@example.com"].get_body(("plain",)).get_content()
    assert re.search(rf"/feedback/more/{WEEK[1]}/3/", body)  # feedback goes to the candidate's own day
    assert mails["keen@example.com"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    report = json.loads(invoke("subscribers", "show", "keen@example.com", "--date", WEEK[-1], "--json"))
    assert report["frequency"] == "weekly" and report["sent"]
    assert report["picks"][0]["why"].startswith(f"runner-up 3 of 3 of {WEEK[1]}; interests and feedback +")
    exported = json.loads(invoke("subscribers", "export", "keen@example.com"))
    assert exported["preferences"]["frequency"] == "weekly"
    assert [s["text"] for s in exported["sent"]] == mine and {s["date"] for s in exported["sent"]} == {WEEK[-1]}
    store.close()
