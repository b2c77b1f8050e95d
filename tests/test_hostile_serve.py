"""`digest serve` against slow clients and behind a reverse proxy: a real waitress server on loopback, real
sockets, and the WSGI app driven with the environ a proxy produces."""

from __future__ import annotations

import resource
import socket
import threading
import time
import urllib.request

import pytest
from test_hostile import invoke, subscriber

from digest.config import load
from digest.errors import ConfigError
from digest.proxy import client_address, trusted_networks
from digest.web import create_app, make_server

SLOW = 1000


def held_connections(port: int, count: int) -> list[socket.socket]:
    """``count`` connections to the server: half never send a byte, half begin a request and stop."""
    held = []
    for n in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if n % 2:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        held.append(s)
    return held


def trickle(held: list[socket.socket], stop: threading.Event) -> None:
    """One byte every half second on each connection that began a request, as a slowloris client sends."""
    while not stop.wait(0.5):
        for s in held[1::2]:
            try:
                s.sendall(b"a")
            except OSError:
                pass


def closed_by_server(s: socket.socket) -> bool:
    """Whether the server closed this connection (whatever it answered first)."""
    s.setblocking(False)
    try:
        while s.recv(65536):
            pass
        return True
    except BlockingIOError:
        return False
    except OSError:  # reset
        return True


def test_the_home_page_answers_within_a_second_while_a_thousand_slow_connections_are_held(home, monkeypatch):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2 * SLOW + 256:
        pytest.skip(f"both ends of {SLOW} connections need more open files than the hard limit of {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2 * SLOW + 256), hard))  # this process holds both ends
    monkeypatch.setenv("DIGEST_WEB_TIMEOUT", "3")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    httpd = make_server(load(home), "127.0.0.1", port)
    thread = threading.Thread(target=httpd.run, daemon=True)
    thread.start()
    stop = threading.Event()
    held = held_connections(port, SLOW)
    trickler = threading.Thread(target=trickle, args=(held, stop), daemon=True)
    trickler.start()
    try:
        time.sleep(1)  # every connection accepted and waiting
        timings = []
        for _ in range(3):
            started = time.monotonic()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                assert response.status == 200
            timings.append(time.monotonic() - started)
        assert max(timings) < 1.0, timings
        deadline = time.monotonic() + 3 * 3 + 3  # idle ones after web.timeout, trickling ones at its request deadline
        while time.monotonic() < deadline and not all(closed_by_server(s) for s in held):
            time.sleep(0.5)
        assert all(closed_by_server(s) for s in held), sum(map(closed_by_server, held))
    finally:
        stop.set()
        trickler.join(5)
        for s in held:
            s.close()
        httpd.trigger.pull_trigger(httpd.close)
        thread.join(5)


def test_a_bad_listen_address_is_a_one_line_error(home):
    out = invoke("serve", "--host", "999.1.1.1", code=1)
    assert out.startswith("Error:") and out.count("\n") == 1


# --- rate limits behind a reverse proxy --------------------------------------------------------------------------


def test_behind_a_trusted_proxy_one_visitor_cannot_lock_out_the_others(home):
    post = subscriber(create_app(load(home, overrides={"web.trusted_proxies": "10.0.0.0/8, ::1"})))
    proxy = "10.0.0.2"
    assert [post(f"a{n}@example.com", proxy, "203.0.113.7") for n in range(11)].count(429) == 1
    assert post("b@example.com", proxy, "198.51.100.9") == 200  # another visitor through the same proxy
    # A visitor cannot pose as another by writing the header itself: the proxy appends the real peer.
    assert post("c@example.com", proxy, "198.51.100.9, 203.0.113.7") == 429


def test_a_proxy_header_from_an_untrusted_peer_is_ignored(home):
    post = subscriber(create_app(load(home, overrides={"web.trusted_proxies": "10.0.0.2"})))
    codes = [post(f"a{n}@example.com", "203.0.113.7", f"192.0.2.{n}") for n in range(11)]
    assert codes.count(200) == 10 and codes[-1] == 429  # a forged header does not make eleven clients of one


def test_one_target_address_is_limited_whoever_asks(home):
    post = subscriber(create_app(load(home)))
    codes = [post("victim@example.com", f"203.0.113.{n}") for n in range(11)]
    assert codes.count(200) == 10 and codes[-1] == 429


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("10.0.0.2", "203.0.113.7", "203.0.113.7"),
        ("10.0.0.2", "forged, 203.0.113.7, 10.0.0.3", "203.0.113.7"),  # trusted hops are skipped from the right
        ("10.0.0.2", "", "10.0.0.2"),
        ("203.0.113.7", "198.51.100.1", "203.0.113.7"),
    ],
)
def test_the_client_address_is_read_from_the_right_of_the_trusted_chain(peer, forwarded, client):
    assert client_address(peer, forwarded, trusted_networks("10.0.0.0/8")) == client


def test_a_bad_trusted_proxy_setting_says_what_it_expected(home):
    with pytest.raises(ConfigError, match="web.trusted_proxies expects"):
        create_app(load(home, overrides={"web.trusted_proxies": "10.0.0.0/8, not-a-network"}))
