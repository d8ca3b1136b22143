"""A rebalance listener that calls the consumer, on kafka-python 3 (which calls it on its
IO thread), against the real broker."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from monitor.kafka.admin import ensure_topics
from monitor.kafka.listener import callable_from_listener
from tests.probes import committed_offsets

pytestmark = pytest.mark.integration


class Committing(ConsumerRebalanceListener):
    """Commits offset 3 on assignment and on revocation; records where it ran."""

    def __init__(self, consumer: KafkaConsumer, partition: TopicPartition) -> None:
        self.consumer, self.partition = consumer, partition
        self.outcomes: list[tuple[str, str, Any]] = []

    def _commit(self, kind: str, offset: int) -> None:
        try:
            self.consumer.commit({self.partition: OffsetAndMetadata(offset, "", -1)})
            outcome: Any = "committed"
        except Exception as exc:  # noqa: BLE001 - recorded for the assertions
            outcome = exc
        self.outcomes.append((kind, threading.current_thread().name, outcome))

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._commit("assigned", 3)

    def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked:
            self._commit("revoked", 7)


@pytest.mark.parametrize("wrapped", [True, False], ids=["wrapped", "bare"])
def test_a_wrapped_listener_can_commit_where_a_bare_one_cannot(broker, topic_name, wrapped):
    bootstrap = broker.bootstrap_servers
    ensure_topics(bootstrap, {topic_name: 1})
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(10):
        producer.send(topic_name, b"v%d" % i)
    producer.flush()
    producer.close()
    partition = TopicPartition(topic_name, 0)
    group = f"{topic_name}-g"
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        enable_auto_commit=False,
    )
    listener = Committing(consumer, partition)
    consumer.subscribe(
        topics=[topic_name],
        listener=callable_from_listener(listener, consumer) if wrapped else listener,
    )
    deadline = time.monotonic() + 30
    while not listener.outcomes and time.monotonic() < deadline:
        consumer.poll(timeout_ms=200)
    consumer.close(autocommit=False)  # revokes through the listener
    kinds = [kind for kind, _, _ in listener.outcomes]
    assert kinds == ["assigned", "revoked"]
    if wrapped:
        assert [o for _, _, o in listener.outcomes] == ["committed", "committed"]
        assert all(thread == "rebalance-listener" for _, thread, _ in listener.outcomes)
        assert committed_offsets(bootstrap, group, topic_name, [0]) == [7]
    else:  # kafka-python's IO thread refuses the blocking call
        assert all(isinstance(o, RuntimeError) for _, _, o in listener.outcomes)
        assert all("IO thread" in str(o) for _, _, o in listener.outcomes)
