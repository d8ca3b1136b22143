"""The daemon: poll a batch, decode, score, produce events, flush, commit; repeat.

Guarantees:

* at-least-once: offsets are committed only after every event and dead letter
  of the batch is acknowledged by the cluster and, with ``state.enabled``, after
  the checkpoint of the partition's streams is durable (see
  :mod:`monitor.daemon.partitions`); a crash replays from the last commit into
  the state checkpointed with it, and a replayed anomaly carries the same
  ``event_id``. Events are sent as each batch is scored and their
  acknowledgements collected at least every ``SETTLE_INTERVAL_S`` and before
  any checkpoint or commit (:meth:`Daemon.settle`), so the loop does not wait
  for the cluster's round trip after every batch;
* a bad record never stops the loop: it is counted by reason, logged with its
  topic/partition/offset and written with the reason to the dead-letter topic;
* SIGTERM/SIGINT only set the stop flag: the current batch is finished,
  flushed and committed, then the daemon exits 0;
* state stays bounded: every ``streams.eviction_interval_seconds`` the streams
  without a point for ``streams.idle_ttl_seconds`` (wall clock) are evicted and
  their rows reused, and at most ``streams.max_streams`` streams are live.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Protocol

import numpy as np
from kafka import ConsumerRebalanceListener
from kafka.errors import KafkaError

from monitor.config.schema import MonitorConfig
from monitor.daemon.dead_letter import dead_letter
from monitor.daemon.events import AnomalyEvent, iso_time
from monitor.daemon.exceptions import DeliveryError
from monitor.daemon.health import watch_kafka
from monitor.daemon.partitions import Partitions
from monitor.detection import CONTRIBUTIONS, BatchOutcome, Detector
from monitor.kafka.listener import callable_from_listener
from monitor.kafka.reader import record_values
from monitor.metrics.daemon import DaemonMetrics
from monitor.records.batch import BatchDecoder, DecodedColumns

log = logging.getLogger("monitor.daemon")
event_log = logging.getLogger("monitor.events")

MAX_LOGGED_REJECTIONS = 10
"""Rejections logged one by one per batch; the rest are summed up in one line."""

STREAM_LIMIT_WARNING_SECONDS = 60.0
"""Least time between two warnings that ``streams.max_streams`` is reached."""

SETTLE_INTERVAL_S = 1.0
"""Most time between two waits for the acknowledgements of the messages sent
(:meth:`Daemon.settle`): failures are found and retried within it."""

MAX_UNSETTLED = 10_000
"""Messages sent and not yet confirmed before the loop waits for them anyway."""


class Consumer(Protocol):
    """The part of kafka-python's ``KafkaConsumer`` the daemon uses."""

    def subscribe(self, topics: Any = (), pattern: Any = None, listener: Any = None) -> None: ...
    def poll(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> Mapping[Any, Sequence[Any]]: ...
    def commit(self, offsets: Any = None) -> None: ...
    def seek(self, partition: Any, offset: int) -> None: ...
    def assignment(self) -> set[Any]: ...
    def highwater(self, partition: Any) -> int | None: ...
    def position(self, partition: Any, timeout_ms: int | None = None) -> int | None: ...
    def close(self, autocommit: bool = True) -> None: ...


class Producer(Protocol):
    """The part of kafka-python's ``KafkaProducer`` the daemon uses."""

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> Any: ...
    def flush(self, timeout: float | None = None) -> None: ...


@dataclass(frozen=True)
class Outgoing:
    """A message to deliver before the batch's offsets may be committed."""

    topic: str
    key: bytes | None
    value: bytes


@dataclass
class DecodedBatch:
    """The points of a polled batch column by column, their owners, and the rejections."""

    columns: DecodedColumns
    owners: np.ndarray
    """The owner number of each point's partition (:meth:`Partitions.owner`)."""
    rejected: list[tuple[str, str, Any]]
    """(reason, detail, record) of each record rejected, in the batch's order."""
    record: Callable[[int], Any]
    """The record (topic, partition, offset, ...) at a position in the batch."""

    @property
    def skipped(self) -> list[str]:
        """The reason of each record skipped as holding nothing to score."""
        return self.columns.skipped


class Daemon:
    """Runs the detection loop over a consumer and a producer that are passed in.

    Parameters
    ----------
    config
        The validated configuration.
    consumer, producer
        kafka-python clients (or anything with the same methods).
    metrics
        Daemon metrics, registered in the caller's registry.
    detector
        The detection core; built from ``config`` when not given.
    clock
        Wall clock in epoch seconds (for future-timestamp checks, event times, and the
        streams' last-seen times and idle eviction; it becomes the detector's table clock).
    """

    def __init__(
        self,
        config: MonitorConfig,
        consumer: Consumer,
        producer: Producer,
        metrics: DaemonMetrics,
        detector: Detector | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.consumer = consumer
        self.producer = producer
        self.metrics = metrics
        self.detector = detector or Detector(config)
        # Streams are marked seen, and evicted, by the daemon's clock.
        self.detector.streams.clock = clock
        self.clock = clock
        self.sleep = sleep
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.partitions = Partitions(
            config,
            self.detector,
            consumer,
            metrics,
            self.lock,
            clock=clock,
            settle=_weak(self.settle),
        )
        self._unsettled: list[tuple[Outgoing, Any]] = []
        """Messages sent, with their futures (or the error of the send), not confirmed yet."""
        self._settle_at = 0.0
        self._decode_values = BatchDecoder.for_config(config, clock)
        self._lag_partitions: set[tuple[str, int]] = set()
        self._next_sweep = clock() + config.streams.eviction_interval_seconds
        self._limit_warned_at = -np.inf

    # The loop -------------------------------------------------------------------------------

    def run(self) -> int:
        """Consume until :attr:`stop` is set; return the process exit code."""
        kafka = self.config.kafka
        listener = callable_from_listener(_Rebalance(self.partitions), self.consumer)
        if kafka.topic_pattern is not None:
            self.consumer.subscribe(pattern=kafka.topic_pattern, listener=listener)
        else:
            self.consumer.subscribe(topics=list(kafka.topics), listener=listener)
        log.info(
            "consuming %s as group %s", kafka.topic_pattern or list(kafka.topics), kafka.group_id
        )
        health = watch_kafka(self.consumer, kafka, self.metrics.kafka_up, self.producer)
        try:
            while not self.stop.is_set():
                try:
                    batch = self.consumer.poll(timeout_ms=kafka.poll_timeout_ms)
                except KafkaError as exc:  # an outage: log, wait a little, poll again
                    log.warning("poll failed, retrying in 1 s: %s", exc)
                    self.stop.wait(1.0)
                    batch = {}
                if batch:
                    self.process_batch(batch)
                self._commit(self.partitions.commit_if_due)
                self.evict_idle()
                self._update_lag()
                if health is not None:
                    health.check()
            # The final checkpoint and commit; if Kafka is unreachable now, the records
            # since the last commit are replayed by the next owner (at-least-once).
            self._commit(self.partitions.commit)
        except DeliveryError:
            log.error("stopping without committing: events or dead letters were not delivered")
            return 1
        finally:
            self.partitions.close()
            self.consumer.close(autocommit=False)
        log.info("stopped cleanly")
        return 0

    def process_batch(self, batch: Mapping[Any, Sequence[Any]]) -> None:
        """Decode, score and deliver one polled batch; commit it unless checkpoints are on.

        With ``state.enabled`` the batch's offsets are committed with the next
        checkpoint (:meth:`Partitions.commit_if_due`). Raises :class:`DeliveryError`
        when messages are still undelivered at shutdown; the batch's offsets are
        then not committed.
        """
        started = time.perf_counter()
        decoded = self.decode(batch)
        columns = decoded.columns
        with self.lock:
            outcome = self.detector.process_columns(
                columns.keys,
                columns.identities,
                columns.ts,
                columns.values,
                decoded.owners,
                columns.numbers,
                columns.rows_by_number,
            )
            streams_tracked = len(self.detector.streams)
        self._send(self._dead_letters(decoded.rejected) + self._events(decoded, outcome))
        if len(self._unsettled) >= MAX_UNSETTLED or time.monotonic() >= self._settle_at:
            self.settle()
        self.partitions.processed(batch)
        if self.partitions.store is None:
            self._commit(self.partitions.commit)
        self._count(batch, decoded, outcome, streams_tracked)
        self._warn_stream_limit(outcome)
        self.metrics.batch_seconds.observe(time.perf_counter() - started)

    def evict_idle(self) -> int:
        """Evict the idle streams if a sweep is due; return how many were evicted.

        Due every ``streams.eviction_interval_seconds`` of :attr:`clock`; a stream is
        idle when its last point arrived ``streams.idle_ttl_seconds`` or more ago
        (0 disables eviction). Runs under :attr:`lock`, so a scrape sees the
        detector before or after, never during.
        """
        streams = self.config.streams
        ttl = streams.idle_ttl_seconds
        if ttl <= 0:
            return 0
        now = self.clock()
        if now < self._next_sweep:
            return 0
        self._next_sweep = now + streams.eviction_interval_seconds
        with self.lock:
            rows = self.detector.streams.evict_idle(now, ttl)
            self.detector.release(rows)
            tracked = len(self.detector.streams)
        self.metrics.streams.set(tracked)
        if len(rows):
            self.metrics.evicted.inc(len(rows))
            log.info(
                "evicted %d streams without a point for %gs; %d streams tracked",
                len(rows),
                ttl,
                tracked,
            )
        return len(rows)

    # Steps ----------------------------------------------------------------------------------

    def decode(self, batch: Mapping[Any, Sequence[Any]]) -> DecodedBatch:
        """Decode and validate every record of a polled batch.

        A batch read by the reader process comes decoded (its ``columns``); any other is
        decoded here, the same way (:class:`~monitor.records.batch.BatchDecoder`, which
        also rejects the records holding a point more than ``streams.max_future_seconds``
        past the daemon's clock). Each point gets its partition's owner number (see
        :meth:`Partitions.owner`).
        """
        columns: DecodedColumns | None = getattr(batch, "columns", None)
        if columns is None:
            columns = self._decode_values(
                (partition.topic, record_values(records)) for partition, records in batch.items()
            )
        numbers = [self.partitions.owner(partition) for partition in batch]
        owners = np.repeat(np.asarray(numbers, dtype=np.int32), columns.counts)
        record = _RecordAt(list(batch.values()))
        return DecodedBatch(
            columns,
            owners,
            [(reason, detail, record(position)) for reason, detail, position in columns.rejected],
            record,
        )

    def _dead_letters(self, rejected: list[tuple[str, str, Any]]) -> list[Outgoing]:
        for reason, detail, record in rejected[:MAX_LOGGED_REJECTIONS]:
            log.warning(
                "rejected record %s/%d@%d: %s: %s",
                record.topic,
                record.partition,
                record.offset,
                reason,
                detail,
            )
        if len(rejected) > MAX_LOGGED_REJECTIONS:
            by_reason = Counter(reason for reason, _, _ in rejected[MAX_LOGGED_REJECTIONS:])
            log.warning(
                "... and %d more rejected records: %s",
                len(rejected) - MAX_LOGGED_REJECTIONS,
                dict(by_reason),
            )
        target = self.config.dead_letter
        if not target.enabled:
            return []
        return [
            Outgoing(
                target.topic,
                record.key,
                dead_letter(
                    record.value,
                    record.key,
                    reason,
                    detail,
                    record.topic,
                    record.partition,
                    record.offset,
                ),
            )
            for reason, detail, record in rejected
        ]

    def _events(self, decoded: DecodedBatch, outcome: BatchOutcome) -> list[Outgoing]:
        scored = outcome.scored
        flagged = np.flatnonzero(scored.anomalous)
        if not len(flagged):
            return []
        keys = self.detector.streams.keys
        detected_at = iso_time(self.clock())
        topic = self.config.events.topic
        columns = decoded.columns
        # The flagged points' fields read from the arrays at once, as Python numbers.
        points = scored.index[flagged]
        rows, records = scored.rows[flagged].tolist(), columns.records[points].tolist()
        ts, values = columns.ts[points].tolist(), columns.values[points].tolist()
        expected, score = scored.expected[flagged].tolist(), scored.score[flagged].tolist()
        lower, upper = scored.lower[flagged].tolist(), scored.upper[flagged].tolist()
        threshold = scored.threshold[flagged].tolist()
        critical = scored.severity_critical[flagged].tolist()
        shares = scored.contributions[flagged].tolist()
        out = []
        for j, point in enumerate(points.tolist()):
            name, labels = columns.identity(point)
            record = decoded.record(records[j])
            event = AnomalyEvent(
                stream=keys[rows[j]],
                name=name,
                labels=labels,
                ts=ts[j],
                value=values[j],
                expected=expected[j],
                lower=lower[j],
                upper=upper[j],
                score=score[j],
                threshold=threshold[j],
                severity="critical" if critical[j] else "warning",
                detectors={
                    detector: round(share, 6)
                    for detector, share in zip(CONTRIBUTIONS, shares[j], strict=True)
                },
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
            if self.config.events.log:
                event_log.info("%s", event.summary())
            out.append(Outgoing(topic, event.stream.encode("utf-8"), event.encode(detected_at)))
        return out

    def _send(self, outgoing: list[Outgoing]) -> None:
        """Hand every message to the producer; :meth:`settle` confirms them."""
        for message in outgoing:
            try:
                future = self.producer.send(message.topic, value=message.value, key=message.key)
            except KafkaError as exc:  # no metadata within max_block_ms: retried by settle
                future = exc
            self._unsettled.append((message, future))

    def settle(self) -> None:
        """Wait until every message sent so far is acknowledged, retrying failures with
        backoff (up to 30 s apart); checkpoints and commits call it first.

        Returns only when all are delivered; raises :class:`DeliveryError` if the stop
        flag is set while some are still undelivered (they stay unconfirmed, so no
        later commit goes past them).
        """
        self._settle_at = time.monotonic() + SETTLE_INTERVAL_S
        backoff = 0.5
        while self._unsettled:
            self.producer.flush()
            failed = []
            events = 0
            for message, future in self._unsettled:
                try:
                    if isinstance(future, KafkaError):
                        raise future
                    future.get(timeout=0)
                except Exception as exc:  # noqa: BLE001 - any delivery failure is retried
                    failed.append((message, future))
                    self.metrics.delivery_failures.labels(topic=message.topic).inc()
                    last_error = exc
                else:
                    events += message.topic == self.config.events.topic
            self.metrics.events.inc(events)
            if not failed:
                self._unsettled = []
                return
            log.error(
                "%d of %d messages not delivered (%s); retrying in %.1fs",
                len(failed),
                len(self._unsettled),
                last_error,
                backoff,
            )
            self._unsettled = failed
            if self.stop.wait(backoff):
                raise DeliveryError(f"{len(failed)} messages undelivered at shutdown")
            backoff = min(backoff * 2, 30.0)
            self._unsettled = []
            self._send([message for message, _ in failed])

    def _commit(self, commit: Callable[[], None]) -> None:
        """Run ``commit``; a Kafka error (an outage) is logged and the offsets stay pending
        for the next commit, so nothing is committed early and the loop goes on."""
        try:
            commit()
        except KafkaError as exc:
            log.warning("offset commit failed, retried with the next one: %s", exc)

    def _count(
        self,
        batch: Mapping[Any, Sequence[Any]],
        decoded: DecodedBatch,
        outcome: BatchOutcome,
        streams_tracked: int,
    ) -> None:
        m = self.metrics
        for partition, records in batch.items():
            m.consumed.labels(topic=partition.topic).inc(len(records))
        m.batch_records.observe(sum(len(r) for r in batch.values()))
        for reason, count in Counter(reason for reason, _, _ in decoded.rejected).items():
            m.rejected.labels(reason=reason).inc(count)
        for reason, count in Counter(decoded.skipped).items():
            m.dropped.labels(reason=reason).inc(count)
        for reason, dropped in (
            ("late", outcome.late),
            ("duplicate", outcome.duplicate),
            ("too_many_streams", outcome.over_capacity),
            ("disabled", outcome.disabled),
        ):
            if len(dropped):
                m.dropped.labels(reason=reason).inc(len(dropped))
        m.scored.inc(len(outcome.scored.index))
        m.streams.set(streams_tracked)

    def _warn_stream_limit(self, outcome: BatchOutcome) -> None:
        """Warn, at most once a minute, when points of new streams found no room."""
        if not len(outcome.over_capacity):
            return
        now = self.clock()
        if now - self._limit_warned_at < STREAM_LIMIT_WARNING_SECONDS:
            return
        self._limit_warned_at = now
        ttl = self.config.streams.idle_ttl_seconds
        log.warning(
            "streams.max_streams (%d) reached: %d points of new streams dropped in this batch "
            "as too_many_streams; %s (next warning in %gs at the earliest)",
            self.config.streams.max_streams,
            len(outcome.over_capacity),
            f"streams idle for {ttl:g}s are evicted" if ttl > 0 else "idle eviction is off",
            STREAM_LIMIT_WARNING_SECONDS,
        )

    def _update_lag(self) -> None:
        seen = set()
        for partition in self.consumer.assignment():
            highwater = self.consumer.highwater(partition)
            if highwater is None:
                continue
            try:
                position = self.consumer.position(partition, timeout_ms=0)
            except Exception:  # noqa: BLE001 - position unknown right after assignment
                continue
            if position is None:
                continue
            label = (partition.topic, partition.partition)
            seen.add(label)
            self.metrics.lag.labels(topic=label[0], partition=str(label[1])).set(
                max(highwater - position, 0)
            )
        for topic, number in self._lag_partitions - seen:
            self.metrics.lag.remove(topic, str(number))
        self._lag_partitions = seen


def _weak(method: Callable[[], None]) -> Callable[[], None]:
    """``method`` without a reference to its object: the daemon's parts do not keep it
    alive, so it and its clients (their connections) go as soon as its owner drops it."""
    reference = weakref.WeakMethod(method)

    def call() -> None:
        bound = reference()
        if bound is not None:
            bound()

    return call


class _Rebalance(ConsumerRebalanceListener):
    """Passes partition moves to :class:`Partitions`, logging them.

    Rebalances happen inside ``poll``, between two batches: every processed record's
    events are sent by then, and :meth:`Partitions.commit` waits for their
    acknowledgements, so a revoked partition can be checkpointed and committed right
    here.
    """

    def __init__(self, partitions: Partitions) -> None:
        self.partitions = partitions

    def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked:
            log.info("partitions revoked: %s", sorted((p.topic, p.partition) for p in revoked))
        self.partitions.on_revoked(revoked)

    def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("partitions assigned: %s", sorted((p.topic, p.partition) for p in assigned))
        self.partitions.on_assigned(assigned)


class _RecordAt:
    """The record at a position of a batch, partitions one after the other."""

    def __init__(self, partitions: list[Sequence[Any]]) -> None:
        self.partitions = partitions
        self.starts = list(accumulate((len(records) for records in partitions), initial=0))

    def __call__(self, position: int) -> Any:
        i = bisect_right(self.starts, position) - 1
        return self.partitions[i][position - self.starts[i]]
