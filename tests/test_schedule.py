"""The daemon: cron trigger in a time zone, clean SIGTERM, and one run at a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import ROOT

from digest import pipeline
from digest.config import load
from digest.errors import ConfigError
from digest.schedule import trigger
from digest.store import Store


def test_cron_trigger_uses_the_configured_time_zone(home, monkeypatch):
    monkeypatch.setenv("DIGEST_SCHEDULE_TIMEZONE", "America/New_York")
    fire = trigger(load(home)).get_next_fire_time(None, datetime(2026, 11, 26, 12, 0, tzinfo=ZoneInfo("UTC")))
    assert (fire.hour, fire.minute, fire.day) == (6, 0, 27) and str(fire.tzinfo) == "America/New_York"


def test_bad_cron_expression_is_a_clear_error(home, monkeypatch):
    monkeypatch.setenv("DIGEST_SCHEDULE_CRON", "every morning")
    with pytest.raises(ConfigError, match="schedule.cron"):
        trigger(load(home))


def test_two_runs_never_overlap(home):
    config = load(home)
    store = Store(config.db_path)
    with pipeline.run_lock(config):
        with pytest.raises(pipeline.RunLocked, match="another digest run"):
            pipeline.run(config, store, quiet=True)


def test_daemon_stops_cleanly_on_sigterm(home):
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "schedule"], cwd=ROOT, env=dict(os.environ), stderr=subprocess.PIPE, text=True
    )
    line = proc.stderr.readline()
    assert "next run at" in line and "06:00:00" in line
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
