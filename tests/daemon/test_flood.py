"""A flood of one million distinct stream names through the daemon: memory stays bounded.

The daemon's own batch path (decode, score, deliver, commit, count) and its idle
sweep, on a clock the test moves one second per batch of 10,000 names, with
``streams.max_streams`` 10,000 and a 1 s idle TTL. Live streams never pass the
limit, the state arrays never pass the limit rounded up to a power of two, and the
evicted counter, the tracked gauge and the exposed series agree with what went in.
No durations are asserted.
"""

from __future__ import annotations

import json

import orjson
from prometheus_client import CollectorRegistry

from monitor.config import MonitorConfig
from monitor.daemon import Daemon
from monitor.metrics import DaemonMetrics, StreamCollector
from tests.daemon.fakes import FakeConsumer, FakeProducer, batch_of, record

NAMES = 1_000_000
BATCH = 10_000
MAX_STREAMS = 10_000
T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def test_a_million_stream_names_keep_the_daemon_bounded() -> None:
    config = MonitorConfig.model_validate_json(
        json.dumps(
            {
                "streams": {
                    "max_streams": MAX_STREAMS,
                    "idle_ttl_seconds": 1.0,
                    "eviction_interval_seconds": 0,
                },
                "state": {"enabled": False},
            }
        )
    )
    clock = Clock()
    registry = CollectorRegistry()
    metrics = DaemonMetrics(registry)
    daemon = Daemon(config, FakeConsumer([], []), FakeProducer(), metrics, clock=clock)
    collector = StreamCollector.from_config(daemon.detector, daemon.lock, config.metrics)
    registry.register(collector)
    table = daemon.detector.streams
    bound = MAX_STREAMS  # the arrays grow within a reservation of MAX_STREAMS rows
    offset = 0
    for start in range(0, NAMES, BATCH):
        records = []
        for i in range(start, start + BATCH):
            value = orjson.dumps({"stream": f"flood.{i}", "ts": clock.now, "value": 1.0})
            records.append(record("metrics", 0, offset, value))
            offset += 1
        daemon.process_batch(batch_of(records))
        assert len(table) <= MAX_STREAMS
        assert table.state.capacity <= bound
        assert all(c.capacity <= bound for c in daemon.detector._components())
        assert registry.get_sample_value("monitor_streams_tracked") == len(table)
        clock.now += 1.0
        daemon.evict_idle()
        assert len(table) == 0
    # Every name was admitted (its predecessors were evicted in time), scored once,
    # then evicted; nothing was dropped for want of room.
    assert registry.get_sample_value("monitor_points_scored_total") == NAMES
    assert registry.get_sample_value("monitor_streams_evicted_total") == NAMES
    assert (
        registry.get_sample_value("monitor_points_dropped_total", {"reason": "too_many_streams"})
        is None
    )
    assert registry.get_sample_value("monitor_streams_tracked") == 0
    assert table.state.capacity == bound
    assert registry.get_sample_value("monitor_stream_value", {"stream": "flood.0"}) is None


def test_names_beyond_the_limit_are_dropped_and_counted_when_nothing_is_idle() -> None:
    config = MonitorConfig.model_validate_json(
        json.dumps(
            {
                "streams": {"max_streams": 1_000, "idle_ttl_seconds": 3600.0},
                "state": {"enabled": False},
            }
        )
    )
    registry = CollectorRegistry()
    daemon = Daemon(config, FakeConsumer([], []), FakeProducer(), DaemonMetrics(registry))
    records = [
        record("metrics", 0, i, orjson.dumps({"stream": f"f.{i}", "ts": T0, "value": 1.0}))
        for i in range(5_000)
    ]
    daemon.process_batch(batch_of(records))
    assert len(daemon.detector.streams) == 1_000
    assert daemon.detector.streams.state.capacity <= 1_024
    assert registry.get_sample_value("monitor_points_scored_total") == 1_000
    dropped = {"reason": "too_many_streams"}
    assert registry.get_sample_value("monitor_points_dropped_total", dropped) == 4_000
