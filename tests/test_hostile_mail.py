"""A send killed part way: only a message whose final '.' was written may be 'uncertain'; one killed before
is sent again. `digest send` runs as a real process, killed with SIGKILL, against aiosmtpd on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
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
