"""Shared fixtures: one embedded Kafka broker per test session, unique topic names."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.kafka.broker import EmbeddedBroker


@pytest.fixture(autouse=True)
def _run_in_a_temporary_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own empty working directory.

    Daemons built in tests write checkpoints to ``state.dir`` (``./state`` by
    default): they land there, never in the checkout, and no test restores
    another's state.
    """
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A tansu broker on a free loopback port, shared by the session's integration tests."""
    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=log_path) as running:
        yield running


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A topic name unique to this test (and this run): ``t-<test name>-<random>``."""
    base = re.sub(r"[^a-zA-Z0-9._-]+", "-", request.node.name).strip("-")[:80]
    return f"t-{base}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def read_topic(broker: EmbeddedBroker) -> Callable[..., list[Any]]:
    """Return ``read(topic, count, timeout=10.0)``: the first ``count`` records of a topic.

    Reads every partition from the beginning without a consumer group (no rebalance
    wait) and returns the kafka-python ``ConsumerRecord`` objects, partition by
    partition in offset order.
    """
    from kafka import KafkaConsumer, TopicPartition

    def read(topic: str, count: int, timeout: float = 10.0) -> list[Any]:
        consumer = KafkaConsumer(
            bootstrap_servers=broker.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        try:
            deadline = time.monotonic() + timeout
            partitions = consumer.partitions_for_topic(topic)
            while not partitions and time.monotonic() < deadline:
                time.sleep(0.05)
                partitions = consumer.partitions_for_topic(topic)
            assert partitions, f"topic {topic!r} has no partitions"
            assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(assigned)
            consumer.seek_to_beginning(*assigned)
            records: list[Any] = []
            while len(records) < count and time.monotonic() < deadline:
                for batch in consumer.poll(timeout_ms=200).values():
                    records.extend(batch)
            records.sort(key=lambda r: (r.partition, r.offset))
            return records
        finally:
            consumer.close()

    return read
