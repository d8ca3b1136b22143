"""The fast transport: confluent-kafka (librdkafka) clients shaped like kafka-python's.

:class:`ConfluentConsumer` and :class:`ConfluentProducer` present the methods the
daemon uses of kafka-python's ``KafkaConsumer`` and ``KafkaProducer`` (the
``Consumer`` and ``Producer`` protocols of :mod:`monitor.daemon.loop`), so the
loop runs unchanged on either library. Partitions are kafka-python
``TopicPartition`` tuples and offsets to commit are kafka-python
``OffsetAndMetadata``, in and out.

Installed with the ``fast`` extra: ``pip install 'monitor[fast]'``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import confluent_kafka
import numpy as np
import orjson
from confluent_kafka import KafkaError, KafkaException
from kafka import TopicPartition
from kafka.errors import CommitFailedError
from kafka.structs import OffsetAndMetadata

from monitor.config.schema import KafkaConfig
from monitor.kafka.client import librdkafka_settings
from monitor.kafka.exceptions import KafkaClientError
from monitor.kafka.record import ConsumerRecord, PolledPartition

log = logging.getLogger("monitor.kafka.confluent")

DEFAULT_MAX_POLL_RECORDS = 500
"""Records one :meth:`ConfluentConsumer.poll` returns at most, unless told (as kafka-python)."""

STATISTICS_INTERVAL_MS = 1000
"""How often librdkafka hands over its statistics (read for the time of the last read)."""

FETCH_MAX_BYTES = 52_428_800
MAX_PARTITION_FETCH_BYTES = 10_485_760


class RecordMetadata(NamedTuple):
    """Where a delivered message was written.

    >>> RecordMetadata("anomalies", 2, 17).offset
    17
    """

    topic: str
    partition: int
    offset: int


def consumer_settings(kafka: KafkaConfig) -> dict[str, Any]:
    """librdkafka properties of the daemon's consumer: manual commits, earliest offset.

    >>> settings = consumer_settings(KafkaConfig(group_id="g", session_timeout_ms=6000))
    >>> settings["group.id"], settings["enable.auto.commit"], settings["session.timeout.ms"]
    ('g', False, 6000)
    """
    return {
        **librdkafka_settings(kafka),
        "group.id": kafka.group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": kafka.session_timeout_ms,
        "heartbeat.interval.ms": kafka.heartbeat_interval_ms,
        "fetch.max.bytes": FETCH_MAX_BYTES,
        "max.partition.fetch.bytes": MAX_PARTITION_FETCH_BYTES,
        "fetch.wait.max.ms": kafka.fetch_max_wait_ms,
        # Keep fetching ahead while the loop scores: without it librdkafka waits for
        # round trips (measured ~160k records/s raw from tansu; with it above 1M/s).
        # The prefetch queue stays bounded by queued.max.messages.kbytes (64 MB).
        "queued.min.messages": 1_000_000,
        "enable.partition.eof": False,
    }


def producer_settings(kafka: KafkaConfig) -> dict[str, Any]:
    """librdkafka properties of the daemon's producer: acknowledged by all in-sync
    replicas, retried for up to two minutes (kafka-python's delivery timeout), in order.

    Not idempotent, as the kafka-python producer (:func:`monitor.kafka.client.producer_settings`):
    an idempotent producer can end in a fatal state after a lost connection and then fail
    every later send; the daemon retries whole messages, and a duplicate event carries the
    same ``event_id``.

    >>> settings = producer_settings(KafkaConfig())
    >>> settings["acks"], settings["enable.idempotence"], settings["linger.ms"]
    ('all', False, 5)
    """
    return {
        **librdkafka_settings(kafka),
        "acks": "all",
        "enable.idempotence": False,
        "max.in.flight.requests.per.connection": 1,
        "linger.ms": 5,
        "message.timeout.ms": 120_000,
    }


class LastRead:
    """When a librdkafka client last read from any broker, from its statistics.

    librdkafka reports per broker ``rxidle``: microseconds since the last socket
    read (-1 before the first). Feed :meth:`on_stats` as the client's ``stats_cb``;
    calling the object gives that time on ``time.monotonic`` (``None`` before any
    read), as :func:`monitor.daemon.health.kafka_python_last_read` does for
    kafka-python clients.

    >>> last_read = LastRead()
    >>> last_read.on_stats('{"brokers": {"b:9092/1": {"rxidle": -1}}}'); last_read() is None
    True
    >>> last_read.on_stats('{"brokers": {"b:9092/1": {"rxidle": 2000000}}}')
    >>> 1.9 < time.monotonic() - last_read() < 2.5
    True
    """

    def __init__(self) -> None:
        self.at: float | None = None

    def on_stats(self, statistics: str) -> None:
        """Take the newest read out of one statistics report (JSON)."""
        try:
            brokers = orjson.loads(statistics).get("brokers") or {}
            idle = [b["rxidle"] for b in brokers.values() if b.get("rxidle", -1) >= 0]
        except (orjson.JSONDecodeError, AttributeError, TypeError):
            log.debug("unreadable librdkafka statistics")
            return
        if idle:
            at = time.monotonic() - min(idle) / 1e6
            if self.at is None or at > self.at:
                self.at = at

    def __call__(self) -> float | None:
        return self.at


def _with_statistics(settings: Mapping[str, Any], last_read: LastRead) -> dict[str, Any]:
    return {
        "logger": log,
        "statistics.interval.ms": STATISTICS_INTERVAL_MS,
        "stats_cb": last_read.on_stats,
        **settings,
    }


class ConfluentConsumer:
    """A confluent-kafka consumer with the kafka-python methods the daemon uses.

    Rebalance listeners (kafka-python ``ConsumerRebalanceListener``) are called from
    inside :meth:`poll`, as kafka-python does. While ``on_partitions_assigned`` runs,
    :meth:`assignment` is the new assignment, :meth:`seek` sets where a new partition
    starts (instead of its committed offset) and :meth:`commit` with offsets commits
    synchronously. ``on_partitions_revoked`` runs before the partitions are given up,
    so the listener may still commit them.

    Parameters
    ----------
    settings
        librdkafka properties (``bootstrap.servers``, ``group.id``, ...); see
        :func:`consumer_settings`.
    max_poll_records
        Records one :meth:`poll` returns at most when it is not told.

    Examples
    --------
    >>> consumer = ConfluentConsumer({"bootstrap.servers": "127.0.0.1:9", "group.id": "doc"})
    >>> consumer.assignment(), consumer.highwater(TopicPartition("metrics", 0))
    (set(), None)
    >>> consumer.close(autocommit=False)
    """

    def __init__(
        self, settings: Mapping[str, Any], max_poll_records: int = DEFAULT_MAX_POLL_RECORDS
    ) -> None:
        self.max_poll_records = max_poll_records
        self.last_read = LastRead()
        """Time of the last read from a broker (served by :meth:`poll`), for the health gauge."""
        self._consumer = confluent_kafka.Consumer(_with_statistics(settings, self.last_read))
        self._listener: Any = None
        self._pending: dict[tuple[str, int], confluent_kafka.TopicPartition] | None = None
        self._partitions: dict[tuple[str, int], TopicPartition] = {}
        # Kept here from the rebalance callbacks: librdkafka's assignment() waits on its
        # own thread, and blocks while another thread of this process is in poll().
        self._assigned: frozenset[TopicPartition] = frozenset()
        self._only_topic: str | None = None
        """The topic of every message, when subscribed to one topic by name."""
        self._closed = False

    @classmethod
    def from_config(cls, kafka: KafkaConfig) -> ConfluentConsumer:
        """The daemon's consumer for ``kafka`` (see :func:`consumer_settings`)."""
        return cls(consumer_settings(kafka), max_poll_records=kafka.max_poll_records)

    # Subscription and rebalances ------------------------------------------------------------

    def subscribe(self, topics: Any = (), pattern: str | None = None, listener: Any = None) -> None:
        """Subscribe to ``topics``, or to the topics matching the regex ``pattern``.

        As in kafka-python, ``pattern`` matches from the start of a topic name.
        """
        if pattern is not None:
            names = [pattern if pattern.startswith("^") else f"^{pattern}"]
        else:
            names = [topics] if isinstance(topics, str) else list(topics)
        if not names:
            raise ValueError("subscribe to at least one topic or a pattern")
        self._listener = listener
        self._only_topic = names[0] if pattern is None and len(names) == 1 else None
        self._consumer.subscribe(
            names, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )

    def _on_assign(self, _: Any, partitions: list[confluent_kafka.TopicPartition]) -> None:
        """Call the listener, then take the partitions, starting where it sought them to."""
        self._pending = {(p.topic, p.partition): p for p in partitions}
        try:
            if self._listener is not None:
                self._listener.on_partitions_assigned(self._kafka_partitions(partitions))
        finally:
            assigned = list(self._pending.values())
            self._pending = None
            self._consumer.assign(assigned)
            self._assigned = frozenset(self._kafka_partitions(assigned))

    def _on_revoke(self, _: Any, partitions: list[confluent_kafka.TopicPartition]) -> None:
        """Call the listener while the partitions are still ours, then give them up."""
        try:
            if self._listener is not None:
                self._listener.on_partitions_revoked(self._kafka_partitions(partitions))
        finally:
            self._consumer.unassign()
            self._assigned = frozenset()

    def _on_lost(self, _: Any, partitions: list[confluent_kafka.TopicPartition]) -> None:
        """Partitions taken away without a chance to commit (the session expired)."""
        try:
            if self._listener is not None:
                lost = getattr(self._listener, "on_partitions_lost", None)
                if lost is None:
                    lost = self._listener.on_partitions_revoked
                lost(self._kafka_partitions(partitions))
        finally:
            self._consumer.unassign()
            self._assigned = frozenset()

    def _kafka_partitions(self, partitions: Collection[Any]) -> set[TopicPartition]:
        return {self._partition(p.topic, p.partition) for p in partitions}

    def _partition(self, topic: str, number: int) -> TopicPartition:
        partition = self._partitions.get((topic, number))
        if partition is None:
            partition = self._partitions[(topic, number)] = TopicPartition(topic, number)
        return partition

    # Consuming ------------------------------------------------------------------------------

    def poll(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Records by partition: waits up to ``timeout_ms`` for the first, then takes what
        has arrived, at most ``max_records``.

        Message errors are logged and skipped; fatal ones raise
        :class:`~monitor.kafka.exceptions.KafkaClientError`.
        """
        return {
            self._partition(topic, number): [
                ConsumerRecord(topic, number, m.offset(), m.key(), m.value(), m.timestamp()[1])
                for m in messages
            ]
            for (topic, number), messages in self._poll_messages(timeout_ms, max_records).items()
        }

    def poll_partitions(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> list[PolledPartition]:
        """As :meth:`poll`, column by column, without a record object per message: the
        reading child's way (:mod:`monitor.kafka.reader`).

        A partition's offsets are a ``range`` when they follow one another (the usual
        case), so only its first and last message are asked for theirs.
        """
        messages = self._poll_batch(timeout_ms, max_records)
        if not messages:
            return []
        runs: Iterable[tuple[tuple[str, int], list[Any]]]
        if any(map(_ERROR, messages)):  # rare: one by one, errors logged and left out
            runs = self._grouped(messages).items()
        else:
            runs = _partition_runs(messages, self._only_topic)
        return [
            PolledPartition(
                topic, number, _offsets(messages), list(map(_VALUE, messages)), _meta_of(messages)
            )
            for (topic, number), messages in runs
        ]

    def _poll_messages(
        self, timeout_ms: int, max_records: int | None
    ) -> dict[tuple[str, int], list[Any]]:
        """The messages of one poll by (topic, partition), errors logged and left out
        (so their accessors, Optional for errors, return values)."""
        return self._grouped(self._poll_batch(timeout_ms, max_records))

    def _poll_batch(self, timeout_ms: int, max_records: int | None) -> list[Any]:
        """The messages of one poll as librdkafka hands them over, errors included."""
        limit = self.max_poll_records if max_records is None else max_records
        # consume(n, timeout) waits out the whole timeout unless n records arrive, so wait
        # for one record with poll() and take the rest of what is fetched already.
        try:
            first = self._consumer.poll(timeout_ms / 1000)
            if first is None:
                return []
            messages: list[Any] = [first]  # Message accessors are Optional only for errors
            if limit > 1:
                messages.extend(self._consumer.consume(limit - 1, 0))
        except KafkaException as exc:
            raise KafkaClientError(f"consumer failed: {exc}") from exc
        return messages

    def _grouped(self, messages: list[Any]) -> dict[tuple[str, int], list[Any]]:
        """``messages`` by (topic, partition), in order, errors logged and left out."""
        grouped: dict[tuple[str, int], list[Any]] = {}
        key: tuple[str, int] | None = None
        run: list[Any] = []
        for message in messages:
            if message.error() is not None:
                self._message_error(message)
                continue
            topic, number = message.topic(), message.partition()
            if (topic, number) != key:  # runs of one partition: one dict lookup per run
                key = (topic, number)
                run = grouped.setdefault(key, [])
            run.append(message)
        return grouped

    def _message_error(self, message: confluent_kafka.Message) -> None:
        error = message.error()
        assert error is not None
        if error.fatal():
            raise KafkaClientError(f"fatal consumer error: {error}")
        if error.code() == KafkaError._PARTITION_EOF:
            return
        log.warning(
            "consumer error on %s/%s: %s", message.topic(), message.partition(), error.str()
        )

    # Positions and commits ------------------------------------------------------------------

    def assignment(self) -> set[TopicPartition]:
        """The partitions assigned to this consumer (the new ones during a rebalance).

        Safe to call from another thread.
        """
        pending = self._pending
        if pending is not None:
            return {self._partition(*key) for key in pending}
        return set(self._assigned)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Consume ``partition`` from ``offset`` on (at the next poll)."""
        key = (partition.topic, partition.partition)
        if self._pending is not None and key in self._pending:
            self._pending[key] = confluent_kafka.TopicPartition(*key, offset)
            return
        try:
            self._consumer.seek(confluent_kafka.TopicPartition(*key, offset))
        except KafkaException as exc:
            raise KafkaClientError(f"cannot seek {key[0]}/{key[1]} to {offset}: {exc}") from exc

    def position(self, partition: TopicPartition, timeout_ms: int | None = None) -> int | None:
        """The offset of the next record to consume from ``partition``; None when unknown.

        Known locally once a record was consumed or a seek made; ``timeout_ms`` is
        accepted for kafka-python's signature and not needed.
        """
        key = (partition.topic, partition.partition)
        if self._pending is not None and key in self._pending:
            offset = self._pending[key].offset
        else:
            [found] = self._consumer.position([confluent_kafka.TopicPartition(*key)])
            offset = found.offset
        return offset if offset >= 0 else None

    def highwater(self, partition: TopicPartition) -> int | None:
        """The partition's end offset as of the last fetch; None when not fetched yet."""
        try:
            _, high = self._consumer.get_watermark_offsets(
                confluent_kafka.TopicPartition(partition.topic, partition.partition), cached=True
            )
        except KafkaException:
            return None
        return high if high >= 0 else None

    def commit(self, offsets: Mapping[TopicPartition, OffsetAndMetadata] | None = None) -> None:
        """Commit synchronously ``offsets``, or (None) the positions of every partition
        with a known position.

        Raises kafka-python's ``CommitFailedError`` when the commit fails (as during a
        rebalance or an outage), so callers handle it as with kafka-python.
        """
        if offsets is None:
            targets = self._positions()
        else:
            targets = [_offset_to_commit(tp, meta) for tp, meta in offsets.items()]
        if not targets:
            return
        try:
            result = self._consumer.commit(offsets=targets, asynchronous=False)
        except KafkaException as exc:
            raise CommitFailedError(f"commit failed: {exc}") from exc
        failed = [p for p in result or () if p.error is not None]
        if failed:
            raise CommitFailedError(
                "commit failed: " + ", ".join(f"{p.topic}/{p.partition}: {p.error}" for p in failed)
            )

    def _positions(self) -> list[confluent_kafka.TopicPartition]:
        if self._pending is not None:
            partitions = list(self._pending.values())
        else:
            partitions = self._consumer.position(
                [confluent_kafka.TopicPartition(p.topic, p.partition) for p in self._assigned]
            )
        return [p for p in partitions if p.offset >= 0]

    def close(self, autocommit: bool = True) -> None:
        """Leave the group (revoking the partitions through the listener) and close.

        With ``autocommit``, the positions are committed first. Closing twice is harmless.
        """
        if self._closed:
            return
        try:
            if autocommit:
                self.commit()
        finally:
            self._consumer.close()
            self._closed = True
            self._assigned = frozenset()


def _offset_to_commit(
    partition: TopicPartition, offset: OffsetAndMetadata
) -> confluent_kafka.TopicPartition:
    """kafka-python's (partition, offset and metadata) as confluent-kafka's partition."""
    extra: dict[str, Any] = {}
    if offset.metadata:
        extra["metadata"] = offset.metadata
    epoch = getattr(offset, "leader_epoch", None)
    if epoch is not None and epoch >= 0:
        extra["leader_epoch"] = epoch
    return confluent_kafka.TopicPartition(
        partition.topic, partition.partition, offset.offset, **extra
    )


class DeliveryFuture:
    """The outcome of one :meth:`ConfluentProducer.send`, like kafka-python's future.

    :meth:`get` returns the :class:`RecordMetadata` once the cluster acknowledged the
    message and raises :class:`~monitor.kafka.exceptions.KafkaClientError` when its
    delivery failed.

    Examples
    --------
    >>> future = DeliveryFuture(None)
    >>> future.fail(KafkaClientError("message too large"))
    >>> future.get(timeout=0)
    Traceback (most recent call last):
    ...
    monitor.kafka.exceptions.KafkaClientError: message too large
    """

    __slots__ = ("_producer", "_done", "_error", "_metadata")

    def __init__(self, producer: confluent_kafka.Producer | None) -> None:
        self._producer = producer
        self._done = False
        self._error: Exception | None = None
        self._metadata: RecordMetadata | None = None

    def is_done(self) -> bool:
        """Whether the delivery succeeded or failed (kafka-python's ``is_done``)."""
        return self._done

    def fail(self, error: Exception) -> None:
        """Mark the delivery failed with ``error``."""
        self._error = error
        self._done = True

    def on_delivery(self, error: KafkaError | None, message: confluent_kafka.Message) -> None:
        """librdkafka's delivery report, served by the producer's ``poll``/``flush``."""
        if error is not None:
            self.fail(KafkaClientError(f"delivery to {message.topic()} failed: {error.str()}"))
            return
        self._metadata = RecordMetadata(
            message.topic(),  # type: ignore[arg-type]
            message.partition(),  # type: ignore[arg-type]
            message.offset(),  # type: ignore[arg-type]
        )
        self._done = True

    def get(self, timeout: float | None = None) -> RecordMetadata:
        """Wait up to ``timeout`` seconds (None: without limit) for the delivery report."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._done and self._producer is not None:
            remaining = -1.0 if deadline is None else deadline - time.monotonic()
            if deadline is not None and remaining <= 0:
                break
            self._producer.poll(min(remaining, 0.1) if remaining >= 0 else 0.1)
        if not self._done:
            raise KafkaClientError(f"no delivery report within {timeout}s")
        if self._error is not None:
            raise self._error
        assert self._metadata is not None
        return self._metadata


class ConfluentProducer:
    """A confluent-kafka producer with the kafka-python methods the daemon uses.

    Parameters
    ----------
    settings
        librdkafka properties; see :func:`producer_settings`.

    Examples
    --------
    >>> producer = ConfluentProducer({"bootstrap.servers": "127.0.0.1:9"})
    >>> future = producer.send("metrics", value=b"x" * 2_000_000)  # over message.max.bytes
    >>> future.get(timeout=0)
    Traceback (most recent call last):
    ...
    monitor.kafka.exceptions.KafkaClientError: cannot send to metrics: ...
    >>> producer.close(timeout=0)
    """

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.last_read = LastRead()
        """Time of the last read from a broker (served by :meth:`flush`), for the health gauge."""
        self._producer = confluent_kafka.Producer(_with_statistics(settings, self.last_read))

    @classmethod
    def from_config(cls, kafka: KafkaConfig) -> ConfluentProducer:
        """The daemon's producer for ``kafka`` (see :func:`producer_settings`)."""
        return cls(producer_settings(kafka))

    def send(
        self, topic: str, value: bytes | None = None, key: bytes | None = None
    ) -> DeliveryFuture:
        """Queue a message; the returned future tells whether it was delivered."""
        future = DeliveryFuture(self._producer)
        while True:
            try:
                self._producer.produce(topic, value, key, on_delivery=future.on_delivery)
            except BufferError:
                self._producer.poll(0.1)  # the local queue is full: serve delivery reports
                continue
            except KafkaException as exc:
                future.fail(KafkaClientError(f"cannot send to {topic}: {exc.args[0].str()}"))
            return future

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued message is delivered or failed.

        Raises :class:`~monitor.kafka.exceptions.KafkaClientError` when some are
        still queued after ``timeout`` seconds.
        """
        remaining = self._producer.flush(-1 if timeout is None else timeout)
        if remaining:
            raise KafkaClientError(f"{remaining} messages still queued after {timeout}s")

    def close(self, timeout: float | None = None) -> None:
        """Flush (up to ``timeout`` seconds); messages left are logged, not raised."""
        remaining = self._producer.flush(-1 if timeout is None else timeout)
        if remaining:
            log.warning("closing the producer with %d messages undelivered", remaining)


def _meta_of(messages: list[Any]) -> Callable[[int], tuple[bytes | None, int]]:
    def meta(i: int) -> tuple[bytes | None, int]:
        return messages[i].key(), messages[i].timestamp()[1]

    return meta


_ERROR = confluent_kafka.Message.error
_TOPIC = confluent_kafka.Message.topic
_PARTITION = confluent_kafka.Message.partition
_VALUE = confluent_kafka.Message.value


def _partition_runs(
    messages: list[Any], only_topic: str | None = None
) -> Iterable[tuple[tuple[str, int], list[Any]]]:
    """Messages without errors by (topic, partition), each partition's in order.

    librdkafka hands over a fetched partition's messages one after another, so the
    partition of each is read (a C call per message, through ``map``) and the runs are
    cut where it changes; the topic is read the same way and only checked to be one,
    unless the consumer reads ``only_topic``.
    """
    numbers = np.fromiter(map(_PARTITION, messages), np.int64, len(messages))
    topics: list[Any]  # str: no errors among them
    if only_topic is not None:
        topics = [only_topic] * len(messages)
    else:
        topics = list(map(_TOPIC, messages))
    if topics.count(topics[0]) != len(topics):  # several topics: the run of each pair
        keys = list(zip(topics, numbers.tolist(), strict=True))
        cuts = [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]]
    else:
        cuts = (np.flatnonzero(numbers[1:] != numbers[:-1]) + 1).tolist()
    grouped: dict[tuple[str, int], list[Any]] = {}
    for start, end in zip([0, *cuts], [*cuts, len(messages)], strict=True):
        key = (topics[start], int(numbers[start]))
        run = grouped.get(key)
        if run is None:
            grouped[key] = messages[start:end]
        else:
            run.extend(messages[start:end])
    return grouped.items()


def _offsets(messages: list[Any]) -> Sequence[int]:
    """The offsets of one partition's ``messages``: a ``range`` when they follow one
    another, else each message's."""
    first, last = messages[0].offset(), messages[-1].offset()
    if last - first + 1 == len(messages):
        return range(first, last + 1)
    return [message.offset() for message in messages]
