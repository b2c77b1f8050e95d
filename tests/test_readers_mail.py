"""Each reader's own digest end to end: a real day of the labelled corpus digested by the pipeline, mail
through a real aiosmtpd server, the preferences and feedback pages served on loopback and walked in
headless Chromium, and a send killed mid-way."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter

import pytest
from click.testing import CliRunner
from conftest import ROOT, serving, web_base
from test_deliver import follow_eval_day

from digest import pipeline
from digest.cli import cli
from digest.config import load
from digest.readers import Preferences
from digest.store import Store

DAY = "2026-11-20"


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def day(home, smtp, monkeypatch):
    """The corpus' first day digested (not sent), with the archive served on loopback."""
    follow_eval_day(home, upto=1)
    port, base = web_base(monkeypatch)
    config = load(home)
    store = Store(config.db_path)
    pipeline.run(config, store, date=DAY, quiet=True, dry_run=True)
    with serving(config, port):
        yield base, store, config
    store.close()


def headlines(mail) -> list[str]:
    """The insights' headlines in a mail's HTML part, in order."""
    found = re.findall(r'<p style="margin:6px 0 10px 0[^>]*>(.*?)</p>', mail.get_body(("html",)).get_content())
    return [html.unescape(re.sub(r"<[^>]+>", "", h)).strip() for h in found]


def link(mail, kind: str) -> str:
    return re.search(rf"http://\S+/{kind}/\S+", mail.get_body(("plain",)).get_content()).group(0)


def test_the_run_keeps_candidates_and_each_reader_gets_their_own_digest_once(day, smtp):
    base, store, config = day
    digest = store.digest(DAY)
    candidates, vectors = store.candidates(DAY)
    common = [c.insight.text for c in candidates if c.common]
    assert common == [i.text for i in digest.insights] and len(common) == 5
    assert len(candidates) > 5 and vectors.shape == (len(candidates), 384)
    assert all(c.feed_ids and c.insight.quotes for c in candidates)
    runner_up = candidates[-1]  # the day's last runner-up that passed the quality bar

    for email in ("plain@example.com", "picky@example.com", "keen@example.com"):
        store.add_subscriber(email)
    feed = runner_up.feed_ids[0]
    store.save_preferences(store.subscriber("picky@example.com").id, Preferences(feed_ids=[feed], count=3))
    keen = Preferences(interests=[runner_up.insight.text], vectors=vectors[-1:])
    store.save_preferences(store.subscriber("keen@example.com").id, keen)

    assert "3 sent" in invoke("send", "--date", DAY)
    mails = {m["To"]: m for m in smtp.messages}
    assert headlines(mails["plain@example.com"]) == common
    picky = headlines(mails["picky@example.com"])
    by_text = {c.insight.text: c for c in candidates}
    assert len(picky) <= 3 and picky and all(feed in by_text[t].feed_ids for t in picky)
    assert headlines(mails["keen@example.com"])[0] == runner_up.insight.text
    assert link(mails["keen@example.com"], "preferences").startswith(f"{base}/preferences/")
    assert len(re.findall(r"/feedback/more/", mails["keen@example.com"].get_body(("plain",)).get_content())) == 5

    assert "0 sent, 3 already had it" in invoke("send", "--date", DAY)  # the ledger holds, picks stay fixed
    shown = json.loads(invoke("show", "--for", "picky@example.com", "--date", DAY, "--json"))
    assert [i["text"] for i in shown["insights"]] == picky
    report = json.loads(invoke("subscribers", "show", "keen@example.com", "--date", DAY, "--json"))
    assert report["sent"] and report["picks"][0]["why"].startswith(f"runner-up {runner_up.position} of")
    assert "interests and feedback +" in report["picks"][0]["why"]
    printed = invoke("subscribers", "show", "picky@example.com", "--date", DAY)
    assert "insights a day: 3" in printed and printed.count("why: ") == len(picky) and "(as sent)" in printed
    exported = json.loads(invoke("subscribers", "export", "keen@example.com"))
    assert exported["preferences"]["interests"] == [runner_up.insight.text]
    assert [s["text"] for s in exported["sent"]] == headlines(mails["keen@example.com"])

    # unsubscribing (RFC 8058 one-click) deletes the reader's preferences, clicks and picks
    keen_id = store.subscriber("keen@example.com").id
    store.record_click(keen_id, DAY, 1, -1)
    one_click = mails["keen@example.com"]["List-Unsubscribe"].strip("<>")
    request = urllib.request.Request(one_click, data=b"List-Unsubscribe=One-Click", method="POST")
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
    assert store.preferences(keen_id) == Preferences() and not store.clicks(keen_id)
    assert not store.picks(DAY, keen_id) and store.reader_data(keen_id)["sent"] == []
    # and nothing about a reader is on the public pages
    with urllib.request.urlopen(f"{base}/digest/{DAY}") as response:
        page = response.read().decode()
    assert "picky@" not in page and "keen@" not in page and "/preferences/" not in page


@pytest.mark.browser
def test_a_reader_sets_preferences_and_says_less_like_this_from_links_in_a_real_mail(day, smtp, browser):
    base, store, config = day
    store.add_subscriber("reader@example.com")
    invoke("send", "--date", DAY)
    [mail] = smtp.messages
    sub = store.subscriber("reader@example.com")

    page = browser.new_page()
    page.goto(link(mail, "preferences"))
    assert "Choose what you get" in page.inner_text("h1") and "reader@example.com" in page.inner_text("main")
    first_feed = store.feeds()[0]
    page.check(f"input[name=show-{first_feed.id}]")
    page.fill("textarea[name=interests]", "batteries and the power grid\nsleep")
    page.check("input[name=count][value='3']")
    page.check("input[name=frequency][value='weekly']")
    page.click("button[type=submit]")
    assert "Saved" in page.inner_text("main")
    prefs = store.preferences(sub.id)
    assert prefs.feed_ids == [first_feed.id] and prefs.count == 3 and prefs.frequency == "weekly"
    assert prefs.interests == ["batteries and the power grid", "sleep"] and prefs.vectors.shape == (2, 384)

    less = re.search(r"http://\S+/feedback/less/\S+", mail.get_body(("plain",)).get_content()).group(0)
    page.goto(less)  # what a mail scanner's prefetch does: a page that asks, and no click recorded
    assert "Less like this" in page.inner_text("h1") and not store.clicks(sub.id)
    page.click("button[type=submit]")
    assert "Noted" in page.inner_text("main")
    [click] = store.clicks(sub.id)
    assert click.direction == -1 and click.text == store.digest(DAY).insights[0].text

    body = mail.get_body(("html",)).get_content()
    insight_page = html.unescape(re.search(r'href="(http://[^"]+/insight/\d+\?at=[^"]+)"', body).group(1))
    page.goto(insight_page)  # the headline of a common pick opens its archive page with the reader's buttons
    page.click("text=More like this")
    assert "Noted" in page.inner_text("main")
    [click] = store.clicks(sub.id)
    assert click.direction == 1  # a second click on the same insight replaces the first
    page.goto(insight_page.split("?")[0])  # anyone else sees the page without them
    assert page.locator(".insight").count() == 1 and page.locator(".feedback").count() == 0

    page.goto(less.replace("/less/", "/more/"))  # a token is bound to its direction and insight
    assert "does not work" in page.inner_text("h1")
    time.sleep(1.1)  # links signed in the second of revoking still work
    invoke("subscribers", "revoke", "reader@example.com")
    page.goto(link(mail, "preferences"))
    assert "revoked" in page.inner_text("main")


@pytest.mark.slow
def test_killed_while_sending_to_a_hundred_readers_each_gets_their_own_digest_exactly_once(day, smtp):
    _, store, _ = day
    candidates, vectors = store.candidates(DAY)
    emails = [f"reader{n:03d}@example.com" for n in range(100)]
    for n, email in enumerate(emails):
        sub, _ = store.add_subscriber(email)
        interest = vectors[n % len(vectors) : n % len(vectors) + 1]
        store.save_preferences(sub.id, Preferences(interests=[f"topic {n}"], vectors=interest, count=(3, 5, 10)[n % 3]))
    smtp.delay = 0.05
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    send = [sys.executable, "-m", "digest", "send", "--date", DAY]
    proc = subprocess.Popen(send, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while len(smtp.messages) < 30 and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 30 <= len(smtp.messages) < len(emails)
    smtp.delay = 0
    for _ in range(2):
        subprocess.run(send, env=env, cwd=ROOT, capture_output=True)
    assert sorted(smtp.recipients()) == emails  # each exactly once
    texts = {c.position: c.insight.text for c in candidates}
    digests = Counter()
    for mail in smtp.messages:
        mine = [texts[p.position] for p in store.picks(DAY, store.subscriber(mail["To"]).id)]
        assert headlines(mail) == mine  # the digest fixed for that reader, across the kill
        digests[tuple(mine)] += 1
    assert len(digests) >= 10  # the readers' digests differ
