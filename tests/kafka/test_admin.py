"""ensure_topics against the embedded broker."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaAdminClient

from monitor.kafka.admin import ensure_topics
from monitor.kafka.broker import EmbeddedBroker
from monitor.kafka.exceptions import KafkaSetupError
from monitor.kafka.ports import free_port


def _partition_counts(bootstrap: str, names: list[str]) -> dict[str, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return {t["name"]: len(t["partitions"]) for t in admin.describe_topics(names)}
    finally:
        admin.close()


@pytest.mark.integration
def test_creates_missing_topics_with_partition_counts(
    broker: EmbeddedBroker, topic_name: str
) -> None:
    wanted = {f"{topic_name}-in": 4, f"{topic_name}-out": 1}
    created = ensure_topics(broker.bootstrap_servers, wanted)
    assert created == list(wanted)
    assert _partition_counts(broker.bootstrap_servers, list(wanted)) == wanted

    assert ensure_topics(broker.bootstrap_servers, wanted) == []
    assert _partition_counts(broker.bootstrap_servers, list(wanted)) == wanted


@pytest.mark.integration
def test_only_the_missing_topic_is_created(broker: EmbeddedBroker, topic_name: str) -> None:
    assert ensure_topics(broker.bootstrap_servers, {f"{topic_name}-a": 2}) == [f"{topic_name}-a"]
    both = {f"{topic_name}-a": 2, f"{topic_name}-b": 3}
    assert ensure_topics(broker.bootstrap_servers, both, client_id="test-admin") == [
        f"{topic_name}-b"
    ]


def test_unreachable_broker_raises_setup_error() -> None:
    port = free_port()  # nothing listens there
    started = time.monotonic()
    with pytest.raises(KafkaSetupError, match=f"127.0.0.1:{port}"):
        ensure_topics(f"127.0.0.1:{port}", {"metrics": 1}, bootstrap_timeout_ms=500)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("partitions", [0, -1, True, 1.5])
def test_rejects_bad_partition_counts(partitions: object) -> None:
    with pytest.raises(KafkaSetupError, match="partition count"):
        ensure_topics("127.0.0.1:1", {"metrics": partitions})  # type: ignore[dict-item]


def test_rejects_bad_replication_factor() -> None:
    with pytest.raises(KafkaSetupError, match="replication factor"):
        ensure_topics("127.0.0.1:1", {"metrics": 1}, replication_factor=0)
