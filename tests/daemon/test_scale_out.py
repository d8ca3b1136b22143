"""Scale-out: two daemons in one consumer group split the partitions and own disjoint streams."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry

from monitor.config import MonitorConfig
from monitor.daemon.loop import Daemon
from monitor.daemon.runner import build_daemon
from monitor.demo.feed import feed_order
from monitor.demo.synthetic import make_fleet
from monitor.kafka.admin import ensure_topics
from monitor.replay import encode_native
from tests.daemon.test_integration import TRANSPORTS
from tests.daemon_settings import TEST_CONSUMER
from tests.probes import committed_offsets

pytestmark = pytest.mark.integration

PARTITIONS = 4
STREAMS = 40
POINTS = 30


def wait_for(condition, timeout: float = 90.0) -> bool:
    """Poll ``condition`` every 0.1 s until it holds or ``timeout`` passes; return it."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    return bool(condition())


def partitions_of(daemon: Daemon) -> set[int]:
    return {p.partition for p in daemon.consumer.assignment()}


def counter(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def daemon_config(
    bootstrap: str, topic_name: str, tmp_path, transport: str, reader: str, **state: Any
) -> MonitorConfig:
    """The daemons' configuration: test timings, checkpoints under ``tmp_path``."""
    return MonitorConfig.model_validate_json(
        json.dumps(
            {
                "kafka": {
                    "bootstrap_servers": bootstrap,
                    "group_id": f"{topic_name}-group",
                    "topics": [topic_name],
                    "transport": transport,
                    "reader": reader,
                    **TEST_CONSUMER,
                },
                "events": {"topic": f"{topic_name}-events", "log": False},
                "dead_letter": {"topic": f"{topic_name}-dlq"},
                "metrics": {"port": 0},
                "state": {"dir": str(tmp_path / "state"), **state},
            }
        )
    )


@pytest.mark.parametrize("reader", ["process", "inline"])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_two_daemons_split_the_partitions_and_score_each_stream_once(
    broker, topic_name, tmp_path, transport, reader
):
    bootstrap = broker.bootstrap_servers
    ensure_topics(bootstrap, {topic_name: PARTITIONS})
    config = daemon_config(bootstrap, topic_name, tmp_path, transport, reader)
    registries = [CollectorRegistry(), CollectorRegistry()]
    daemons = [build_daemon(config, registry)[0] for registry in registries]
    exit_codes: list[int] = []
    threads = [
        threading.Thread(target=lambda d=daemon: exit_codes.append(d.run())) for daemon in daemons
    ]
    for thread in threads:
        thread.start()
    try:
        # Both members joined: their assignments are disjoint, non-empty and cover the topic.
        def split() -> bool:
            first, second = (partitions_of(d) for d in daemons)
            return (
                bool(first and second)
                and not first & second
                and first | second == set(range(PARTITIONS))
            )

        assert wait_for(split), [partitions_of(d) for d in daemons]
        assigned = [partitions_of(d) for d in daemons]

        # Records keyed by stream, as every producer of the monitor keys them.
        series = make_fleet(STREAMS, POINTS, seed=5, season_length=10, anomalous_fraction=0.0)
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=10)
        futures = []
        series_index, point_index = feed_order(series)
        for s, p in zip(series_index.tolist(), point_index.tolist(), strict=True):
            item = series[s]
            value = encode_native(item.name, item.labels, float(item.ts[p]), float(item.values[p]))
            futures.append(
                (item.key, producer.send(topic_name, key=item.key.encode(), value=value))
            )
        producer.flush()
        partition_of: dict[str, set[int]] = {}
        for key, future in futures:
            partition_of.setdefault(key, set()).add(future.get(timeout=10).partition)
        producer.close()
        produced = len(futures)
        assert all(len(partitions) == 1 for partitions in partition_of.values())
        records_in = {
            number: POINTS * sum(1 for p in partition_of.values() if p == {number})
            for number in range(PARTITIONS)
        }

        def consumed() -> float:
            return sum(
                counter(r, "monitor_records_consumed_total", topic=topic_name) for r in registries
            )

        assert wait_for(lambda: consumed() >= produced), consumed()
        assert [partitions_of(d) for d in daemons] == assigned  # no rebalance meanwhile
    finally:
        for daemon in daemons:
            daemon.stop.set()
        for thread in threads:
            thread.join(timeout=60)
        for daemon in daemons:
            daemon.producer.close()  # type: ignore[attr-defined]
    assert exit_codes == [0, 0]
    assert consumed() == produced

    owned = [set(daemon.detector.streams.rows) for daemon in daemons]
    # Each stream is tracked by exactly one daemon; together they track every stream.
    assert not owned[0] & owned[1]
    assert owned[0] | owned[1] == set(partition_of)
    for registry, streams, partitions in zip(registries, owned, assigned, strict=True):
        # ... and only streams of the partitions it was assigned.
        assert streams
        assert all(partition_of[key] <= partitions for key in streams)
        # Every record of its partitions consumed and scored once, none of the others.
        expected = sum(records_in[number] for number in partitions)
        assert counter(registry, "monitor_records_consumed_total", topic=topic_name) == expected
        assert counter(registry, "monitor_points_scored_total") == expected


@pytest.mark.parametrize("reader", ["process", "inline"])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_revoked_partitions_are_committed_up_to_what_was_scored(
    broker, topic_name, tmp_path, transport, reader
):
    """The first daemon scores everything; its checkpoint round is not due for minutes,
    so the group's offsets are those committed when the second daemon's arrival revokes
    its partitions. (kafka-python 3 calls listeners on its IO thread, where that commit
    used to fail; the next owner then resumed from the checkpoint written on revoke.)"""
    bootstrap = broker.bootstrap_servers
    ensure_topics(bootstrap, {topic_name: PARTITIONS})
    config = daemon_config(
        bootstrap, topic_name, tmp_path, transport, reader, checkpoint_interval_seconds=600
    )
    series = make_fleet(STREAMS, POINTS, seed=7, season_length=10, anomalous_fraction=0.0)
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=10)
    for item in series:
        for ts, value in zip(item.ts.tolist(), item.values.tolist(), strict=True):
            producer.send(
                topic_name,
                key=item.key.encode(),
                value=encode_native(item.name, item.labels, ts, value),
            )
    producer.flush()
    producer.close()
    produced = STREAMS * POINTS

    registries = [CollectorRegistry(), CollectorRegistry()]
    daemons = [build_daemon(config, registry)[0] for registry in registries]
    exit_codes: list[int] = []
    threads = [
        threading.Thread(target=lambda d=daemon: exit_codes.append(d.run())) for daemon in daemons
    ]
    consumed = [
        lambda r=registry: counter(r, "monitor_records_consumed_total", topic=topic_name)
        for registry in registries
    ]
    try:
        threads[0].start()
        assert wait_for(lambda: consumed[0]() >= produced), consumed[0]()
        threads[1].start()
        assert wait_for(lambda: bool(partitions_of(daemons[1]))), "the second never joined"
        assert wait_for(lambda: len(partitions_of(daemons[0])) < PARTITIONS)
        time.sleep(2.0)  # time to read whatever it would replay
        committed = committed_offsets(
            bootstrap, config.kafka.group_id, topic_name, range(PARTITIONS)
        )
    finally:
        for daemon in daemons:
            daemon.stop.set()
        for thread in threads:
            if thread.is_alive():
                thread.join(timeout=60)
        for daemon in daemons:
            daemon.producer.close()  # type: ignore[attr-defined]
    assert exit_codes == [0, 0]
    assert consumed[0]() == produced
    assert consumed[1]() == 0
    assert None not in committed and sum(committed) == produced, committed
