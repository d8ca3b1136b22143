"""The broker unreachable for 30 s: the daemon stays up, reports it, reconnects, loses nothing.

Two outages, each on a broker of its own (a paused broker would stall the session's
other tests, and the embedded broker keeps its data in memory, so it is never
restarted):

* the broker process paused with SIGSTOP, then resumed with SIGCONT;
* a loopback TCP proxy in front of the broker (which advertises the proxy) that
  resets every connection, and every new one, for 30 s.

The daemon is a real ``monitor run`` process (with the paused broker, on both
transports). During the outage ``monitor_kafka_up`` reads 0 and the log says
``kafka unreachable since``; afterwards it reads 1 again, the log says ``kafka
reachable again after``, the same process (no restart) has scored every record
produced before, during and after, and its group has committed every offset.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kafka import KafkaProducer

from monitor.kafka.admin import ensure_topics
from monitor.kafka.broker import EmbeddedBroker
from monitor.replay import encode_native
from tests.daemon_settings import TEST_CONSUMER
from tests.faults.daemon_process import DaemonProcess
from tests.faults.proxy import TcpProxy
from tests.probes import committed_offsets, total, wait_for

pytestmark = pytest.mark.integration

OUTAGE_S = 30.0
PARTITIONS = 3
STREAMS = 12
T0 = 1_700_000_000.0


class Feed:
    """Produces ``STREAMS`` streams, one point per stream per step, keyed by stream."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.steps = 0
        self.produced = 0

    def produce(self, steps: int) -> None:
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5, acks="all")
        try:
            for step in range(self.steps, self.steps + steps):
                for s in range(STREAMS):
                    name = f"outage.s{s}"
                    value = 10.0 + s + (step % 7) * 0.1
                    producer.send(
                        self.topic,
                        key=name.encode(),
                        value=encode_native(name, (), T0 + 60.0 * step, value),
                    )
            producer.flush(timeout=60)
        finally:
            producer.close()
        self.steps += steps
        self.produced += steps * STREAMS


def committed(bootstrap: str, group: str, topic: str) -> int:
    return sum(o or 0 for o in committed_offsets(bootstrap, group, topic, range(PARTITIONS)))


def settings(bootstrap: str, topic: str, state_dir: Path, transport: str) -> dict:
    return {
        "kafka": {
            "transport": transport,
            "bootstrap_servers": bootstrap,
            "group_id": f"{topic}-group",
            "topics": [topic],
            **TEST_CONSUMER,
            "poll_timeout_ms": 200,
        },
        "events": {"topic": f"{topic}-events"},
        "dead_letter": {"topic": f"{topic}-dlq"},
        "state": {"dir": str(state_dir), "checkpoint_interval_seconds": 1.0},
        "detector": {"warmup": 50},
    }


def run_outage(
    bootstrap: str,
    tmp_path: Path,
    fault: Callable[[], None],
    heal: Callable[[], None],
    transport: str = "kafka-python",
) -> None:
    topic = "outage-metrics"
    ensure_topics(bootstrap, {topic: PARTITIONS, f"{topic}-events": 1, f"{topic}-dlq": 1})
    feed = Feed(bootstrap, topic)
    feed.produce(60)
    config = settings(bootstrap, topic, tmp_path / "state", transport)
    with DaemonProcess(config, tmp_path) as daemon:
        pid = daemon.process.pid if daemon.process else None
        daemon.wait_metric(
            lambda s: (
                total(s, "monitor_points_scored_total") >= feed.produced
                and total(s, "monitor_kafka_up") == 1
            ),
            90,
            "the first records scored",
        )
        feed.produce(20)  # in flight when the outage begins
        fault()
        cut_at = time.monotonic()
        daemon.wait_metric(
            lambda s: total(s, "monitor_kafka_up") == 0, OUTAGE_S, "monitor_kafka_up to read 0"
        )
        wait_for(lambda: "kafka unreachable since" in daemon.output(), 10, "the outage log line")
        # The daemon stays up (and keeps serving /metrics) for the whole outage.
        while time.monotonic() - cut_at < OUTAGE_S:
            samples = daemon.scrape()
            assert samples is not None and total(samples, "monitor_kafka_up") == 0
            time.sleep(1.0)
        heal()
        feed.produce(40)  # after the outage: the daemon catches up
        samples = daemon.wait_metric(
            lambda s: (
                total(s, "monitor_points_scored_total") >= feed.produced
                and total(s, "monitor_kafka_up") == 1
            ),
            120,
            f"all {feed.produced} records scored after the outage",
        )
        wait_for(lambda: "kafka reachable again after" in daemon.output(), 10, "the recovery line")
        assert daemon.process is not None and daemon.process.pid == pid and daemon.alive
        # Every record is scored once; a replay after a failed commit is dropped as late.
        assert total(samples, "monitor_points_scored_total") == feed.produced
        assert total(samples, "monitor_records_consumed_total") >= feed.produced
        for s in range(STREAMS):
            last = 10.0 + s + ((feed.steps - 1) % 7) * 0.1
            assert total(samples, "monitor_stream_value", stream=f"outage.s{s}") == pytest.approx(
                last
            )
        wait_for(
            lambda: committed(bootstrap, f"{topic}-group", topic) == feed.produced,
            60,
            "every offset committed",
        )
        assert daemon.terminate() == 0, daemon.output()[-4000:]
    output = daemon.output()
    assert output.count("kafka unreachable since") == 1, output[-4000:]
    assert "stopped cleanly" in output, output[-4000:]


@contextmanager
def own_broker(
    tmp_path: Path, advertised: str | None = None, port: int | None = None
) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(port, log_path=tmp_path / "tansu.log", advertised=advertised) as broker:
        yield broker


# The confluent transport judges monitor_kafka_up from librdkafka's statistics.
@pytest.mark.parametrize("transport", ["kafka-python", "confluent"])
def test_broker_paused_with_sigstop_for_30s(tmp_path: Path, transport: str) -> None:
    with own_broker(tmp_path) as broker:
        pid = broker.pid
        assert pid is not None
        try:
            run_outage(
                broker.bootstrap_servers,
                tmp_path,
                fault=lambda: os.killpg(pid, signal.SIGSTOP),
                heal=lambda: os.killpg(pid, signal.SIGCONT),
                transport=transport,
            )
        finally:
            os.killpg(pid, signal.SIGCONT)


def test_every_connection_dropped_for_30s(tmp_path: Path) -> None:
    from monitor.kafka.ports import free_port

    broker_port = free_port()
    with TcpProxy("127.0.0.1", broker_port) as proxy:
        with own_broker(tmp_path, advertised=proxy.address, port=broker_port):
            run_outage(proxy.address, tmp_path, fault=proxy.drop_all, heal=proxy.restore)
            assert proxy.refused > 0  # the daemon kept trying to reconnect
