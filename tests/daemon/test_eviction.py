"""The daemon's idle-stream sweep and its stream-limit warning, on a clock the test moves."""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from monitor.config import MonitorConfig
from monitor.daemon import Daemon
from monitor.metrics import DaemonMetrics, StreamCollector
from tests.daemon.fakes import FakeConsumer, FakeProducer, batch_of, record

T0 = 1_700_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class TimedConsumer(FakeConsumer):
    """Each poll first sets the clock to the poll's time; an empty batch is an idle poll."""

    def __init__(self, polls: list[tuple[float, dict]], clock: Clock) -> None:
        super().__init__([batch for _, batch in polls], [])
        self.times = [at for at, _ in polls]
        self.clock = clock

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict:
        if self.times:
            self.clock.now = self.times.pop(0)
        return super().poll(timeout_ms, max_records)


def points(*streams: str, ts: float = T0, offset: int = 0) -> dict[Any, list[Any]]:
    return batch_of(
        [
            record("metrics", 0, offset + i, orjson.dumps({"stream": s, "ts": ts, "value": 1.0}))
            for i, s in enumerate(streams)
        ]
    )


def run_daemon(polls: list[tuple[float, dict]], **streams: object):
    config = MonitorConfig.model_validate_json(
        json.dumps({"detector": {"warmup": 5}, "events": {"log": False}, "streams": streams})
    )
    clock = Clock()
    consumer = TimedConsumer(polls, clock)
    registry = CollectorRegistry()
    daemon = Daemon(
        config, consumer, FakeProducer(), DaemonMetrics(registry), clock=clock, sleep=lambda s: 0
    )
    registry.register(StreamCollector(daemon.detector, daemon.lock))
    consumer.stop = daemon.stop
    assert daemon.run() == 0
    return daemon, registry


def evicted_total(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("monitor_streams_evicted_total")


def test_idle_streams_are_evicted_counted_and_logged(caplog):
    caplog.set_level(logging.INFO, logger="monitor.daemon")
    polls = [
        (T0, points("a", "b")),
        (T0 + 300, points("b", ts=T0 + 60, offset=2)),
        (T0 + 700, {}),  # idle poll: a idle 700 s >= 600 s, b 400 s
        (T0 + 710, {}),  # no sweep due yet (interval 60 s)
        (T0 + 950, {}),  # b idle 650 s
    ]
    daemon, registry = run_daemon(polls, idle_ttl_seconds=600.0, eviction_interval_seconds=60.0)
    assert len(daemon.detector.streams) == 0
    assert evicted_total(registry) == 2
    assert registry.get_sample_value("monitor_streams_tracked") == 0
    lines = [r for r in caplog.records if r.getMessage().startswith("evicted")]
    assert [(r.levelno, r.getMessage()) for r in lines] == [
        (logging.INFO, "evicted 1 streams without a point for 600s; 1 streams tracked"),
        (logging.INFO, "evicted 1 streams without a point for 600s; 0 streams tracked"),
    ]
    for stream in ("a", "b"):
        assert registry.get_sample_value("monitor_stream_value", {"stream": stream}) is None


def test_a_sweep_waits_for_its_interval():
    polls = [
        (T0, points("a")),
        (T0 + 100, {}),  # a is idle past the TTL, but the first sweep is due at T0 + 300
        (T0 + 299, {}),
    ]
    daemon, registry = run_daemon(polls, idle_ttl_seconds=10.0, eviction_interval_seconds=300.0)
    assert daemon.detector.streams.rows == {"a": 0}
    assert evicted_total(registry) == 0
    assert daemon.evict_idle() == 0  # still T0 + 299
    clock = daemon.clock
    assert isinstance(clock, Clock)
    clock.now = T0 + 300
    assert daemon.evict_idle() == 1
    assert evicted_total(registry) == 1


def test_the_sweep_runs_after_a_batch_and_the_batch_keeps_its_streams_alive():
    polls = [
        (T0, points("a", "b")),
        (T0 + 61, points("c", offset=2)),  # sweep after this batch: a and b idle 61 s
        (T0 + 122, points("d", offset=3)),  # c idle 61 s
    ]
    daemon, registry = run_daemon(polls, idle_ttl_seconds=60.0, eviction_interval_seconds=60.0)
    # c took row 2; a and b were evicted after c's batch, d took row 0, c left after d's.
    assert daemon.detector.streams.rows == {"d": 0}
    assert daemon.detector.streams.keys == ["d", "", ""]
    assert evicted_total(registry) == 3
    assert registry.get_sample_value("monitor_streams_tracked") == 1


def test_record_timestamps_do_not_decide_idleness():
    # The points are timestamped days apart, but arrive within the TTL by the wall clock.
    polls = [
        (T0, points("a", ts=T0 - 5 * 86_400)),
        (T0 + 50, points("a", ts=T0 - 86_400, offset=1)),
        (T0 + 100, {}),
    ]
    daemon, registry = run_daemon(polls, idle_ttl_seconds=60.0, eviction_interval_seconds=1.0)
    assert daemon.detector.streams.rows == {"a": 0}
    assert daemon.detector.state.count[0] == 2
    assert evicted_total(registry) == 0


def test_ttl_zero_disables_eviction():
    polls = [(T0, points("a", "b")), (T0 + 10 * 86_400, {}), (T0 + 100 * 86_400, {})]
    daemon, registry = run_daemon(polls, idle_ttl_seconds=0.0, eviction_interval_seconds=0.0)
    assert len(daemon.detector.streams) == 2
    assert evicted_total(registry) == 0
    assert registry.get_sample_value("monitor_streams_tracked") == 2


def test_a_new_stream_in_an_evicted_row_starts_fresh():
    old = [(T0 + i, points("old", ts=T0 + 60 * i, offset=i)) for i in range(20)]
    polls = [
        *old,
        (T0 + 1000, {}),
        (T0 + 1001, points("new", ts=T0 + 60_000, offset=20)),
    ]
    daemon, registry = run_daemon(polls, idle_ttl_seconds=600.0, eviction_interval_seconds=60.0)
    detector = daemon.detector
    assert detector.streams.rows == {"new": 0}
    assert detector.state.count[0] == 1  # its warm-up starts over
    assert detector.state.events[0] == 0
    assert registry.get_sample_value("monitor_stream_value", {"stream": "new"}) == 1.0
    assert registry.get_sample_value("monitor_stream_value", {"stream": "old"}) is None
    assert registry.get_sample_value("monitor_anomaly_events_total", {"stream": "new"}) == 0


def test_points_of_new_streams_beyond_the_limit_are_dropped_with_a_warning_a_minute(caplog):
    caplog.set_level(logging.WARNING, logger="monitor.daemon")
    polls = [
        (T0, points("a", "b", "c")),
        (T0 + 30, points("d", offset=3)),  # within a minute of the first warning: silent
        (T0 + 60, points("e", "f", offset=4)),
        (T0 + 61, points("a", offset=6)),  # a known stream: nothing dropped, no warning
    ]
    daemon, registry = run_daemon(polls, max_streams=1, idle_ttl_seconds=0.0)
    dropped = {"reason": "too_many_streams"}
    assert registry.get_sample_value("monitor_points_dropped_total", dropped) == 5
    assert daemon.detector.streams.rows == {"a": 0}
    warnings = [r for r in caplog.records if "max_streams" in r.getMessage()]
    assert [r.levelno for r in warnings] == [logging.WARNING, logging.WARNING]
    assert warnings[0].getMessage() == (
        "streams.max_streams (1) reached: 2 points of new streams dropped in this batch as "
        "too_many_streams; idle eviction is off (next warning in 60s at the earliest)"
    )
    assert "2 points" in warnings[1].getMessage()


def test_eviction_makes_room_under_the_limit():
    polls = [
        (T0, points("a")),
        (T0 + 10, points("b", offset=1)),  # no room
        (T0 + 100, {}),  # a evicted
        (T0 + 110, points("b", offset=2)),
    ]
    daemon, registry = run_daemon(
        polls, max_streams=1, idle_ttl_seconds=60.0, eviction_interval_seconds=60.0
    )
    assert daemon.detector.streams.rows == {"b": 0}
    dropped = {"reason": "too_many_streams"}
    assert registry.get_sample_value("monitor_points_dropped_total", dropped) == 1
    assert evicted_total(registry) == 1
