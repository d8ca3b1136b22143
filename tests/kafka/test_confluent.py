"""The confluent-kafka adapters against the real embedded broker, checked with kafka-python."""

from __future__ import annotations

import time
from typing import Any

import confluent_kafka
import pytest
from kafka import ConsumerRebalanceListener, TopicPartition
from kafka.errors import CommitFailedError
from kafka.structs import OffsetAndMetadata

from monitor.config.schema import KafkaConfig
from monitor.kafka.admin import ensure_topics
from monitor.kafka.confluent import (
    ConfluentConsumer,
    ConfluentProducer,
    ConsumerRecord,
    _offsets,
    _partition_runs,
    consumer_settings,
    producer_settings,
)
from monitor.kafka.exceptions import KafkaClientError
from monitor.kafka.ports import free_port
from tests.probes import committed_offsets

pytestmark = pytest.mark.integration

N = 60
KEYS = [f"stream-{i}".encode() for i in range(12)]


def produce(bootstrap_servers: str, topic: str) -> dict[int, list[bytes]]:
    """N keyed records through the adapter; the values written to each partition, in order."""
    producer = ConfluentProducer(
        producer_settings(KafkaConfig(bootstrap_servers=bootstrap_servers))
    )
    futures = [
        (producer.send(topic, value=b"v%d" % i, key=KEYS[i % len(KEYS)]), b"v%d" % i)
        for i in range(N)
    ]
    producer.flush()
    written: dict[int, list[tuple[int, bytes]]] = {}
    for future, value in futures:
        metadata = future.get(timeout=0)
        assert metadata.topic == topic
        written.setdefault(metadata.partition, []).append((metadata.offset, value))
    producer.close()
    return {p: [v for _, v in sorted(rows)] for p, rows in written.items()}


def consumer_for(bootstrap_servers: str, group: str) -> ConfluentConsumer:
    kafka = KafkaConfig(
        bootstrap_servers=bootstrap_servers,
        group_id=group,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    return ConfluentConsumer(consumer_settings(kafka), max_poll_records=kafka.max_poll_records)


def poll_until(
    consumer: ConfluentConsumer, done: Any, timeout: float = 60.0, max_records: int | None = None
) -> dict[TopicPartition, list[ConsumerRecord]]:
    """Poll, collecting records by partition, until ``done(collected)`` or the deadline."""
    collected: dict[TopicPartition, list[ConsumerRecord]] = {}
    deadline = time.monotonic() + timeout
    while not done(collected) and time.monotonic() < deadline:
        batch = consumer.poll(timeout_ms=200, max_records=max_records)
        if max_records is not None:
            assert sum(len(r) for r in batch.values()) <= max_records
        for partition, records in batch.items():
            collected.setdefault(partition, []).extend(records)
    return collected


class Recorder(ConsumerRebalanceListener):
    """Records the listener calls; on assignment, seeks one partition and commits another."""

    def __init__(self, consumer: ConfluentConsumer, seek: TopicPartition, commit: TopicPartition):
        self.consumer = consumer
        self.seek_to, self.commit_at = seek, commit
        self.calls: list[tuple[str, Any]] = []

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.calls.append(("assigned", set(assigned)))
        self.calls.append(("assignment", self.consumer.assignment()))
        self.consumer.seek(self.seek_to, 5)
        self.consumer.commit({self.commit_at: OffsetAndMetadata(3, "", -1)})
        self.calls.append(("position", self.consumer.position(self.seek_to)))

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.calls.append(("revoked", set(revoked)))


def _message(topic: str, partition: int, offset: int) -> confluent_kafka.Message:
    return confluent_kafka.Message(
        topic=topic, partition=partition, offset=offset, value=f"{topic}/{partition}@{offset}"
    )


def test_partition_runs_group_each_partition_in_order():
    messages = [
        _message("m", 0, 5),
        _message("m", 0, 6),
        _message("m", 2, 1),
        _message("m", 0, 7),
        _message("m", 1, 3),
    ]
    runs = {key: [m.offset() for m in run] for key, run in _partition_runs(messages)}
    assert runs == {("m", 0): [5, 6, 7], ("m", 2): [1], ("m", 1): [3]}


def test_partition_runs_of_a_consumer_of_one_topic_do_not_read_topics():
    messages = [_message("m", 1, 5), _message("m", 0, 2), _message("m", 1, 6)]
    runs = {key: [m.offset() for m in run] for key, run in _partition_runs(messages, "m")}
    assert runs == {("m", 1): [5, 6], ("m", 0): [2]}


def test_partition_runs_keep_topics_apart_on_the_same_partition_number():
    messages = [_message("a", 0, 1), _message("b", 0, 1), _message("a", 0, 2)]
    runs = {key: [m.offset() for m in run] for key, run in _partition_runs(messages)}
    assert runs == {("a", 0): [1, 2], ("b", 0): [1]}


def test_offsets_are_a_range_only_when_they_follow_one_another():
    following = [_message("m", 0, offset) for offset in (4, 5, 6)]
    assert _offsets(following) == range(4, 7)
    gap = [_message("m", 0, offset) for offset in (4, 6, 7)]  # compacted away, or a marker
    assert _offsets(gap) == [4, 6, 7]


def test_send_delivers_what_kafka_python_reads_back(broker, topic_name, read_topic):
    ensure_topics(broker.bootstrap_servers, {topic_name: 2})
    written = produce(broker.bootstrap_servers, topic_name)
    records = read_topic(topic_name, N)
    for partition, values in written.items():
        assert [r.value for r in records if r.partition == partition] == values
    assert {r.key for r in records} == set(KEYS)


def test_consumer_group_listener_seek_commit_highwater_and_close(broker, topic_name):
    bootstrap = broker.bootstrap_servers
    ensure_topics(bootstrap, {topic_name: 2})
    written = produce(bootstrap, topic_name)
    p0, p1 = TopicPartition(topic_name, 0), TopicPartition(topic_name, 1)
    assert len(written[0]) > 5 and len(written[1]) > 3
    group = f"{topic_name}-g"
    consumer = consumer_for(bootstrap, group)
    listener = Recorder(consumer, seek=p0, commit=p1)
    try:
        consumer.subscribe(topics=[topic_name], listener=listener)
        assert consumer.assignment() == set()
        consumer.commit()  # nothing consumed: nothing to commit
        assert consumer.highwater(p0) is None

        expected = len(written[0]) - 5 + len(written[1]) - 3
        got = poll_until(
            consumer, lambda c: sum(len(r) for r in c.values()) >= expected, max_records=7
        )

        # The listener ran inside poll, saw the new assignment, and its seek and commit
        # decided where each partition started.
        assert listener.calls[:3] == [
            ("assigned", {p0, p1}),
            ("assignment", {p0, p1}),
            ("position", 5),
        ]
        assert consumer.assignment() == {p0, p1}
        assert [r.offset for r in got[p0]] == list(range(5, len(written[0])))
        assert [r.offset for r in got[p1]] == list(range(3, len(written[1])))
        assert [r.value for r in got[p0]] == written[0][5:]
        record = got[p1][0]
        assert (record.topic, record.partition) == (topic_name, 1)
        assert record.key in KEYS and record.timestamp > 0
        for partition in (p0, p1):
            assert consumer.highwater(partition) == len(written[partition.partition])
            assert consumer.position(partition) == len(written[partition.partition])

        consumer.commit()
        assert committed_offsets(bootstrap, group, topic_name, [0, 1]) == [
            len(written[0]),
            len(written[1]),
        ]

        # Seeking back re-reads; committing explicit offsets stores exactly those.
        consumer.seek(p0, 0)
        again = poll_until(consumer, lambda c: len(c.get(p0, [])) >= len(written[0]))
        assert [r.offset for r in again[p0]] == list(range(len(written[0])))

        # Column by column, the reading child's way: the same records, keys and times.
        consumer.seek(p0, 0)
        polled: list[Any] = []
        deadline = time.monotonic() + 60
        while sum(len(p.offsets) for p in polled) < len(written[0]):
            assert time.monotonic() < deadline
            polled += consumer.poll_partitions(timeout_ms=200, max_records=7)
        assert {(p.topic, p.partition) for p in polled} == {(topic_name, 0)}
        assert [o for p in polled for o in p.offsets] == [r.offset for r in again[p0]]
        assert [v for p in polled for v in p.values] == written[0]
        assert [p.meta(i) for p in polled for i in range(len(p.offsets))] == [
            (r.key, r.timestamp) for r in again[p0]
        ]
        consumer.commit({p0: OffsetAndMetadata(2, "checkpoint", -1)})
        assert committed_offsets(bootstrap, group, topic_name, [0]) == [2]

        # A refused commit raises kafka-python's error, which the daemon retries on.
        missing = TopicPartition(f"{topic_name}-missing", 0)
        with pytest.raises(CommitFailedError, match="UNKNOWN_TOPIC_OR_PART"):
            consumer.commit({missing: OffsetAndMetadata(1, "", -1)})
    finally:
        consumer.close(autocommit=False)
    assert listener.calls[-1] == ("revoked", {p0, p1})
    assert consumer.assignment() == set()
    consumer.close()  # twice is harmless


def test_pattern_subscription_matches_from_the_start_of_the_name(broker, topic_name):
    bootstrap = broker.bootstrap_servers
    ensure_topics(bootstrap, {f"{topic_name}.a": 1, f"x{topic_name}.b": 1})
    produce(bootstrap, f"{topic_name}.a")
    produce(bootstrap, f"x{topic_name}.b")
    consumer = consumer_for(bootstrap, f"{topic_name}-g")
    try:
        consumer.subscribe(pattern=topic_name.replace(".", r"\.") + r"\..*")
        got = poll_until(consumer, lambda c: sum(len(r) for r in c.values()) >= N)
        assert {p.topic for p in consumer.assignment()} == {f"{topic_name}.a"}
        assert set(got) == {TopicPartition(f"{topic_name}.a", 0)}
        assert len(got[TopicPartition(f"{topic_name}.a", 0)]) == N
    finally:
        consumer.close(autocommit=False)


def test_failed_delivery_raises_from_get():
    # Nothing listens on the port: the message times out in the client and its
    # delivery report carries the error.
    producer = ConfluentProducer(
        {"bootstrap.servers": f"127.0.0.1:{free_port()}", "message.timeout.ms": 500}
    )
    future = producer.send("metrics", value=b"lost", key=b"k")
    producer.flush()
    assert future.is_done()
    with pytest.raises(KafkaClientError, match="delivery to metrics failed"):
        future.get(timeout=0)
    producer.close(timeout=0)


def test_message_over_the_size_limit_fails_its_future(broker, topic_name):
    ensure_topics(broker.bootstrap_servers, {topic_name: 1})
    producer = ConfluentProducer(
        {"bootstrap.servers": broker.bootstrap_servers, "message.max.bytes": 10_000}
    )
    too_large = producer.send(topic_name, value=b"x" * 20_000)
    fits = producer.send(topic_name, value=b"x" * 100)
    producer.flush()
    with pytest.raises(KafkaClientError, match="cannot send"):
        too_large.get(timeout=0)
    assert fits.get(timeout=0).offset >= 0
    producer.close()
