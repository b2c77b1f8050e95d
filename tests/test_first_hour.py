"""A new user's first hour: their own feed gives a digest, the demo keeps to its own home, the CLI speaks plainly."""

from __future__ import annotations

import email
import email.policy
import html
import json
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from conftest import CORPUS

from digest import rank
from digest.cli import cli
from digest.config import load
from digest.demo.markdown_cues import to_srt
from digest.rss import RssItem, rss
from digest.store import Store
from digest.web import base_url_mismatch, make_server

TRANSCRIPT = CORPUS / "transcripts" / "changelog_the-changelog-532.md"


def invoke(*args: str, code: int = 0) -> str:
    out = CliRunner().invoke(cli, list(args))
    assert out.exit_code == code, out.output
    return out.output


def serve_feed(server, days_ago: float, title: str = "My Own Show") -> str:
    """A feed on loopback with one episode published ``days_ago``, carrying a publisher transcript (no audio)."""
    srt = server.add("/ep.srt", to_srt(TRANSCRIPT.read_text(encoding="utf-8")).encode(), content_type="text/plain")
    item = RssItem(
        "Episode 532",
        "ep-532",
        datetime.now(UTC) - timedelta(days=days_ago),
        transcripts=((srt, "application/x-subrip"),),
        xml="<link>https://podcast.example.com/532</link>",
    )
    return server.add("/feed.xml", rss(title, [item]).encode(), content_type="application/rss+xml")


@pytest.mark.slow
def test_a_feed_added_with_an_episode_of_five_days_ago_gives_a_digest_on_the_first_run(server, home):
    url = serve_feed(server, days_ago=5)
    added = invoke("feeds", "add", url)
    assert "My Own Show, 1 episodes" in added  # fetched once: its title and what it holds
    out = invoke("run", "--dry-run")
    assert "1 of them from the last days of newly added feeds" in out
    assert re.search(r"Digest \S+: [1-9]\d* insights from 1 episodes on 1 shows", out), out
    assert "Why none" not in out
    assert "Polling 1 feed…" in out and "Embedding" in out  # a line per stage, as it starts
    digest = json.loads(invoke("show", "--json"))
    assert digest["insights"] and all(q["url"] for i in digest["insights"] for q in i["quotes"])
    # No audio: every quote links to its transcript segment on the archive's episode page, an anchor that exists.
    store = Store(load(home).db_path)
    for quote in (q for i in digest["insights"] for q in i["quotes"]):
        episode, second = re.fullmatch(r"http://127\.0\.0\.1:8080/episode/(\d+)#t(\d+)", quote["url"]).groups()
        [segment, *_] = [s for s in store.segments(int(episode)) if int(s.start) == int(second)]
        opening = " ".join(re.findall(r"\w+", quote["text"].lower())[:3])
        assert opening in " ".join(re.findall(r"\w+", segment.text.lower())), (quote, segment)  # the very segment


@pytest.mark.slow
def test_an_episode_older_than_the_backfill_window_is_archived_and_the_run_says_why(server, home):
    serve_feed(server, days_ago=12)
    invoke("feeds", "add", server.url("/feed.xml"))
    out = invoke("run", "--dry-run")
    assert "0 insights" in out
    [why] = [line for line in out.splitlines() if line.startswith("Why none:")]
    assert "rank.lookback_days" in why and "feeds.backfill_days" in why


def test_a_run_with_no_feeds_says_what_to_do(home):
    out = invoke("run", "--dry-run")
    assert "Why none: No feeds are followed yet: add one with `digest feeds add URL`." in out
    report = json.loads(invoke("run", "--dry-run", "--json"))
    assert report["why_empty"].startswith("No feeds are followed yet") and report["backfilled"] == 0


def test_the_demo_refuses_a_home_with_data_of_its_own(home, server):
    url = serve_feed(server, days_ago=1)
    invoke("feeds", "add", url)
    invoke("subscribers", "add", "me@example.com")
    out = invoke("run", "--demo", code=1)
    assert "holds data of its own" in out and "me@example.com" in out and url in out
    store = Store(load(home).db_path)
    assert [f.url for f in store.feeds()] == [url]
    assert [s.email for s in store.subscribers(None)] == ["me@example.com"]


def test_the_demo_accepts_its_own_home_again(home):
    from digest import demo

    config = load(home)
    store = Store(config.db_path)
    first = demo.install(config, store)
    again = demo.install(config, store)  # a second `make demo` in the same home
    assert [f.id for f in first] == [f.id for f in again] and len(store.subscribers(None)) == 1


def test_feeds_add_fetches_once_reports_errors_and_tries_https(home, server):
    out = invoke("feeds", "add", server.url("/missing.xml"), code=1)
    assert "Not added" in out and "HTTP 404" in out
    out = invoke("feeds", "add", "nonexistent.invalid/feed.xml", code=1)
    assert "https://nonexistent.invalid/feed.xml" in out
    assert "No feeds followed yet" in invoke("feeds", "list")


def test_listings_have_headers_plain_words_and_a_line_when_empty(home):
    assert invoke("episodes", "list", "--status", "failed").strip() == "No failed episodes."
    assert "No deliveries yet." in invoke("deliveries")
    invoke("subscribers", "add", "ada@example.com")
    listed = invoke("subscribers", "list").splitlines()
    assert listed[0].split() == ["ID", "STATUS", "EMAIL"] and listed[1].split()[1:] == ["active", "ada@example.com"]
    assert "SubscriberStatus" not in "\n".join(listed)


def test_verbose_and_quiet_work_after_the_subcommand_and_dates_name_their_option(home):
    assert invoke("feeds", "list", "-v") == invoke("-v", "feeds", "list")
    assert invoke("subscribers", "list", "-q") == invoke("-q", "subscribers", "list")
    out = invoke("show", "--date", "2026-13-01", code=2)
    assert "'--date'" in out and "expected a date as YYYY-MM-DD, today or yesterday, found '2026-13-01'" in out
    from digest.models import Digest

    yesterday = datetime.now(UTC).date() - timedelta(days=1)  # schedule.timezone is UTC by default
    Store(load(home).db_path).save_digest(Digest(yesterday.isoformat()), [])
    assert f"{yesterday:%A}, {yesterday.day} {yesterday:%B %Y}" in invoke("show", "--date", "yesterday")


def test_show_of_a_missing_day_lists_the_days_there_are(home):
    from digest.models import Digest

    store = Store(load(home).db_path)
    for day in ("2026-11-20", "2026-11-21"):
        store.save_digest(Digest(day), [])
    out = invoke("show", "--date", "2026-11-22", code=1)
    assert "no digest for 2026-11-22; there are digests for 2026-11-21, 2026-11-20" in out


@pytest.mark.parametrize("named", [False, True])
def test_digest_serve_warns_at_start_when_it_serves_elsewhere_than_its_links_name(home, monkeypatch, named):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("DIGEST_WEB_BASE_URL", f"http://127.0.0.1:{port if named else 8080}")
    serve = [sys.executable, "-m", "digest", "serve", "--port", str(port)]
    server = subprocess.Popen(serve, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert f"http://127.0.0.1:{port}/" in server.stdout.readline()
        time.sleep(1)  # the warning, when there is one, is written right after the first line
    finally:
        server.terminate()
        _, err = server.communicate(timeout=10)
    assert ("but this server listens on 127.0.0.1:" in err) != named, err


@pytest.mark.parametrize(
    "base, host, port, warns",
    [
        ("http://127.0.0.1:8080", "127.0.0.1", 8080, False),
        ("http://localhost:8080/", "127.0.0.1", 8080, False),
        ("http://archive.example.com:8080", "0.0.0.0", 8080, False),
        ("http://127.0.0.1:8080", "127.0.0.1", 18431, True),
        ("https://digest.example.com", "127.0.0.1", 8080, True),
    ],
)
def test_serve_warns_when_links_name_another_address(home, monkeypatch, base, host, port, warns):
    monkeypatch.setenv("DIGEST_WEB_BASE_URL", base)
    warning = base_url_mismatch(load(home), host, port)
    assert (warning is not None) == warns
    if warns:
        assert base.rstrip("/") in warning and f"{host}:{port}" in warning


def _ids(html: str) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', html))


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def _broken(links: list[str], base: str) -> list[str]:
    """The links that do not resolve: a status other than 200, or a fragment no element on the page has."""
    pages: dict[str, tuple[int, str]] = {}
    broken = []
    for link in links:
        url, _, fragment = link.partition("#")
        assert url.startswith(base), f"a link outside the archive on a demo page: {link}"
        if url not in pages:
            pages[url] = _get(url)
        status, html = pages[url]
        if status != 200 or (fragment and fragment not in _ids(html)):
            broken.append(link)
    return broken


@pytest.mark.slow
@pytest.mark.browser
def test_a_newcomer_runs_the_demo_then_its_printed_commands_and_every_link_and_quote_works(home, browser, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("DIGEST_WEB_PORT", str(port))
    monkeypatch.setenv("DIGEST_WEB_BASE_URL", base)
    out = invoke("run", "--demo")
    printed = [line.split("#")[0].strip() for line in out.split("Next:\n", 1)[1].splitlines()]
    show, serve, search = (shlex.split(c) for c in printed)
    assert serve[-1] == "serve" and f"{base}/" in out  # the URL it prints is the one it serves on

    # The printed show command, run as printed: every quote has its time and a link.
    mail = subprocess.run(show, capture_output=True, text=True, check=True).stdout
    quote_lines = re.findall(r"\[(\d+:\d\d(?::\d\d)?)\] (\S+)", mail)
    assert len(quote_lines) >= 5 and mail.count("“") + 5 >= len(quote_lines)
    hits = subprocess.run(search, capture_output=True, text=True, check=True).stdout
    assert search[-1] in hits.lower() and "HitKind" not in hits
    assert re.search(r"^\[(insight|claim|transcript)\] ", hits, re.MULTILINE), hits
    sent = invoke("deliveries").splitlines()
    assert sent[0].split() == ["DATE", "STATUS", "EMAIL"] and sent[1].split()[1:] == ["sent", "demo@localhost"]

    server = subprocess.Popen(serve, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        assert not _broken([url for _, url in quote_lines], base)  # the text mail's links
        outbox = next((home / "outbox").rglob("*.eml"))
        html_mail = email.message_from_bytes(outbox.read_bytes(), policy=email.policy.default)
        mail_links = re.findall(r'class="quote-link" href="([^"]+)"', html_mail.get_body(("html",)).get_content())
        assert len(mail_links) == len(quote_lines) and not _broken([html.unescape(u) for u in mail_links], base)

        page = browser.new_page()
        page.goto(f"{base}/")
        insight_pages = page.eval_on_selector_all(".insight a[href*='/insight/']", "els => els.map(e => e.href)")
        assert len(insight_pages) == 5
        for url in [f"{base}/", *insight_pages]:
            page.goto(url)
            quotes = page.locator(".insight blockquote")
            assert quotes.count() >= 1
            for n in range(quotes.count()):
                link = quotes.nth(n).locator("a.quote-link")
                assert re.fullmatch(r"(listen|transcript) at \d+:\d\d(:\d\d)?", link.inner_text().strip())
            links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
            assert not _broken(links, base), url
        # The digest page at phone width: headlines stand alone, a run of quotes from one episode names it
        # once, and every quote link is a tap target of 40 px or more.
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{base}/")
        for card in page.locator(".insight").all():
            headline = card.locator("p").first.inner_text()
            assert not re.match(r"(And|But|Or)\b", headline), headline
            named = [q.locator("div").last.inner_text().split(" · ")[0] for q in card.locator("blockquote").all()]
            named = [n for n in named if n.startswith("— ")]
            assert all(a != b for a, b in zip(named, named[1:])), named
        heights = page.eval_on_selector_all("a.quote-link", "els => els.map(e => e.getBoundingClientRect().height)")
        assert heights and min(heights) >= 40, heights
        # Search: each sentence once, a count, labelled dates, links named for their episode and time.
        page.goto(f"{base}/search?q=redis+license")
        assert re.fullmatch(r"\d+ results?( \(the best \d+\))?", page.inner_text("p.count"))
        assert page.get_by_label("From").count() == 1 and page.get_by_label("To").count() == 1
        names = page.eval_on_selector_all(".hit a.tap:not(.quote-link)", "els => els.map(e => e.textContent)")
        assert names and len(set(names)) == len(names) and "transcript" not in names
        texts = [t.strip() for t in page.locator(".hit > div:nth-child(2)").all_inner_texts()]
        assert len(set(texts)) == len(texts)
        # Subscribing on an archive that sends no mail says where the confirmation went.
        page.goto(f"{base}/subscribe")
        page.fill("input[name=email]", "reader@example.com")
        page.click("button[type=submit]")
        assert "Check your inbox" not in page.inner_text("h1") and "outbox" in page.inner_text("main")
        page.set_viewport_size({"width": 1280, "height": 900})
        # Each insight page: one story, its heading, a short title, and sources that are its quotes.
        shows_said = []
        for url in insight_pages:
            page.goto(url)
            assert page.locator("h1").count() == 1 and len(page.title()) <= 70
            said_on = int(re.search(r"said on (\d+) show", page.inner_text(".insight")).group(1))
            lineage = page.inner_text("h2:has-text('Lineage') + p")
            named = 1 + (len(lineage.split("also said on ", 1)[1].split(", ")) if "also said on" in lineage else 0)
            assert named == said_on, lineage
            assert page.locator(".hit").count() == page.locator(".insight blockquote").count()
            shows_said.append(said_on)
        assert max(shows_said) >= 2  # the demo day has a story told on more than one show
        # Following a quote lands on its very segment of the transcript.
        page.locator(".insight a.quote-link").first.click()
        page.wait_for_load_state()
        fragment = page.url.split("#", 1)[1]
        assert page.locator(f"[id='{fragment}']").first.is_visible()
        assert page.evaluate("() => document.querySelector(':target') !== null")
    finally:
        server.terminate()
        server.wait(10)


def test_a_failing_feed_is_reported_once_counted_and_explained(home, server):
    url = serve_feed(server, days_ago=1)
    invoke("feeds", "add", url)
    server.routes.pop("/feed.xml")
    out = CliRunner().invoke(cli, ["run", "--dry-run"])
    assert out.exit_code == 0, out.output
    assert "Polled 1 feeds (1 failed): 0 new episodes." in out.output
    [failure] = [line for line in out.output.splitlines() if url in line]
    assert failure.count(url) == 1 and "HTTP 404" in failure
    assert "Why none: Every feed failed to load" in out.output
    quiet = CliRunner().invoke(cli, ["run", "--dry-run", "-q"])
    assert quiet.output.splitlines() == [failure], quiet.output  # -q: the errors alone


@pytest.mark.parametrize(
    "statement, headline",
    [
        ("And sodium batteries are cheap now.", "Sodium batteries are cheap now."),
        ("But, as it turns out, Redis was forked.", "As it turns out, Redis was forked."),
        ("Andromeda is a galaxy.", "Andromeda is a galaxy."),
        ("Butter prices rose.", "Butter prices rose."),
        ("Sodium batteries are cheap now.", "Sodium batteries are cheap now."),
    ],
)
def test_a_headline_does_not_begin_with_a_conjunction(statement, headline):
    assert rank.headline(statement) == headline


def test_public_pages_show_a_feeds_host_never_its_address(home, server):
    url = serve_feed(server, days_ago=1).replace("/feed.xml", "/private-feed.rss?token=s3cret")
    server.routes["/private-feed.rss?token=s3cret"] = server.routes["/feed.xml"]
    invoke("feeds", "add", url)
    httpd = make_server(load(home), "127.0.0.1", 0)
    threading.Thread(target=httpd.run, daemon=True).start()
    try:
        for path in ("/show/1", "/archive"):
            status, html = _get(f"http://127.0.0.1:{httpd.effective_port}{path}")
            assert status == 200 and "127.0.0.1" in html and "s3cret" not in html and "private-feed" not in html
    finally:
        httpd.trigger.pull_trigger(httpd.close)


def test_reading_commands_leave_no_empty_database_in_a_home_without_one(tmp_path):
    elsewhere = tmp_path / "not-a-home"
    for command in (["show"], ["search", "batteries"]):
        out = invoke("--home", str(elsewhere), *command, code=1)
        assert f"no digest data in {elsewhere} yet" in out and "--home" in out
    assert not (elsewhere / "digest.db").exists()
