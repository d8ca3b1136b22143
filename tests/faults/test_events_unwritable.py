"""The events topic unwritable: offsets are not committed past undelivered events.

A real broker behind the loopback proxy, a real ``monitor run`` process. While the
proxy resets every connection on which the daemon's client sends a produce request
(its fetches, commits and heartbeats go through), the daemon scores a spike it
cannot deliver as an event. Its group's committed offset, read by a separate
consumer, never passes the spike; the daemon keeps retrying, scoring nothing new
meanwhile, and stays up. Once
produce requests go through again the event arrives and the offsets advance to
the end.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from monitor.kafka.admin import ensure_topics
from monitor.kafka.broker import EmbeddedBroker
from monitor.kafka.ports import free_port
from monitor.replay import encode_native
from tests.daemon_settings import TEST_CONSUMER
from tests.faults.daemon_process import DaemonProcess
from tests.faults.proxy import TcpProxy
from tests.probes import committed_offsets, total, wait_for

pytestmark = pytest.mark.integration

PRODUCE = 0  # Kafka's API key of produce requests
CLIENT_ID = "monitor-under-test"
T0 = 1_700_000_000.0
WARM = 400
AFTER = 60
SPIKE_AT = 10  # index in the records produced during the fault
MORE = 20  # records produced while the daemon retries


def produce(bootstrap: str, topic: str, values: list[float], start: int) -> list[int]:
    """Produce one stream's points at steps ``start...``; return their offsets."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="test-feed", acks="all")
    try:
        futures = [
            producer.send(topic, encode_native("unwritable.s", (), T0 + 60.0 * (start + i), v))
            for i, v in enumerate(values)
        ]
        producer.flush(timeout=60)
        return [f.get(timeout=30).offset for f in futures]
    finally:
        producer.close()


def committed(bootstrap: str, group: str, topic: str) -> int:
    return committed_offsets(bootstrap, group, topic, [0])[0] or 0


def read_all(bootstrap: str, topic: str) -> list[dict]:
    reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    try:
        partition = TopicPartition(topic, 0)
        reader.assign([partition])
        reader.seek_to_beginning(partition)
        records = []
        for _ in range(10):
            for batch in reader.poll(timeout_ms=300).values():
                records.extend(batch)
        return [json.loads(r.value) for r in records]
    finally:
        reader.close()


def test_offsets_wait_for_undelivered_events(tmp_path: Path) -> None:
    broker_port = free_port()
    topic, events, group = "unwritable-metrics", "unwritable-events", "unwritable-group"
    with (
        TcpProxy("127.0.0.1", broker_port) as proxy,
        EmbeddedBroker(
            broker_port, log_path=tmp_path / "tansu.log", advertised=proxy.address
        ) as _broker,
    ):
        bootstrap = proxy.address
        ensure_topics(bootstrap, {topic: 1, events: 1, "unwritable-dlq": 1})
        warm = [20.0 + 0.5 * ((i * 7919) % 11 - 5) / 5 for i in range(WARM)]
        produce(bootstrap, topic, warm, 0)
        settings = {
            "kafka": {
                "bootstrap_servers": bootstrap,
                "client_id": CLIENT_ID,
                "group_id": group,
                "topics": [topic],
                **TEST_CONSUMER,
                "poll_timeout_ms": 200,
            },
            "events": {"topic": events},
            "dead_letter": {"topic": "unwritable-dlq"},
            "state": {"dir": str(tmp_path / "state"), "checkpoint_interval_seconds": 1.0},
            "detector": {"warmup": 100},
        }
        with DaemonProcess(settings, tmp_path) as daemon:
            daemon.wait_metric(
                lambda s: total(s, "monitor_points_scored_total") >= WARM, 90, "warm-up scored"
            )
            wait_for(lambda: committed(bootstrap, group, topic) == WARM, 60, "warm-up committed")
            assert total(daemon.scrape() or {}, "monitor_events_emitted_total") == 0

            proxy.refuse_requests(PRODUCE, client_id=CLIENT_ID)
            later = [20.0 + 0.5 * ((i * 7919) % 11 - 5) / 5 for i in range(AFTER)]
            later[SPIKE_AT] = 80.0
            offsets = produce(bootstrap, topic, later, WARM)
            spike_offset = offsets[SPIKE_AT]
            daemon.wait_metric(
                lambda s: total(s, "monitor_delivery_failures_total", topic=events) >= 3,
                90,
                "the spike's event failing delivery again and again",
            )
            # Batches sent within a second of the failed one may be scored too; then
            # the loop waits on the retries: records produced now are not scored.
            scored = total(daemon.scrape() or {}, "monitor_points_scored_total")
            produce(bootstrap, topic, [20.0] * MORE, WARM + AFTER)
            # Retrying, not crashing; and nothing committed past the undelivered event.
            for _ in range(3):
                assert daemon.alive
                assert committed(bootstrap, group, topic) <= spike_offset
                time.sleep(1.5)
            samples = daemon.scrape() or {}
            assert total(samples, "monitor_events_emitted_total") == 0
            assert total(samples, "monitor_points_scored_total") == scored <= WARM + AFTER
            assert not [e for e in read_all(bootstrap, events) if e["stream"] == "unwritable.s"]
            assert "not delivered" in daemon.output()

            proxy.restore()
            daemon.wait_metric(
                lambda s: total(s, "monitor_events_emitted_total") >= 1,
                120,
                "the event delivered after the fault",
            )
            wait_for(
                lambda: committed(bootstrap, group, topic) == WARM + AFTER + MORE,
                60,
                "the offsets to advance to the end",
            )
            delivered = [e for e in read_all(bootstrap, events) if e["stream"] == "unwritable.s"]
            assert any(
                e["source"]["offset"] == spike_offset and e["value"] == 80.0 for e in delivered
            )
            assert daemon.terminate() == 0, daemon.output()[-4000:]
