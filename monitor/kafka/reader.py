"""Read Kafka in a child process, so that reading and scoring use two cores.

A Python consumer spends most of its time in the client library (kafka-python parses
every record batch in Python), and the daemon's scoring needs the same interpreter.
With ``kafka.reader: process`` the consumer of ``kafka.transport`` lives in a child
process that polls ahead of the daemon, while the daemon scores the batches already
read. Records are decoded into columns (:class:`~monitor.records.batch.BatchDecoder`)
by the child or by the daemon, as ``kafka.decode_in`` says (:func:`decodes_in_reader`);
decoded columns travel with stream numbers in place of the streams' keys, names and
labels (:mod:`monitor.kafka.stream_numbers`).
:class:`ProcessConsumer` is the daemon's side: it has the methods of the daemon's
``Consumer`` protocol and turns them into messages to the child (:func:`read_in_child`).

What stays exactly as with a consumer in the daemon's own process:

* order: the child's batches and rebalance callbacks reach the daemon in the order
  they happened; a rebalance listener runs in the daemon between two batches, after
  every batch read before it is processed, and the child's consumer waits inside its
  callback until the listener is done (so a revoked partition is checkpointed and
  committed while still owned, and ``seek`` in ``on_partitions_assigned`` sets where a
  new partition starts);
* commits made by a listener, commits of the child's own positions (``commit()``) and
  :meth:`ProcessConsumer.close` are synchronous and raise on failure;
* poll errors (``KafkaError``) are raised by :meth:`ProcessConsumer.poll`.

What differs:

* the child reads at most ``kafka.reader_batches_ahead`` batches ahead of the daemon;
  lag and positions (:meth:`~ProcessConsumer.position`) are those of the child;
* commits made between batches are sent without waiting: the child commits them in
  order and, when a commit fails (an outage), retries the latest offsets every second
  until one succeeds or the partition is revoked;
* the child's log lines are handled by the daemon's loggers (same names and levels).

If the child dies, :meth:`~ProcessConsumer.poll` raises :class:`ReaderFailed` and the
daemon stops: the records since the last commit are replayed by the next owner.
"""

from __future__ import annotations

import gc
import logging
import logging.handlers
import math
import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue
import signal
import threading
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from itertools import accumulate
from multiprocessing.connection import Connection
from typing import Any, overload

from kafka import ConsumerRebalanceListener, TopicPartition
from kafka.errors import KafkaError

from monitor.config.schema import KafkaConfig, MonitorConfig
from monitor.exceptions import MonitorError
from monitor.kafka.exceptions import KafkaSetupError
from monitor.kafka.listener import callable_from_listener
from monitor.kafka.record import ConsumerRecord, PolledPartition, polled_partitions
from monitor.kafka.stream_numbers import NumberedColumns, Numbering, Numbers
from monitor.records.batch import BatchDecoder, DecodedColumns

log = logging.getLogger("monitor.kafka.reader")

STATUS_INTERVAL_S = 1.0
"""How often an idle child reports its assignment, positions and end offsets."""

FAILED_POLL_PAUSE_S = 1.0
"""How long the child serves the daemon's requests before polling again after a failure."""

COMMIT_RETRY_S = 1.0
"""How often the child retries offsets whose commit failed."""

START_TIMEOUT_S = 120.0
"""Longest wait for the child to build its consumer (kafka-python bootstraps there)."""

CLOSE_TIMEOUT_S = 60.0
"""Longest wait for the child to leave the group and exit."""

Partition = tuple[str, int]
Status = dict[Partition, tuple[int | None, int | None]]
"""Each assigned partition -> (end offset, position) as the child last saw them."""
Part = tuple[str, int, Sequence[int], Any, Any, Any]
"""One partition's records of a batch as sent by the child: topic, partition, offsets,
then keys, values and timestamps (lists, or by index for the rejected only, see
:func:`_rejected_only`)."""


class ReaderFailed(MonitorError):
    """The reading child process died or stopped answering."""


class ProcessConsumer:
    """A consumer of ``kafka.transport`` running in a child process, with the daemon's
    ``Consumer`` methods (see the module docstring for the differences).

    Examples
    --------
    >>> from monitor.config import MonitorConfig
    >>> config = MonitorConfig.model_validate(
    ...     {"kafka": {"bootstrap_servers": "127.0.0.1:9", "transport": "confluent"}}
    ... )
    >>> consumer = ProcessConsumer(config)
    >>> consumer.assignment(), consumer.poll(timeout_ms=10)
    (set(), {})
    >>> consumer.close(autocommit=False)
    """

    def __init__(self, config: MonitorConfig) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        self._logs: Any = context.Queue()
        self._last_read: Any = context.Value("d", math.nan, lock=False)
        self._process = context.Process(
            target=read_in_child,
            args=(
                child_conn,
                config.model_dump_json(),
                self._logs,
                logging.getLogger().getEffectiveLevel(),
                self._last_read,
            ),
            name="monitor-reader",
            daemon=True,
        )
        self._log_listener = logging.handlers.QueueListener(self._logs, _ForwardedLog())
        self._log_listener.start()
        self._process.start()
        child_conn.close()
        self._queue: deque[tuple[Any, ...]] = deque()
        self._listener: Any = None
        self._status: Status = {}
        self._partitions: dict[Partition, TopicPartition] = {}
        self._next_id = 0
        self._numbers = Numbers()
        """The identities of the stream numbers in the child's decoded batches."""
        self._in_listener = False
        """True while the subscribed listener runs: its commits are synchronous."""
        self._closed = False
        try:
            reply = self._receive(START_TIMEOUT_S)
            if reply[0] == "setup_failed":
                raise KafkaSetupError(reply[1])
            if reply[0] != "started":
                raise ReaderFailed(f"unexpected first message from the reader: {reply[0]}")
        except BaseException:
            self._stop_child()
            raise

    # The Consumer protocol ----------------------------------------------------------------

    def subscribe(self, topics: Any = (), pattern: Any = None, listener: Any = None) -> None:
        """Subscribe the child's consumer; ``listener`` runs here, inside :meth:`poll`."""
        self._listener = listener
        names = [topics] if isinstance(topics, str) else list(topics)
        self._call("subscribe", names, pattern, listener is not None)

    def poll(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, Sequence[ConsumerRecord]]:
        """The next batch the child read, waiting up to ``timeout_ms`` for it.

        Rebalance callbacks that come first are run (through the subscribed listener)
        before. ``max_records`` is the child's ``kafka.max_poll_records``.
        """
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            message = self._next(deadline)
            if message is None:
                return {}
            kind = message[0]
            if kind == "batch":
                self._send("ack")
                self._status = message[2]
                return self._records(message[1], message[3])
            if kind == "status":
                self._status = message[1]
            elif kind in ("revoked", "assigned"):
                self._rebalance(kind, message[1])
            elif kind == "failed":
                raise message[1]
            else:
                raise ReaderFailed(f"unexpected message from the reader: {kind}")

    def commit(self, offsets: Mapping[TopicPartition, Any] | None = None) -> None:
        """Commit ``offsets``, or (None) the child's positions.

        Inside a rebalance listener, and for the child's positions, synchronously
        (raising the client's error); otherwise the child commits them in order,
        retrying failures (module docstring).
        """
        if self._in_listener or offsets is None:
            self._call("commit", None if offsets is None else dict(offsets))
        else:
            self._send("commit_later", dict(offsets))

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Consume ``partition`` from ``offset`` on."""
        self._call("seek", TopicPartition(partition.topic, partition.partition), offset)

    def assignment(self) -> set[TopicPartition]:
        """The partitions assigned to the child's consumer, as it last reported."""
        return {self._partition(key) for key in self._status}

    def highwater(self, partition: TopicPartition) -> int | None:
        """The partition's end offset as the child last saw it; None when unknown."""
        return self._status.get((partition.topic, partition.partition), (None, None))[0]

    def position(self, partition: TopicPartition, timeout_ms: int | None = None) -> int | None:
        """The child's next offset to read from ``partition`` (ahead of the daemon by the
        batches in flight); None when unknown."""
        return self._status.get((partition.topic, partition.partition), (None, None))[1]

    def last_read(self) -> float | None:
        """When (``time.monotonic``) the child's consumer last read from a broker."""
        value = float(self._last_read.value)
        return value if math.isfinite(value) else None

    def close(self, autocommit: bool = True) -> None:
        """Close the child's consumer (leaving the group) and wait for the child to exit."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._process.is_alive():
                self._call("close", autocommit, timeout=CLOSE_TIMEOUT_S)
        except (ReaderFailed, KafkaError, OSError) as exc:
            log.warning("the reader did not close cleanly: %s", exc)
        finally:
            self._stop_child()

    # Messages -----------------------------------------------------------------------------

    def _send(self, *message: Any) -> None:
        try:
            self._conn.send(message)
        except OSError as exc:
            raise self._failed(f"cannot reach the reader: {exc}") from exc

    def _call(self, *request: Any, timeout: float | None = None) -> Any:
        """Send a request and wait for its reply; messages that come first are kept for
        :meth:`poll`, and rebalance callbacks (while closing) run here."""
        self._next_id += 1
        call_id = self._next_id
        self._send("call", call_id, *request)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            message = self._receive(None if deadline is None else deadline - time.monotonic())
            kind = message[0]
            if kind == "reply" and message[1] == call_id:
                if message[2] is not None:
                    raise message[2]
                return message[3]
            if kind in ("revoked", "assigned") and request[0] == "close":
                self._rebalance(kind, message[1])
            elif kind != "reply":
                self._queue.append(message)

    def _next(self, deadline: float) -> tuple[Any, ...] | None:
        if self._queue:
            return self._queue.popleft()
        remaining = max(deadline - time.monotonic(), 0.0)
        if not self._conn.poll(remaining):
            self._check_alive()
            return None
        return self._receive(0)

    def _receive(self, timeout: float | None) -> tuple[Any, ...]:
        """The next message; raises :class:`ReaderFailed` if none comes in ``timeout`` s."""
        waited = 0.0
        while not self._conn.poll(1.0 if timeout is None else min(1.0, max(timeout - waited, 0))):
            self._check_alive()
            waited += 1.0
            if timeout is not None and waited >= timeout:
                raise self._failed(f"no answer from the reader in {timeout:.0f}s")
        try:
            message: tuple[Any, ...] = self._conn.recv()
        except (EOFError, OSError) as exc:
            self._process.join(timeout=1.0)
            raise self._failed(
                f"the reader exited with code {self._process.exitcode} ({exc!r})"
            ) from exc
        if message[0] == "batch" and message[3] is not None:
            # Every batch is read here, in the order sent: the numbers stay in step.
            message = (*message[:3], self._numbers.decode(message[3]))
        return message

    def _check_alive(self) -> None:
        if not self._process.is_alive():
            raise self._failed(f"the reader exited with code {self._process.exitcode}")

    def _failed(self, why: str) -> ReaderFailed:
        self._closed = True
        return ReaderFailed(why)

    def _rebalance(self, kind: str, partitions: list[Partition]) -> None:
        """Run the listener for a callback of the child's consumer, which waits for it."""
        moved = {self._partition(key) for key in partitions}
        self._in_listener = True
        try:
            if self._listener is not None:
                if kind == "revoked":
                    self._listener.on_partitions_revoked(moved)
                else:
                    self._listener.on_partitions_assigned(moved)
        finally:
            self._in_listener = False
            self._send("listener_done")

    def _records(
        self,
        parts: list[Part],
        columns: DecodedColumns | None,
    ) -> ReadBatch:
        batch = ReadBatch(columns)
        for topic, number, offsets, keys, values, timestamps in parts:
            batch[self._partition((topic, number))] = _Records(
                topic, number, offsets, keys, values, timestamps
            )
        return batch

    def _partition(self, key: Partition) -> TopicPartition:
        partition = self._partitions.get(key)
        if partition is None:
            partition = self._partitions[key] = TopicPartition(*key)
        return partition

    def _stop_child(self) -> None:
        self._process.join(timeout=CLOSE_TIMEOUT_S if self._process.is_alive() else 0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()
        self._log_listener.stop()
        self._logs.close()
        self._logs.join_thread()


def decodes_in_reader(kafka: KafkaConfig) -> bool:
    """Whether the reading child decodes the records (``kafka.decode_in``).

    ``auto`` decodes there with the confluent transport, whose client leaves the child
    mostly idle, and in the daemon with kafka-python, whose parsing in Python keeps the
    child about as busy as the daemon (``benchmarks/pipeline.py``: decoding in the child
    took confluent from about 217,000 to 262,000 records/s and kafka-python from about
    188,000 down to 157,000).

    >>> from monitor.config.schema import KafkaConfig
    >>> decodes_in_reader(KafkaConfig(transport="confluent"))
    True
    >>> decodes_in_reader(KafkaConfig()), decodes_in_reader(KafkaConfig(decode_in="reader"))
    (False, True)
    """
    if kafka.decode_in == "auto":
        return kafka.transport == "confluent"
    return kafka.decode_in == "reader"


class ReadBatch(dict[TopicPartition, Sequence[ConsumerRecord]]):
    """A batch the child read, by partition, with the child's decoding of its records
    when it decodes them (:func:`decodes_in_reader`).

    >>> import numpy as np
    >>> from monitor.records.batch import DecodedColumns
    >>> empty = DecodedColumns([], [], [], np.zeros(0), np.zeros(0), np.zeros(0, int), [], [], [])
    >>> batch = ReadBatch(empty)
    >>> batch[TopicPartition("metrics", 0)] = [ConsumerRecord("metrics", 0, 7, None, b"", -1)]
    >>> len(batch), batch.columns.keys
    (1, [])
    """

    def __init__(self, columns: DecodedColumns | None) -> None:
        super().__init__()
        self.columns = columns
        """The points of every record, decoded (:class:`~monitor.records.batch.BatchDecoder`),
        or None: the daemon decodes them."""


class _Records(Sequence[ConsumerRecord]):
    """One partition's records of a batch, each made into a :class:`ConsumerRecord` only
    when asked for (the daemon asks for a few: the last, the rejected, the anomalous).

    When the child decoded the batch, ``keys``, ``values`` and ``timestamps`` hold those of
    the rejected records only, by index (:func:`_rejected_only`); the others read as
    ``None`` (timestamp ``-1``).
    """

    def __init__(
        self,
        topic: str,
        partition: int,
        offsets: Sequence[int],
        keys: list[bytes | None] | dict[int, bytes | None],
        values: list[bytes | None] | dict[int, bytes | None],
        timestamps: list[int] | dict[int, int],
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.offsets = offsets
        self.keys = keys
        self.values = values
        self.timestamps = timestamps

    def __len__(self) -> int:
        return len(self.offsets)

    @overload
    def __getitem__(self, i: int) -> ConsumerRecord: ...
    @overload
    def __getitem__(self, i: slice) -> list[ConsumerRecord]: ...
    def __getitem__(self, i: int | slice) -> ConsumerRecord | list[ConsumerRecord]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if isinstance(self.values, dict):
            if i < 0:
                i += len(self.offsets)
            return ConsumerRecord(
                self.topic,
                self.partition,
                self.offsets[i],
                self.keys.get(i),  # type: ignore[union-attr]
                self.values.get(i),
                self.timestamps.get(i, -1),  # type: ignore[union-attr]
            )
        return ConsumerRecord(
            self.topic,
            self.partition,
            self.offsets[i],
            self.keys[i],
            self.values[i],
            self.timestamps[i],
        )

    def __repr__(self) -> str:
        return repr(list(self))


def record_values(records: Sequence[ConsumerRecord]) -> Sequence[bytes | None]:
    """The values of a partition's ``records``, in order.

    A batch read by the child holds its records as columns: their values are read as
    they are, instead of making a :class:`ConsumerRecord` of every record first.

    >>> part = _Records("m", 0, [4, 5], [b"a", None], [b"1", b"2"], [10, 11])
    >>> record_values(part), record_values(list(part))
    ([b'1', b'2'], [b'1', b'2'])
    """
    if isinstance(records, _Records) and isinstance(records.values, list):
        return records.values
    return [record.value for record in records]


class _ForwardedLog(logging.Handler):
    """Hands a log record of the child to the daemon's logger of the same name."""

    def handle(self, record: logging.LogRecord) -> bool:
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:  # pragma: no cover - handle() does it
        pass


# The child -------------------------------------------------------------------------------


def read_in_child(
    conn: Connection, config_json: str, logs: Any, log_level: int, last_read: Any
) -> None:
    """The child's main: build the consumer, then read ahead and answer the daemon."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _exit_with_parent()
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(logs)]
    root.setLevel(log_level)
    config = MonitorConfig.model_validate_json(config_json)
    from monitor.kafka.transport import build_consumer

    try:
        consumer = build_consumer(config)
    except KafkaSetupError as exc:
        conn.send(("setup_failed", str(exc)))
        return
    conn.send(("started",))
    # Every poll allocates many short-lived records: collect young objects less eagerly,
    # as the daemon does (monitor.daemon.runner.run_daemon).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    _Reader(conn, consumer, config, last_read).run()


class _Reader:
    """The child's loop: poll while fewer than ``kafka.reader_batches_ahead`` batches are
    unread by the daemon, and serve the daemon's requests in between."""

    def __init__(self, conn: Connection, consumer: Any, config: MonitorConfig, last_read: Any):
        from monitor.daemon.health import client_last_read

        self.conn = conn
        self.outbox = _Outbox(conn)
        self.consumer = consumer
        self.kafka = config.kafka
        # The reader's clock is the daemon's: both are this machine's wall clock.
        self.decode = BatchDecoder.for_config(config) if decodes_in_reader(self.kafka) else None
        self.numbering = Numbering()
        self.columns = hasattr(consumer, "poll_partitions")
        """Whether the consumer polls column by column (the confluent transport)."""
        self.ahead = 0
        self.subscribed = False
        self.done = False
        self.closed = False
        self.listener_done = False
        self.pending: dict[TopicPartition, Any] = {}
        """Offsets committed between batches and not acknowledged by the cluster yet."""
        self.retry_at = math.inf
        self.status_at = 0.0
        reads = client_last_read(consumer)
        if reads is not None:
            _watch_last_read(reads, last_read, lambda: self.done)

    def run(self) -> None:
        try:
            while not self.done:
                self.serve(0.0 if self.may_poll() else 0.05)
                if self.done:
                    break
                if self.pending and time.monotonic() >= self.retry_at:
                    self.commit_pending()
                if self.may_poll():
                    self.read()
                elif time.monotonic() >= self.status_at:
                    self.send("status", self.status())
        except (EOFError, BrokenPipeError, ConnectionResetError):
            self.done = True  # the daemon is gone
        finally:
            if not self.closed:
                try:
                    self.consumer.close(autocommit=False)
                except Exception:  # noqa: BLE001 - exiting anyway
                    pass
            self.outbox.close(CLOSE_TIMEOUT_S)

    def may_poll(self) -> bool:
        return self.subscribed and self.ahead < self.kafka.reader_batches_ahead

    def read(self) -> None:
        try:
            parts, numbered = self.poll(min(self.kafka.poll_timeout_ms, 100))
        except KafkaError as exc:  # an outage: the daemon logs it; poll again in a while
            self.send("failed", _picklable(exc))
            self.serve(FAILED_POLL_PAUSE_S)
            return
        if parts:
            self.ahead += 1
            self.send("batch", parts, self.status(), numbered)
        elif time.monotonic() >= self.status_at:
            self.send("status", self.status())

    def poll(self, timeout_ms: int) -> tuple[list[Part], NumberedColumns | None]:
        """One poll's parts to send, and its decoded columns when this process decodes."""
        if self.decode is None:  # the daemon decodes: every record's key, value and time
            batch = self.consumer.poll(timeout_ms=timeout_ms)
            return [_whole(partition, records) for partition, records in batch.items()], None
        if self.columns:
            polled = self.consumer.poll_partitions(timeout_ms=timeout_ms)
        else:
            polled = polled_partitions(self.consumer.poll(timeout_ms=timeout_ms))
        if not polled:
            return [], None
        columns = self.decode((p.topic, p.values) for p in polled)
        return _rejected_only(polled, columns), self.numbering.encode(columns)

    def status(self) -> Status:
        self.status_at = time.monotonic() + STATUS_INTERVAL_S
        status: Status = {}
        for partition in self.consumer.assignment():
            try:
                position = self.consumer.position(partition, timeout_ms=0)
            except Exception:  # noqa: BLE001 - unknown right after an assignment
                position = None
            status[(partition.topic, partition.partition)] = (
                self.consumer.highwater(partition),
                position,
            )
        return status

    def send(self, *message: Any) -> None:
        self.outbox.put(message)

    def serve(self, wait: float) -> None:
        """Answer every request that is waiting, the first waiting up to ``wait`` s."""
        while self.conn.poll(wait):
            wait = 0.0
            self.handle(self.conn.recv())
            if self.done:
                return

    def handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ack":
            self.ahead -= 1
        elif kind == "commit_later":
            self.commit_later(message[1])
        elif kind == "listener_done":
            self.listener_done = True
        elif kind == "call":
            call_id, request, args = message[1], message[2], message[3:]
            try:
                result = getattr(self, f"call_{request}")(*args)
            except Exception as exc:  # noqa: BLE001 - raised again in the daemon
                self.send("reply", call_id, _picklable(exc), None)
            else:
                self.send("reply", call_id, None, result)
        else:
            raise ValueError(f"unknown request {kind!r}")

    # Requests -----------------------------------------------------------------------------

    def call_subscribe(self, topics: list[str], pattern: str | None, listen: bool) -> None:
        listener = callable_from_listener(_Forward(self), self.consumer) if listen else None
        if pattern is not None:
            self.consumer.subscribe(pattern=pattern, listener=listener)
        else:
            self.consumer.subscribe(topics=topics, listener=listener)
        self.subscribed = True

    def call_commit(self, offsets: dict[TopicPartition, Any] | None) -> None:
        if offsets is None:
            self.consumer.commit()
            return
        for partition in offsets:
            self.pending.pop(partition, None)
        self.consumer.commit(offsets=offsets)

    def call_seek(self, partition: TopicPartition, offset: int) -> None:
        self.consumer.seek(partition, offset)

    def call_close(self, autocommit: bool) -> None:
        """Close the consumer; its last ``on_partitions_revoked`` runs in the daemon."""
        if self.pending:
            self.commit_pending()
        try:
            self.consumer.close(autocommit=autocommit)
        finally:
            self.closed = self.done = True

    def commit_later(self, offsets: dict[TopicPartition, Any]) -> None:
        self.pending.update(offsets)
        self.commit_pending()

    def commit_pending(self) -> None:
        offsets, self.pending = self.pending, {}
        try:
            self.consumer.commit(offsets=offsets)
        except KafkaError as exc:
            log.warning("offset commit failed, retrying in %gs: %s", COMMIT_RETRY_S, exc)
            self.pending = {**offsets, **self.pending}
            self.retry_at = time.monotonic() + COMMIT_RETRY_S
        else:
            self.retry_at = math.inf

    def wait_for_listener(self, kind: str, partitions: Any) -> None:
        """Hand a rebalance callback to the daemon and serve its requests until its
        listener is done."""
        moved = [(p.topic, p.partition) for p in partitions]
        if kind == "revoked":  # committed by the daemon's listener, or replayed
            for p in partitions:
                self.pending.pop(TopicPartition(p.topic, p.partition), None)
        self.listener_done = False
        self.send(kind, moved)
        while not self.listener_done:
            self.serve(1.0)


class _Outbox:
    """Sends the child's messages to the daemon from a thread of its own, in order.

    A pipe holds far less than a batch, so sending one waits until the daemon reads it,
    after the batch before: the loop would stop polling and decoding meanwhile. Here it
    goes on (``kafka.reader_batches_ahead`` still bounds how far). A failed send (the
    daemon gone) is raised by the next :meth:`put`.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._send_all, name="reader-outbox", daemon=True)
        self.thread.start()

    def put(self, message: tuple[Any, ...]) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(message)

    def close(self, timeout: float) -> None:
        """Send what is queued (waiting up to ``timeout`` s), then stop the thread."""
        self.queue.put(None)
        self.thread.join(timeout)

    def _send_all(self) -> None:
        while (message := self.queue.get()) is not None:
            try:
                self.conn.send(message)
            except BaseException as exc:  # noqa: BLE001 - raised in the loop's thread
                self.error = exc
                return


class _Forward(ConsumerRebalanceListener):
    """The child consumer's listener: passes each callback to the daemon and waits.

    It reads the pipe while the loop's thread waits in the consumer's ``poll`` or
    ``close`` (:func:`~monitor.kafka.listener.callable_from_listener`)."""

    def __init__(self, reader: _Reader) -> None:
        self.reader = reader

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.reader.wait_for_listener("revoked", revoked)

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.reader.wait_for_listener("assigned", assigned)


def _exit_with_parent() -> None:
    """End this process as soon as the daemon's process ends, whatever this one is doing
    (a consumer can wait a long time inside ``poll``)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _watch_last_read(
    reads: Callable[[], float | None], shared: Any, done: Callable[[], bool]
) -> None:
    """Copy the consumer's last read time to ``shared`` twice a second, in a thread (the
    consumer's reads go on while the loop waits for the daemon)."""

    def copy() -> None:
        while not done():
            at = reads()
            if at is not None:
                shared.value = at
            time.sleep(0.5)

    threading.Thread(target=copy, name="last-read", daemon=True).start()


def _rejected_only(polled: list[PolledPartition], columns: DecodedColumns) -> list[Part]:
    """The parts to send of ``polled``, with the keys, values and timestamps of the
    rejected records only: the daemon reads no others (it needs the offsets of all),
    so the rest is neither fetched nor pickled.

    >>> from monitor.kafka.record import ConsumerRecord, polled_partitions
    >>> good = b'{"stream": "a", "ts": 1, "value": 2}'
    >>> columns = BatchDecoder({}, "native", 100)([("m", [good, b"{"]), ("m", [good])])
    >>> polled = polled_partitions({
    ...     0: [ConsumerRecord("m", 0, 5, b"k", good, 1), ConsumerRecord("m", 0, 6, b"l", b"{", 2)],
    ...     1: [ConsumerRecord("m", 1, 7, None, good, 3)],
    ... })
    >>> for part in _rejected_only(polled, columns):
    ...     print(part)
    ('m', 0, [5, 6], {1: b'l'}, {1: b'{'}, {1: 2})
    ('m', 1, [7], {}, {}, {})
    """
    by_part: list[list[int]] = [[] for _ in polled]
    starts = list(accumulate((len(part.offsets) for part in polled), initial=0))
    for _reason, _detail, position in columns.rejected:
        i = bisect_right(starts, position) - 1
        by_part[i].append(position - starts[i])
    parts: list[Part] = []
    for part, kept in zip(polled, by_part, strict=True):
        metas = {i: part.meta(i) for i in kept}
        parts.append(
            (
                part.topic,
                part.partition,
                part.offsets,
                {i: key for i, (key, _) in metas.items()},
                {i: part.values[i] for i in kept},
                {i: timestamp for i, (_, timestamp) in metas.items()},
            )
        )
    return parts


def _whole(partition: TopicPartition, records: Sequence[ConsumerRecord]) -> Part:
    """A partition's records to send whole, every record's key and timestamp included
    (for a daemon that decodes the values itself)."""
    return (
        partition.topic,
        partition.partition,
        [r.offset for r in records],
        [r.key for r in records],
        [r.value for r in records],
        [r.timestamp for r in records],
    )


def _picklable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling, else a ``KafkaError`` or ``MonitorError`` with its text."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any pickling failure
        kind = KafkaError if isinstance(exc, KafkaError) else MonitorError
        return kind(f"{type(exc).__name__}: {exc}")
    return exc
