"""``monitor_kafka_up``: 0 after ``down_after`` seconds without a read, 1 again on the next."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry

from monitor.config.schema import KafkaConfig
from monitor.daemon.health import KafkaHealth, down_after, watch_kafka
from monitor.metrics import DaemonMetrics
from tests.daemon.fakes import FakeConsumer


class Client:
    def __init__(self) -> None:
        self.now = 1000.0
        self.last: float | None = None

    def clock(self) -> float:
        return self.now

    def last_read(self) -> float | None:
        return self.last


def test_outage_reads_zero_and_logs_both_transitions(caplog: pytest.LogCaptureFixture) -> None:
    client = Client()
    health = KafkaHealth(client.last_read, 10.0, clock=client.clock, wall_clock=lambda: 0.0)
    client.last = 1005.0
    client.now = 1014.9
    assert health.value() == 1.0
    with caplog.at_level(logging.INFO, logger="monitor.daemon"):
        client.now = 1015.0
        assert health.value() == 0.0
        assert health.value() == 0.0  # logged once
        client.now = 1040.0
        client.last = 1040.0
        assert health.value() == 1.0
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith("kafka unreachable since 1969-12-31T23:59:")
    assert messages[1] == "kafka reachable again after 35 s"


def test_silence_from_the_start_counts_when_nothing_was_ever_read() -> None:
    client = Client()
    health = KafkaHealth(client.last_read, 10.0, clock=client.clock)
    client.now += 9.9
    assert health.check()
    client.now += 0.1
    assert not health.check()


def test_a_read_older_than_the_start_counts_from_the_start() -> None:
    client = Client()
    client.last = 0.0
    health = KafkaHealth(client.last_read, 10.0, clock=client.clock)
    client.now += 5
    assert health.check()


def test_down_after_must_be_positive() -> None:
    with pytest.raises(ValueError, match="down_after"):
        KafkaHealth(lambda: None, 0.0)


def test_down_after_follows_the_session_timeout() -> None:
    assert down_after(KafkaConfig(session_timeout_ms=45_000, heartbeat_interval_ms=3000)) == 45.0


def test_gauge_is_computed_at_scrape_time_from_a_kafka_python_client() -> None:
    from kafka.metrics import Metrics

    class Consumer:
        _metrics = Metrics()

    sensor = Consumer._metrics.sensor("bytes-received")
    registry = CollectorRegistry()
    metrics = DaemonMetrics(registry)
    health = watch_kafka(Consumer(), KafkaConfig(), metrics.kafka_up)
    assert health is not None
    sensor.record(10)
    assert registry.get_sample_value("monitor_kafka_up") == 1.0
    health.last_read = lambda: 0.0  # a last read long ago
    health._started = 0.0
    assert registry.get_sample_value("monitor_kafka_up") == 0.0


def test_a_client_that_cannot_be_judged_leaves_the_gauge_at_one() -> None:
    registry = CollectorRegistry()
    metrics = DaemonMetrics(registry)
    assert watch_kafka(FakeConsumer([], []), KafkaConfig(), metrics.kafka_up) is None
    assert registry.get_sample_value("monitor_kafka_up") == 1.0
