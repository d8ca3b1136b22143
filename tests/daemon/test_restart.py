"""State that survives: kill -9 and restart, and partitions moving between two daemons.

Real broker, real daemons. The reference for "nothing lost, nothing spurious" is one
uninterrupted in-process :class:`Detector` over the same points: its anomalies, by
``event_id``, must be exactly the set of events the interrupted daemons deliver
(duplicates allowed, carrying the same ``event_id``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from kafka import KafkaConsumer, KafkaProducer
from prometheus_client import CollectorRegistry

from monitor.config import MonitorConfig
from monitor.daemon import event_id
from monitor.daemon.partitions import model_signature
from monitor.daemon.runner import build_daemon
from monitor.detection import Detector
from monitor.kafka.admin import ensure_topics
from monitor.kafka.ports import free_port
from monitor.records import Point
from monitor.replay import encode_native
from monitor.state.checkpoints import CheckpointStore
from tests.daemon_settings import TEST_CONSUMER
from tests.probes import committed_offsets, scraped_total, wait_for

pytestmark = pytest.mark.integration

STREAMS = 6
POINTS = 1200
START = 1_700_000_000.0
WAIT = 90.0
"""Seconds a test waits for a condition before it fails."""


def stream_values(s: int) -> np.ndarray:
    """A seasonal, noisy series with one spike after the warm-up, at a different time each."""
    rng = np.random.default_rng(100 + s)
    t = np.arange(POINTS)
    values = 50 + 5 * np.sin(2 * np.pi * t / 60) + rng.normal(0, 0.3, POINTS)
    values[450 + 130 * s] += 40
    return values


def points_of(start: int, stop: int) -> list[Point]:
    """Points ``start..stop-1`` of every stream, interleaved in time order."""
    values = [stream_values(s) for s in range(STREAMS)]
    return [
        Point(f"svc.{s}", (), START + 60.0 * t, float(values[s][t]))
        for t in range(start, stop)
        for s in range(STREAMS)
    ]


def reference_event_ids(config: MonitorConfig) -> set[str]:
    detector = Detector(config)
    all_points = points_of(0, POINTS)
    scored = detector.process(all_points).scored
    flagged = scored.index[scored.anomalous]
    ids = {event_id(all_points[i].key, all_points[i].ts) for i in flagged.tolist()}
    assert len(ids) >= STREAMS, "every planted spike must be found by the reference"
    return ids


class Feed:
    """Produces points keyed by stream and counts the records sent to each partition."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        self.sent: dict[int, int] = {}

    def send(self, start: int, stop: int) -> None:
        futures = [
            self.producer.send(
                self.topic, key=p.key.encode(), value=encode_native(p.name, (), p.ts, p.value)
            )
            for p in points_of(start, stop)
        ]
        self.producer.flush()
        for future in futures:
            partition = future.get(timeout=10).partition
            self.sent[partition] = self.sent.get(partition, 0) + 1

    def close(self) -> None:
        self.producer.close()


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    offsets = committed_offsets(bootstrap, group, topic, range(partitions))
    return {p: offset or 0 for p, offset in enumerate(offsets)}


def delivered_event_ids(bootstrap: str, topic: str) -> list[str]:
    """Every event on the topic (read until no new one arrives for 3 s)."""
    reader = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    ids: list[str] = []
    try:
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 3.0:
            for batch in reader.poll(timeout_ms=300).values():
                ids.extend(json.loads(r.value)["event_id"] for r in batch)
                quiet_since = time.monotonic()
    finally:
        reader.close()
    return ids


def daemon_settings(bootstrap: str, topic: str, tmp_path, interval: float) -> dict:
    return {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "group_id": f"{topic}-group",
            "topics": [topic],
            **TEST_CONSUMER,
            "max_poll_records": 300,
        },
        "events": {"topic": f"{topic}-events", "log": False},
        "dead_letter": {"topic": f"{topic}-dlq"},
        "state": {"dir": str(tmp_path / "state"), "checkpoint_interval_seconds": interval},
    }


def test_kill_9_then_restart_loses_nothing_and_stays_warm(broker, topic_name, tmp_path):
    bootstrap = broker.bootstrap_servers
    ensure_topics(bootstrap, {topic_name: 2, f"{topic_name}-events": 1})
    settings = daemon_settings(bootstrap, topic_name, tmp_path, interval=0.5)
    config_file = tmp_path / "monitor.yaml"
    env = {**os.environ, "MONITOR_KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    config = MonitorConfig.model_validate_json(json.dumps(settings))
    feed = Feed(bootstrap, topic_name)

    def start(port: int) -> subprocess.Popen:
        config_file.write_text(
            json.dumps({**settings, "metrics": {"port": port, "address": "127.0.0.1"}})
        )
        return subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config_file)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    first_port, second_port = free_port(), free_port()
    first = start(first_port)
    try:
        feed.send(0, 600)
        wait_for(
            lambda: scraped_total(first_port, "monitor_records_consumed_total") >= 600 * STREAMS,
            WAIT,
            "the first half",
        )
        wait_for(
            lambda: scraped_total(first_port, "monitor_checkpoint_last_timestamp_seconds") > 0,
            WAIT,
            "a checkpoint",
        )
        feed.send(600, 900)
        wait_for(
            lambda: scraped_total(first_port, "monitor_records_consumed_total") >= 900 * STREAMS,
            WAIT,
            "more",
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    except AssertionError:
        first.kill()
        raise AssertionError(first.communicate()[0][-5000:]) from None
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()
    feed.send(900, POINTS)
    feed.close()
    total = sum(feed.sent.values())
    assert total == POINTS * STREAMS

    store = CheckpointStore(config.state.dir, config.kafka.group_id)
    resumed_at = {
        p: store.load_latest(topic_name, p, model_signature(config)).offset for p in (0, 1)
    }
    assert all(offset > 0 for offset in resumed_at.values())

    second = start(second_port)
    try:
        wait_for(
            lambda: committed(bootstrap, config.kafka.group_id, topic_name, 2) == feed.sent,
            WAIT,
            "every record committed after the restart",
        )
        restored = scraped_total(second_port, "monitor_streams_restored_total")
        consumed_again = scraped_total(second_port, "monitor_records_consumed_total")
        second.send_signal(signal.SIGTERM)
        output, _ = second.communicate(timeout=30)
    finally:
        if second.poll() is None:
            second.kill()
            second.communicate()
    assert second.returncode == 0, output
    # Warm: every stream came back from the checkpoints, none re-learned from scratch.
    assert restored == STREAMS
    # At least once, and no more than the replay of what the checkpoints did not cover.
    assert consumed_again == total - sum(resumed_at.values())

    delivered = delivered_event_ids(bootstrap, f"{topic_name}-events")
    assert set(delivered) == reference_event_ids(config)


def test_partitions_move_between_two_daemons_with_their_state(broker, topic_name, tmp_path):
    bootstrap = broker.bootstrap_servers
    partitions = 4
    ensure_topics(bootstrap, {topic_name: partitions, f"{topic_name}-events": 1})
    settings = daemon_settings(bootstrap, topic_name, tmp_path, interval=1.0)
    config = MonitorConfig.model_validate_json(json.dumps(settings))
    feed = Feed(bootstrap, topic_name)
    runs: dict[str, tuple] = {}

    def start(name: str) -> None:
        registry = CollectorRegistry()
        named = MonitorConfig.model_validate_json(
            json.dumps(
                {
                    **settings,
                    "metrics": {"port": 0},
                    "kafka": {**settings["kafka"], "client_id": name},
                }
            )
        )
        daemon, _ = build_daemon(named, registry)
        thread = threading.Thread(target=daemon.run, name=name)
        thread.start()
        runs[name] = (daemon, registry, thread)

    def stop(name: str) -> None:
        daemon, _, thread = runs[name]
        daemon.stop.set()
        thread.join(timeout=60)
        assert not thread.is_alive()
        daemon.producer.close()

    def value(name: str, metric: str) -> float:
        return runs[name][1].get_sample_value(metric) or 0.0

    def owned(name: str) -> set[int]:
        try:  # read while the daemon's thread may be rebalancing
            return {p.partition for p in list(runs[name][0].partitions.assigned)}
        except RuntimeError:
            return set()

    def split() -> bool:
        """Both daemons own partitions, none of them the same."""
        a, b = owned("a"), owned("b")
        return bool(a and b and not a & b)

    def all_committed() -> bool:
        expected = {p: feed.sent.get(p, 0) for p in range(partitions)}
        return committed(bootstrap, config.kafka.group_id, topic_name, partitions) == expected

    try:
        start("a")
        feed.send(0, 500)
        wait_for(all_committed, WAIT, "daemon a alone to commit the first part")

        start("b")
        wait_for(split, WAIT, "a split")
        assert value("b", "monitor_streams_restored_total") > 0
        feed.send(500, 800)
        wait_for(all_committed, WAIT, "both daemons to commit the second part")
        streams_a = set(runs["a"][0].detector.streams.rows)
        streams_b = set(runs["b"][0].detector.streams.rows)
        assert streams_a and streams_b and not streams_a & streams_b
        assert len(streams_a | streams_b) == STREAMS

        stop("b")
        wait_for(lambda: owned("a") == set(range(partitions)), WAIT, "a to take every partition")
        assert len(runs["a"][0].detector.streams) == STREAMS
        feed.send(800, 1000)
        wait_for(all_committed, WAIT, "a alone to commit the third part")

        start("b")
        wait_for(split, WAIT, "a new split")
        feed.send(1000, POINTS)
        wait_for(all_committed, WAIT, "both daemons to commit everything")
    finally:
        for name in list(runs):
            if runs[name][2].is_alive():
                stop(name)
        feed.close()

    delivered = delivered_event_ids(bootstrap, f"{topic_name}-events")
    assert set(delivered) == reference_event_ids(config)
