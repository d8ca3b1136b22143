"""The consumer in a child process (``kafka.reader: process``) against the real broker.

Each test runs with both transports in the child; what it reads, where its listener runs,
what it commits and how it fails are checked against the broker with kafka-python.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from kafka import ConsumerRebalanceListener, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from monitor.config import MonitorConfig
from monitor.kafka.admin import ensure_topics
from monitor.kafka.reader import ProcessConsumer, ReadBatch, ReaderFailed
from monitor.kafka.record import ConsumerRecord
from monitor.kafka.transport import build_clients
from monitor.records.batch import BatchDecoder
from tests.daemon_settings import TEST_CONSUMER
from tests.probes import committed_offsets

pytestmark = pytest.mark.integration

N = 90
TRANSPORTS = ["kafka-python", "confluent"]


def reader_config(bootstrap: str, group: str, transport: str, **kafka: Any) -> MonitorConfig:
    return MonitorConfig.model_validate(
        {
            "kafka": {
                "bootstrap_servers": bootstrap,
                "group_id": group,
                "transport": transport,
                "reader": "process",
                **TEST_CONSUMER,
                **kafka,
            }
        }
    )


def produce(bootstrap: str, topic: str, count: int = N) -> dict[int, list[bytes]]:
    """``count`` keyed records; the values written to each partition, in order."""
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    futures = [
        (producer.send(topic, key=b"k%d" % (i % 7), value=b"v%d" % i), b"v%d" % i)
        for i in range(count)
    ]
    producer.flush()
    written: dict[int, list[tuple[int, bytes]]] = {}
    for future, value in futures:
        metadata = future.get(timeout=10)
        written.setdefault(metadata.partition, []).append((metadata.offset, value))
    producer.close()
    return {p: [v for _, v in sorted(rows)] for p, rows in written.items()}


def poll_until(
    consumer: ProcessConsumer, count: int, timeout: float = 60.0
) -> dict[TopicPartition, list[ConsumerRecord]]:
    collected: dict[TopicPartition, list[ConsumerRecord]] = {}
    deadline = time.monotonic() + timeout
    while sum(map(len, collected.values())) < count and time.monotonic() < deadline:
        for partition, records in consumer.poll(timeout_ms=200).items():
            collected.setdefault(partition, []).extend(records)
    return collected


class Recorder(ConsumerRebalanceListener):
    """Records the calls, each with the batches returned so far; on assignment seeks one
    partition to offset 5 and commits offset 3 of another (synchronously)."""

    def __init__(self, consumer: ProcessConsumer, seek: TopicPartition, commit: TopicPartition):
        self.consumer, self.seek_to, self.commit_at = consumer, seek, commit
        self.calls: list[tuple[str, set[Any]]] = []

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.calls.append(("assigned", set(assigned)))
        self.consumer.seek(self.seek_to, 5)
        self.consumer.commit({self.commit_at: OffsetAndMetadata(3, "", -1)})

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.calls.append(("revoked", set(revoked)))


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_reads_every_record_runs_the_listener_here_and_commits(broker, topic_name, transport):
    bootstrap = broker.bootstrap_servers
    ensure_topics(bootstrap, {topic_name: 2})
    written = produce(bootstrap, topic_name)
    p0, p1 = TopicPartition(topic_name, 0), TopicPartition(topic_name, 1)
    assert len(written[0]) > 5 and len(written[1]) > 3
    group = f"{topic_name}-g"
    consumer = ProcessConsumer(reader_config(bootstrap, group, transport))
    try:
        listener = Recorder(consumer, seek=p0, commit=p1)
        consumer.subscribe(topics=[topic_name], listener=listener)
        records = poll_until(consumer, N - 5 - 3)
        # The listener ran in this process, before any record, with both partitions
        # (kafka-python first revokes the empty set).
        calls = [call for call in listener.calls if call != ("revoked", set())]
        assert calls == [("assigned", {p0, p1})]
        assert all(isinstance(r, ConsumerRecord) for rs in records.values() for r in rs)
        # Partition 0 starts where the listener sought it, partition 1 at the offset
        # the listener committed.
        assert [r.value for r in records[p0]] == written[0][5:]
        assert [r.offset for r in records[p0]] == list(range(5, len(written[0])))
        assert [r.value for r in records[p1]] == written[1][3:]
        assert {r.topic for rs in records.values() for r in rs} == {topic_name}
        # The listener's commit is synchronous: in the group already.
        assert committed_offsets(bootstrap, group, topic_name, [1]) == [3]
        # A commit between batches is sent without waiting, and lands.
        consumer.commit({p0: OffsetAndMetadata(len(written[0]), "", -1)})
        deadline = time.monotonic() + 10
        while committed_offsets(bootstrap, group, topic_name, [0]) != [len(written[0])]:
            assert time.monotonic() < deadline, "the commit between batches never landed"
            time.sleep(0.2)
        # Lag figures come from the child's last report.
        assert consumer.assignment() == {p0, p1}
        assert consumer.highwater(p1) == len(written[1])
        assert consumer.position(p1) == len(written[1])
        assert consumer.last_read() is not None
    finally:
        consumer.close(autocommit=False)
    assert not consumer._process.is_alive()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_commit_before_close_is_in_the_group_when_close_returns(broker, topic_name, transport):
    bootstrap = broker.bootstrap_servers
    ensure_topics(bootstrap, {topic_name: 1})
    produce(bootstrap, topic_name, 20)
    p0 = TopicPartition(topic_name, 0)
    group = f"{topic_name}-g"
    consumer = ProcessConsumer(reader_config(bootstrap, group, transport))
    try:
        consumer.subscribe(topics=[topic_name])
        assert sum(map(len, poll_until(consumer, 20).values())) == 20
        consumer.commit({p0: OffsetAndMetadata(17, "", -1)})
    finally:
        consumer.close(autocommit=False)
    assert committed_offsets(bootstrap, group, topic_name, [0]) == [17]


def test_reads_at_most_the_allowed_batches_ahead(broker, topic_name):
    bootstrap = broker.bootstrap_servers
    ensure_topics(bootstrap, {topic_name: 1})
    produce(bootstrap, topic_name, 200)
    p0 = TopicPartition(topic_name, 0)
    config = reader_config(
        bootstrap,
        f"{topic_name}-g",
        "kafka-python",
        max_poll_records=10,
        reader_batches_ahead=2,
    )
    consumer = ProcessConsumer(config)
    try:
        consumer.subscribe(topics=[topic_name])
        first: dict[TopicPartition, list[ConsumerRecord]] = {}
        while not first:
            first = consumer.poll(timeout_ms=200)
        time.sleep(1.5)  # time to read everything, were it not held back
        returned = len(first[p0])
        while True:
            batch = consumer.poll(timeout_ms=0)
            if not batch:
                break
            returned += len(batch[p0])
            # The child's position, reported with each batch, stays within two batches
            # of what this side has taken.
            position = consumer.position(p0)
            assert position is not None and position <= returned + 2 * 10
        assert returned < 200
    finally:
        consumer.close(autocommit=False)


def test_a_dead_reader_is_an_error_not_an_empty_poll(broker, topic_name):
    ensure_topics(broker.bootstrap_servers, {topic_name: 1})
    consumer = ProcessConsumer(reader_config(broker.bootstrap_servers, "g", "kafka-python"))
    try:
        consumer.subscribe(topics=[topic_name])
        consumer._process.kill()
        consumer._process.join()
        with pytest.raises(ReaderFailed, match="exited"):
            for _ in range(50):
                consumer.poll(timeout_ms=100)
    finally:
        consumer.close(autocommit=False)


def test_the_childs_log_lines_reach_this_processs_loggers(broker, topic_name, caplog):
    ensure_topics(broker.bootstrap_servers, {topic_name: 1})
    caplog.set_level(logging.INFO)  # the child takes this process's root level
    consumer = ProcessConsumer(reader_config(broker.bootstrap_servers, "g", "kafka-python"))
    try:
        consumer.subscribe(topics=[topic_name])
        deadline = time.monotonic() + 30
        while not any(r.name.startswith("kafka") for r in caplog.records):
            assert time.monotonic() < deadline, "no log line of the child's kafka-python"
            consumer.poll(timeout_ms=200)
    finally:
        consumer.close(autocommit=False)


def test_build_clients_runs_the_consumer_where_kafka_reader_says(broker):
    consumer, producer = build_clients(reader_config(broker.bootstrap_servers, "g", "confluent"))
    try:
        assert isinstance(consumer, ProcessConsumer)
    finally:
        consumer.close(autocommit=False)
        producer.close()  # type: ignore[attr-defined]


def test_an_unreachable_cluster_fails_at_start_like_an_inline_consumer():
    from monitor.kafka.exceptions import KafkaSetupError

    config = reader_config("127.0.0.1:9", "g", "kafka-python", reader="process")
    with pytest.raises(KafkaSetupError, match="cannot connect to Kafka at 127.0.0.1:9"):
        ProcessConsumer(config)


@pytest.mark.parametrize(
    ("transport", "decode_in", "decoded"),
    [
        ("confluent", "auto", True),
        ("kafka-python", "auto", False),
        ("kafka-python", "reader", True),
        ("confluent", "daemon", False),
    ],
)
def test_the_child_decodes_the_batches_when_kafka_decode_in_says(
    broker, topic_name, transport, decode_in, decoded
):
    bootstrap = broker.bootstrap_servers
    ensure_topics(bootstrap, {topic_name: 2})
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    sent = []
    for i in range(N):
        value = b'{"stream": "s%d", "ts": %d, "value": %d}' % (i % 5, 1_700_000_000 + i, i)
        value = b"{" if i == 40 else value
        sent.append((producer.send(topic_name, key=b"k%d" % (i % 3), value=value), value))
    producer.flush()
    produced = {(f.get().partition, f.get().offset): value for f, value in sent}
    producer.close()
    config = reader_config(bootstrap, f"{topic_name}-g", transport, decode_in=decode_in)
    decode = BatchDecoder.for_config(config)
    consumer = ProcessConsumer(config)
    try:
        consumer.subscribe(topics=[topic_name])
        read, rejected = 0, []
        deadline = time.monotonic() + 60
        while read < N and time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=200)
            if not batch:
                continue
            assert isinstance(batch, ReadBatch)
            values = [
                (p.topic, [produced[(p.partition, r.offset)] for r in records])
                for p, records in batch.items()
            ]
            read += sum(len(v) for _, v in values)
            if not decoded:
                assert batch.columns is None
                assert [r.value for rs in batch.values() for r in rs] == [
                    v for _, vs in values for v in vs
                ]
                continue
            # The child sent the values of the rejected records only.
            assert [r.value for rs in batch.values() for r in rs if r.value is not None] == [
                v for _, vs in values for v in vs if v == b"{"
            ]
            # What the child sent is what decoding the batch here gives.
            assert batch.columns is not None
            expected = decode(values)
            assert list(batch.columns.keys) == expected.keys
            assert list(batch.columns.names) == expected.names
            assert list(batch.columns.labels) == expected.labels
            assert batch.columns.ts.tolist() == expected.ts.tolist()
            assert batch.columns.values.tolist() == expected.values.tolist()
            assert batch.columns.records.tolist() == expected.records.tolist()
            assert batch.columns.counts == expected.counts
            assert batch.columns.rejected == expected.rejected
            rejected += [reason for reason, _, _ in batch.columns.rejected]
        assert read == N
        assert rejected == (["not_json"] if decoded else [])
    finally:
        consumer.close(autocommit=False)
