"""Polling over a real loopback HTTP server: conditional GET, gzip, redirects, identity, bad feeds."""

from __future__ import annotations

import json
import threading
import time

import pytest
from click.testing import CliRunner
from conftest import CORPUS, rss
from test_corpus_feeds import new_feed_url_in

from digest.cli import cli
from digest.feeds import poll
from digest.models import Status

DAY = "Tue, 24 Nov 2026 10:00:00 GMT"


def items(n: int, prefix: str = "ep") -> list[dict]:
    return [
        {
            "title": f"Episode {i}",
            "guid": f"{prefix}-{i}",
            "date": f"Tue, {10 + i} Nov 2026 10:00:00 GMT",
            "url": f"http://cdn.test/{prefix}-{i}.mp3",
        }
        for i in range(n)
    ]


def test_second_poll_downloads_no_feed_body(server, store, config):
    url = server.add("/feed.xml", rss("Show", items(2)), content_type="application/rss+xml")
    store.add_feed(url)
    first = poll(store, config)
    second = poll(store, config)
    assert len(first[0].new_episodes) == 2 and second[0].not_modified
    statuses = [(status, size) for _, _, status, size in server.hits("/feed.xml")]
    assert statuses[0][0] == 200 and statuses[0][1] > 0
    assert statuses[1] == (304, 0)
    assert server.request_headers[1]["If-None-Match"].startswith('"')
    assert server.request_headers[1]["If-Modified-Since"] == DAY


def test_feed_is_fetched_gzipped_with_an_app_user_agent(server, store, config):
    url = server.add("/feed.xml", rss("Show", items(1)), content_type="application/rss+xml")
    store.add_feed(url)
    poll(store, config)
    headers = server.request_headers[0]
    assert "gzip" in headers["Accept-Encoding"] and headers["User-Agent"].startswith("digest/")
    assert store.feed(url).title == "Show"


@pytest.mark.parametrize("status, kept", [(301, "new"), (308, "new"), (302, "old"), (307, "old")])
def test_permanent_redirects_update_the_stored_url_and_temporary_ones_keep_it(server, store, config, status, kept):
    new = server.add("/new.xml", rss("Moved", items(1)), content_type="application/rss+xml")
    old = server.add("/old.xml", status=status, headers={"Location": new})
    feed, _ = store.add_feed(old)
    poll(store, config)
    assert store.feed(feed.id).url == {"new": new, "old": old}[kept]


def test_itunes_new_feed_url_updates_the_stored_url(server, store, config):
    url = server.add(
        "/ufo.xml",
        (CORPUS / "feeds" / "radiofeed_rss_new_feed_url.xml").read_bytes(),
        content_type="application/rss+xml",
    )
    feed, _ = store.add_feed(url)
    [result] = poll(store, config)
    assert result.error is None and len(result.new_episodes) == 1
    assert store.feed(feed.id).url == new_feed_url_in("radiofeed_rss_new_feed_url.xml")


def test_first_poll_takes_newest_n_and_later_polls_take_every_new_episode(server, store, config):
    url = server.add("/feed.xml", rss("Show", items(6)), content_type="application/rss+xml")
    store.add_feed(url)
    [first] = poll(store, config)
    titles = sorted(e.title for e in store.episodes(Status.NEW))
    assert len(first.new_episodes) == 3 and titles == ["Episode 3", "Episode 4", "Episode 5"]
    assert len(store.episodes(Status.SKIPPED)) == 3
    server.add("/feed.xml", rss("Show", items(8)), content_type="application/rss+xml")
    [second] = poll(store, config)
    assert len(second.new_episodes) == 2


def test_an_episode_keeps_its_identity_when_its_url_or_title_changes_but_a_new_guid_is_a_new_episode(
    server, store, config
):
    base = {
        "title": "Big News",
        "guid": "g1",
        "date": "Tue, 24 Nov 2026 10:00:00 GMT",
        "url": "https://dts.podtrac.com/redirect.mp3/cdn.test/big.mp3?token=a",
    }
    url = server.add("/feed.xml", rss("Show", [base]), content_type="application/rss+xml")
    store.add_feed(url)
    poll(store, config)
    same = [
        {**base, "url": "https://chrt.fm/track/X/cdn.test/big.mp3?token=b"},  # another tracker and token
        {**base, "url": "https://cdn.test/big-v2.mp3"},  # the same GUID, a new file
        {**base, "title": "Big News (corrected)"},  # the same GUID, a new title
        {**base, "guid": "", "url": "https://cdn.test/big-v2.mp3"},  # no GUID now, the same file
    ]
    for v in same:
        server.add("/feed.xml", rss("Show", [v]), content_type="application/rss+xml")
        [result] = poll(store, config)
        assert result.new_episodes == [], v
    # Rule 2 of identity_keys: a different GUID is another episode, even with the same audio and title.
    server.add("/feed.xml", rss("Show", [{**base, "guid": "g2"}]), content_type="application/rss+xml")
    [result] = poll(store, config)
    assert len(result.new_episodes) == 1 and len(store.episodes()) == 2


def test_distinct_episodes_are_never_merged(server, store, config):
    day = "Tue, 24 Nov 2026 {}:00:00 GMT"
    query_urls = [
        {
            "title": f"Ep {n}",
            "guid": f"q{n}",
            "date": day.format(10 + n),
            "url": f"https://files.test/uc?export=download&id=FILE{n}",
        }
        for n in range(1, 5)
    ]
    duplicate_guid = [
        {"title": "Old", "guid": "dup", "date": day.format(6), "url": "https://cdn.test/old.mp3"},
        {"title": "New", "guid": "dup", "date": day.format(7), "url": "https://cdn.test/new.mp3"},
    ]
    url = server.add("/feed.xml", rss("Show", query_urls + duplicate_guid), content_type="application/rss+xml")
    store.add_feed(url)
    poll(store, config)
    stored = {e.title: e.enclosure_url for e in store.episodes()}
    assert len(stored) == 6 and stored["Ep 4"].endswith("id=FILE4") and stored["New"].endswith("new.mp3")
    # The same title on the same day at another time, across polls: a second episode, not an update.
    am = {"title": "Daily Update", "date": day.format(7), "url": "https://cdn.test/am.mp3"}
    pm = {"title": "Daily Update", "date": day.format(18), "url": "https://cdn.test/pm.mp3"}
    server.add("/feed.xml", rss("Show", [am]), content_type="application/rss+xml")
    assert len(poll(store, config)[0].new_episodes) == 1
    server.add("/feed.xml", rss("Show", [pm, am]), content_type="application/rss+xml")
    assert len(poll(store, config)[0].new_episodes) == 1
    daily = sorted(e.enclosure_url for e in store.episodes() if e.title == "Daily Update")
    assert daily == ["https://cdn.test/am.mp3", "https://cdn.test/pm.mp3"]


def test_html_feed_gets_a_per_feed_error_and_the_run_goes_on(server, store, config, home):
    bad = server.add("/bad.xml", b"<!doctype html><html><body>Parking page</body></html>", content_type="text/html")
    good = server.add("/good.xml", rss("Good", items(1)), content_type="application/rss+xml")
    store.add_feed(bad)
    store.add_feed(good)
    results = {r.feed.url: r for r in poll(store, config)}
    assert "expected an RSS or Atom feed" in results[bad].error
    assert len(results[good].new_episodes) == 1
    out = CliRunner().invoke(cli, ["feeds", "list", "--json"])
    listed = {f["url"]: f for f in json.loads(out.output)}
    assert "expected an RSS or Atom feed" in listed[bad]["last_error"] and listed[good]["last_error"] is None


def test_feed_that_times_out_is_reported(server, store, config):
    slow = server.add("/slow.xml", rss("Slow", items(1)), content_type="application/rss+xml", delay=5)
    store.add_feed(slow)
    [result] = poll(store, config)
    assert result.error.endswith("timed out")


def test_dead_url_is_reported(store, config):
    store.add_feed("http://127.0.0.1:9/nothing.xml")
    [result] = poll(store, config)
    assert result.error and "127.0.0.1:9" in result.error


def test_feeds_are_polled_concurrently(server, store, config):
    lock, live, peak = threading.Lock(), [0], [0]

    def body() -> bytes:
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        time.sleep(0.3)
        with lock:
            live[0] -= 1
        return rss("Show", items(1))

    for i in range(4):
        store.add_feed(server.add(f"/f{i}.xml", body, content_type="application/rss+xml"))
    poll(store, config)
    assert peak[0] > 1


def test_opml_round_trip_through_the_cli(server, home, tmp_path, monkeypatch):
    monkeypatch.setenv("DIGEST_FETCH_PRIVATE_ADDRESSES", "allow")  # OPML entries on loopback are refused otherwise
    runner = CliRunner()
    urls = [server.add(f"/f{i}.xml", rss(f"Show {i}", items(1)), content_type="application/rss+xml") for i in range(3)]
    runner.invoke(cli, ["feeds", "add", *urls[:2]], catch_exceptions=False)
    exported = runner.invoke(cli, ["feeds", "export"]).output
    assert all(u in exported for u in urls[:2])
    opml = tmp_path / "subs.opml"
    opml.write_text(exported.replace(urls[1], urls[2]))
    out = runner.invoke(cli, ["feeds", "import", str(opml)])
    assert out.exit_code == 0 and "Imported 1 new feeds" in out.output
    assert runner.invoke(cli, ["feeds", "remove", urls[0]]).exit_code == 0
    listed = [f["url"] for f in json.loads(runner.invoke(cli, ["feeds", "list", "--json"]).output)]
    assert listed == urls[1:]


def test_bad_feed_urls_and_missing_feeds_are_usage_errors(home):
    runner = CliRunner()
    out = runner.invoke(cli, ["feeds", "add", "ftp://example.test/feed"])
    assert out.exit_code == 1 and "expected an http(s) or file URL" in out.output
    out = runner.invoke(cli, ["feeds", "remove", "42"])
    assert out.exit_code == 1 and "no feed '42'" in out.output
    assert runner.invoke(cli, ["feeds", "frobnicate"]).exit_code == 2


def test_an_unchanged_feed_from_a_server_without_validators_is_not_parsed_again(server, store, config):
    url = server.add("/feed.xml", rss("Show", items(3)), content_type="application/rss+xml", etag=False)
    store.add_feed(url)
    assert len(poll(store, config)[0].new_episodes) == 3
    again = poll(store, config)[0]
    assert again.not_modified and again.error is None  # same body hash: nothing parsed or stored
    server.add("/feed.xml", rss("Show", items(4)), content_type="application/rss+xml", etag=False)
    grown = poll(store, config)[0]
    assert not grown.not_modified and len(grown.new_episodes) == 1


def test_a_crash_while_storing_a_feed_stores_none_of_it_and_the_next_poll_takes_it_all(
    server, store, config, monkeypatch
):
    url = server.add("/feed.xml", rss("Show", items(3)), content_type="application/rss+xml", etag=False)
    store.add_feed(url)
    real_ingest = type(store).ingest
    calls = []

    def ingest_that_dies_on_the_third(self, episode, keys, status=Status.NEW):
        calls.append(episode.guid)
        if len(calls) == 3:
            raise OSError("disk full")
        return real_ingest(self, episode, keys, status)

    monkeypatch.setattr(type(store), "ingest", ingest_that_dies_on_the_third)
    failed = poll(store, config)[0]
    assert "disk full" in failed.error and store.feed_episodes(1) == []
    monkeypatch.setattr(type(store), "ingest", real_ingest)
    assert len(poll(store, config)[0].new_episodes) == 3  # the body hash was not kept: parsed again


def test_a_grown_feed_parses_only_its_new_items_and_still_sees_edits_and_duplicate_guids(server, store, config):
    from digest.feeds import unseen_items

    feed = items(3)
    body = rss("Show", feed)
    _, seen = unseen_items(body, None)
    grown = rss("Show", [*feed, *items(5)[3:]])
    reduced, _ = unseen_items(grown, seen)
    assert reduced.count(b"<item>") == 2 and b"<title>Show</title>" in reduced and b"ep-3" in reduced

    url = server.add("/feed.xml", body, content_type="application/rss+xml", etag=False)
    store.add_feed(url)
    assert len(poll(store, config)[0].new_episodes) == 3
    server.add("/feed.xml", grown, content_type="application/rss+xml", etag=False)
    assert len(poll(store, config)[0].new_episodes) == 2
    feed[0]["url"] = "http://cdn.test/ep-0-remastered.mp3"  # an edited item is parsed again and updated
    clash = {**items(6)[5], "guid": "ep-1", "url": "http://cdn.test/other.mp3"}  # a GUID used twice
    server.add("/feed.xml", rss("Show", [*feed, *items(5)[3:], clash]), content_type="application/rss+xml", etag=False)
    assert len(poll(store, config)[0].new_episodes) == 1  # the clash is a new episode, not a merge
    urls = sorted(e.enclosure_url for e in store.feed_episodes(1))
    assert "http://cdn.test/ep-0-remastered.mp3" in urls and len(urls) == 6
