"""A send cut off part way: only a message whose final '.' was written may be 'uncertain'; one killed or
dropped before is sent again. `digest send` runs as a real process, killed with SIGKILL, against aiosmtpd on
loopback, and against a raw-socket SMTP server that resets the connection in the body."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from conftest import ROOT, SmtpSink
from test_hostile import invoke, one_insight_digest

from digest.config import load
from digest.models import DeliveryStatus
from digest.store import Store


class StallingSmtpSink(SmtpSink):
    """The real aiosmtpd sink, which can hold its answer to RCPT (before any DATA) or to the final '.'."""

    def __init__(self, sink: SmtpSink):
        super().__init__(host=sink.host, port=sink.port)
        self.stall_rcpt = 0.0
        self.reached = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.stall_rcpt:
            self.reached.set()
            await asyncio.sleep(self.stall_rcpt)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):
        if self.hang_after_data:
            self.reached.set()
        return await super().handle_DATA(server, session, envelope)


def kill_send_when(sink: StallingSmtpSink, date: str) -> None:
    """Start `digest send` as its own process and SIGKILL it once the sink holds it at the stalled step."""
    process = subprocess.Popen([sys.executable, "-m", "digest", "send", "--date", date], cwd=ROOT, env=os.environ)
    try:
        assert sink.reached.wait(30), "the send never reached the stalled step"
        time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)


@pytest.fixture
def stalled(home, smtp):
    """One subscriber, one digest, and the stalling sink in place of the plain one."""
    store = Store(load(home).db_path)
    digest = one_insight_digest(store)
    store.add_subscriber("reader@example.com")
    smtp.stop()
    sink = StallingSmtpSink(smtp)
    sink.start()
    yield store, digest.date, sink
    sink.stop()


def test_a_send_killed_before_the_final_dot_is_sent_again(stalled):
    store, date, sink = stalled
    sink.stall_rcpt = 30
    kill_send_when(sink, date)
    assert store.deliveries(date)[0].status is DeliveryStatus.SENDING and sink.messages == []
    sink.stall_rcpt = 0
    assert "1 sent" in invoke("send", "--date", date)
    assert len(sink.messages) == 1 and store.deliveries(date)[0].status is DeliveryStatus.SENT


def test_a_send_killed_after_the_final_dot_is_uncertain_and_not_sent_again(stalled):
    store, date, sink = stalled
    sink.hang_after_data = 30
    kill_send_when(sink, date)
    assert store.deliveries(date)[0].status is DeliveryStatus.UNCERTAIN and len(sink.messages) == 1
    sink.hang_after_data = 0
    assert "0 sent, 1 already had it" in invoke("send", "--date", date)
    assert len(sink.messages) == 1


def smtp_server_that_drops_in_the_body(port: int, stop: threading.Event) -> threading.Thread:
    """A real SMTP server on loopback (raw sockets) that accepts MAIL, RCPT and DATA, reads the first KiB of
    the body and resets the connection; its receive window is small, so the client is still writing then."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    listener.bind(("127.0.0.1", port))
    listener.listen()
    listener.settimeout(0.2)

    def serve() -> None:
        with listener:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                with conn, conn.makefile("rb") as lines:
                    conn.sendall(b"220 drops.test ESMTP\r\n")
                    for line in lines:
                        if line.upper().startswith(b"DATA"):
                            conn.sendall(b"354 go ahead\r\n")
                            lines.read(1024)
                            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                            break
                        conn.sendall(b"250 ok\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_a_connection_dropped_in_the_body_is_retried_not_uncertain(home, smtp):
    store = Store(load(home).db_path)
    digest = one_insight_digest(store, text="Grid batteries are cheaper now. " * 60_000)  # about 2 MB of mail
    store.add_subscriber("reader@example.com")
    smtp.stop()
    stop = threading.Event()
    dropper = smtp_server_that_drops_in_the_body(smtp.port, stop)
    try:
        out = invoke("send", "--date", digest.date, code=1)
    finally:
        stop.set()
        dropper.join(5)
    assert "0 uncertain" in out and store.deliveries(digest.date)[0].status is DeliveryStatus.DEFERRED
    smtp.start()
    assert "1 sent" in invoke("send", "--date", digest.date)
    assert len(smtp.messages) == 1
