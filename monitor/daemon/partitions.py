"""The partitions a daemon owns: their streams' state, checkpoints, offsets and moves.

Guarantees (with ``state.enabled``):

* an offset is committed only after the checkpoint of its partition's streams,
  covering every record before it, is durable on disk (:meth:`Partitions.commit`);
* on assignment a partition's newest usable checkpoint is restored and
  consumption resumes at the offset it covers, so its streams stay warm; an
  unusable checkpoint is logged, counted and passed over for the previous one,
  or the partition starts cold: never a crash;
* on revocation the partition is checkpointed and committed; when the next
  assignment does not give it back, its streams are forgotten here, so a stream
  is scored by one daemon of the group only.

Without ``state.enabled`` offsets are committed after every batch and a moved or
restarted partition starts cold.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from typing import Any

import numpy as np
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from monitor.config.schema import MonitorConfig
from monitor.detection import DETECTORS, Detector
from monitor.metrics.daemon import DaemonMetrics
from monitor.state.checkpoints import CheckpointStore, SkippedCheckpoint
from monitor.state.exceptions import CheckpointError

log = logging.getLogger("monitor.daemon")


def model_signature(config: MonitorConfig) -> dict[str, Any]:
    """What a checkpoint's state must have been learned with to be restored here.

    Array names and shapes are checked separately; this adds what they cannot
    show: the detectors and the shared trees' structure (same seed, same trees).

    >>> model_signature(MonitorConfig())["hst"]
    [42, 10, 8]
    """
    h = config.detector.hst
    return {"detectors": list(DETECTORS), "hst": [h.seed, h.n_trees, h.height]}


class Partitions:
    """Bookkeeping of the assigned partitions, called by the daemon loop and on rebalance.

    Parameters
    ----------
    config
        The configuration (``state`` section, group id).
    detector
        The detection core whose streams are checkpointed, restored and released.
    consumer
        The daemon's consumer: ``commit(offsets)`` and ``seek`` are used.
    metrics
        Daemon metrics (checkpoint and restore figures).
    lock
        Held while the detector changes, so a scrape never sees a half-restored table.
    store
        Where checkpoints go; built from ``state.dir`` when ``state.enabled``.
    clock
        Wall clock (checkpoint schedule and timestamps).
    settle
        Waits until the events and dead letters of every processed record are
        acknowledged (:meth:`Daemon.settle`); called before a partition's state is
        copied for a checkpoint and before offsets are committed without one.
    """

    def __init__(
        self,
        config: MonitorConfig,
        detector: Detector,
        consumer: Any,
        metrics: DaemonMetrics,
        lock: threading.Lock,
        store: CheckpointStore | None = None,
        clock: Callable[[], float] = time.time,
        settle: Callable[[], None] = lambda: None,
    ) -> None:
        self.config = config
        self.settle = settle
        self.detector = detector
        self.consumer = consumer
        self.metrics = metrics
        self.lock = lock
        state = config.state
        if store is None and state.enabled:
            store = CheckpointStore(state.dir, config.kafka.group_id, state.keep, clock)
        self.store = store
        self.clock = clock
        self.models = model_signature(config)
        self.numbers: dict[TopicPartition, int] = {}
        """Each partition ever seen -> the small int stored as its streams' owner."""
        self.assigned: set[TopicPartition] = set()
        """Partitions currently ours, each added once its checkpoint is restored."""
        self.positions: dict[TopicPartition, int] = {}
        """Partition -> offset after its last processed record."""
        self.committed: dict[TopicPartition, int] = {}
        """Partition -> the offset last committed by this daemon."""
        self.revoked: set[TopicPartition] = set()
        """Revoked, state kept until the next assignment shows whether they come back."""
        self.next_checkpoint = clock() + state.checkpoint_interval_seconds
        self._writers = [
            ThreadPoolExecutor(1, thread_name_prefix=f"checkpoint-{i}") for i in range(2)
        ]
        """Background rounds write on the first; a commit writes on both at once."""
        self._in_flight: list[tuple[TopicPartition, int, Future[float]]] = []
        self._round: list[TopicPartition] = []
        """Partitions of the current checkpoint round not copied yet."""
        self._buffers: list[dict[str, np.ndarray] | None] = [None, None]
        """Arrays copies go into, reused from copy to copy (see commit_if_due): the first
        set for background rounds and commits, the second only while a commit writes two
        partitions at once (freed after it)."""

    # Called by the loop -----------------------------------------------------------------------

    def owner(self, partition: Any) -> int:
        """The owner number of a partition (``topic`` and ``partition`` attributes)."""
        key = TopicPartition(partition.topic, partition.partition)
        return self.numbers.setdefault(key, len(self.numbers))

    def processed(self, batch: Mapping[Any, Sequence[Any]]) -> None:
        """Note that every record of ``batch`` is processed (scored, its events sent;
        :attr:`settle` confirms them before the offsets are checkpointed or committed)."""
        for partition, records in batch.items():
            if records:
                key = TopicPartition(partition.topic, partition.partition)
                self.positions[key] = records[-1].offset + 1

    def commit_if_due(self) -> None:
        """Without checkpoints, commit now. With them, commit the checkpoints written in
        the background since the last call, and start the next round when it is due.

        The loop only copies the state (:meth:`Detector.export_streams`), one partition
        per call, so a round pauses scoring for one partition's copy at a time; writing
        and fsync happen on a background thread. A round copies the next partition once
        the previous one is written, into the same arrays: memory written before, so
        the copy costs no page faults (in a busy daemon they made a copy into fresh
        memory several times slower), and the round holds one partition's copy at a time.
        """
        if self.store is None:
            self.commit()
            return
        self._commit_written(wait=False)
        if self._in_flight:
            return
        if not self._round:
            if self.clock() < self.next_checkpoint:
                return
            self.next_checkpoint = self.clock() + self.config.state.checkpoint_interval_seconds
            self._round = self._dirty()
        # Skip a partition committed since the round began (on revoke, say).
        while self._round:
            key = self._round.pop(0)
            if self._dirty([key]):
                offset, snapshot = self._export(key)
                self._in_flight.append(
                    (key, offset, self._writers[0].submit(self._save, key, offset, snapshot))
                )
                return

    def commit(self, partitions: Iterable[TopicPartition] | None = None) -> None:
        """Checkpoint, then commit, the processed offsets of ``partitions`` (default: all),
        waiting until it is done (on revoke and shutdown).

        A partition whose checkpoint cannot be written is not committed (its records
        will be replayed after a crash), and the loop goes on. A failing Kafka commit
        raises, and the offsets stay pending for the next commit.
        """
        self._commit_written(wait=True)
        keys = self._dirty(partitions)
        if self.store is None:
            if keys:
                self.settle()  # with checkpoints, each copy (_export) settles first
            self._commit_offsets([(key, self.positions[key]) for key in keys])
            return
        # Two partitions written at once (the checksum and the writes release the
        # interpreter lock), each copied into a set of arrays the write before it is done
        # with.
        jobs: list[tuple[TopicPartition, int, Future[float]]] = []
        written = []
        try:
            for i, key in enumerate(keys):
                if len(jobs) >= 2:
                    written += self._written([jobs.pop(0)])
                offset, snapshot = self._export(key, i % 2)
                writer = self._writers[i % 2]
                jobs.append((key, offset, writer.submit(self._save, key, offset, snapshot)))
            written += self._written(jobs)
        finally:
            futures_wait([future for _, _, future in jobs])
            self._buffers[1] = None
        self._commit_offsets(written)

    def close(self) -> None:
        """Wait for background checkpoint writes and stop the writers (nothing is committed)."""
        for writer in self._writers:
            writer.shutdown(wait=True)

    def _dirty(self, partitions: Iterable[TopicPartition] | None = None) -> list[TopicPartition]:
        keys = self.positions if partitions is None else partitions
        return [
            key
            for key in keys
            if key in self.positions and self.positions[key] != self.committed.get(key)
        ]

    def _export(self, key: TopicPartition, slot: int = 0) -> tuple[int, Any]:
        """The offset a partition's checkpoint covers and a copy of its streams, taken under
        the lock into the reused arrays of ``slot``: the previous copy into them must be
        written already."""
        self.settle()  # the offset covers no record whose events are unconfirmed
        with self.lock:
            rows = self.detector.streams.owned_by([self.numbers[key]])
            buffers = self._buffers[slot]
            if buffers is None or len(buffers["streams.last_ts"]) < len(rows):
                # Grown with a quarter to spare, so a partition that gains streams does
                # not reallocate (and fault in) its copy every round.
                buffers = self.detector.export_buffers(len(rows) * 5 // 4 + 1)
                self._buffers[slot] = buffers
            return self.positions[key], self.detector.export_streams(rows, buffers)

    def _save(self, key: TopicPartition, offset: int, snapshot: Any) -> float:
        """Write one checkpoint durably; return the seconds it took."""
        assert self.store is not None
        started = time.perf_counter()
        self.store.save(key.topic, key.partition, offset, snapshot, self.models)
        return time.perf_counter() - started

    def _commit_written(self, wait: bool) -> None:
        """Commit the offsets of background checkpoints that are durable now."""
        if not self._in_flight:
            return
        if wait:
            futures_wait([future for _, _, future in self._in_flight])
        done = [job for job in self._in_flight if job[2].done()]
        self._in_flight = [job for job in self._in_flight if not job[2].done()]
        self._commit_offsets(self._written(done))

    def _written(
        self, jobs: list[tuple[TopicPartition, int, Future[float]]]
    ) -> list[tuple[TopicPartition, int]]:
        """(partition, offset) of the checkpoint writes that succeeded, waiting for each;
        the failed ones are counted and logged."""
        written = []
        for key, offset, future in jobs:
            try:
                self._observe(future.result())
            except CheckpointError as exc:
                self._failed(key, exc)
                continue
            written.append((key, offset))
        return written

    def _commit_offsets(self, written: list[tuple[TopicPartition, int]]) -> None:
        # Only partitions still ours: a revoked one was committed on revoke.
        written = [(key, offset) for key, offset in written if key in self.positions]
        if not written:
            return
        self.consumer.commit(
            offsets={key: OffsetAndMetadata(offset, "", -1) for key, offset in written}
        )
        self.committed.update(written)
        self.metrics.last_commit.set(self.clock())

    def _observe(self, seconds: float) -> None:
        self.metrics.checkpoint_seconds.observe(seconds)
        self.metrics.checkpoint_last.set(self.clock())

    def _failed(self, key: TopicPartition, exc: CheckpointError) -> None:
        self.metrics.checkpoint_failures.inc()
        log.error(
            "checkpoint of %s/%d failed, not committing it: %s", key.topic, key.partition, exc
        )

    # Called on rebalance (inside the consumer's poll) -------------------------------------------

    def on_revoked(self, partitions: Collection[Any]) -> None:
        """Checkpoint and commit the revoked partitions; keep their streams for now.

        Whether a revoked partition's streams are forgotten is decided at the next
        assignment (:meth:`on_assigned`): with eager rebalancing every partition is
        revoked and most come straight back, and those keep their warm state.
        """
        keys = {TopicPartition(p.topic, p.partition) for p in partitions}
        try:
            self.commit(keys)
        except Exception as exc:  # noqa: BLE001 - the group moved on; the next owner replays
            log.warning("commit on revoke failed (records will be replayed): %s", exc)
        finally:
            for key in keys:
                self.positions.pop(key, None)
                self.committed.pop(key, None)
            self.assigned -= keys
            self.revoked |= keys

    def on_assigned(self, partitions: Collection[Any]) -> None:
        """Release the streams of partitions gone elsewhere; restore those newly ours."""
        keys = {TopicPartition(p.topic, p.partition) for p in partitions}
        gone = self.revoked - keys
        kept = self.revoked & keys
        self.revoked = set()
        if gone:
            self._release(gone)
            # The checkpoint copy was sized for partitions no longer all ours: free it;
            # the next round allocates one for the largest partition left.
            self._buffers = [None, None]
        fresh = keys - kept - self.assigned
        if fresh and self.store is not None:
            self._restore(sorted(fresh))
        # Only now, with their streams restored: another thread that sees a partition
        # in ``assigned`` also sees its streams.
        self.assigned |= keys

    def _release(self, keys: set[TopicPartition]) -> None:
        numbers = [self.numbers[k] for k in keys if k in self.numbers]
        with self.lock:
            rows = self.detector.streams.owned_by(numbers)
            self.detector.drop_streams(rows)
            tracked = len(self.detector.streams)
        self.metrics.streams_released.inc(len(rows))
        self.metrics.streams.set(tracked)
        log.info(
            "released %d streams of partitions now owned elsewhere: %s",
            len(rows),
            sorted((k.topic, k.partition) for k in keys),
        )

    def _restore(self, keys: list[TopicPartition]) -> None:
        assert self.store is not None
        started = time.perf_counter()
        restored = 0
        for key in keys:
            number = self.numbers.setdefault(key, len(self.numbers))
            skipped: list[SkippedCheckpoint] = []
            checkpoint = self.store.load_latest(key.topic, key.partition, self.models, skipped)
            for skip in skipped:
                self.metrics.checkpoint_skipped.labels(reason=skip.reason).inc()
            if checkpoint is None:
                log.info("no usable checkpoint for %s/%d: its streams start cold", *key)
                continue
            try:
                with self.lock:
                    rows = self.detector.import_streams(checkpoint.snapshot, owner=number)
            except ValueError as exc:
                self.metrics.checkpoint_skipped.labels(reason="incompatible").inc()
                log.warning(
                    "checkpoint %s does not fit these models, %s/%d starts cold: %s",
                    checkpoint.path,
                    *key,
                    exc,
                )
                continue
            self.consumer.seek(key, checkpoint.offset)
            placed = int((rows >= 0).sum())
            restored += placed
            log.info(
                "restored %d streams of %s/%d from %s; resuming at offset %d",
                placed,
                key.topic,
                key.partition,
                checkpoint.path.name,
                checkpoint.offset,
            )
            if placed < len(rows):
                log.warning(
                    "%d streams of %s/%d not restored: streams.max_streams reached",
                    len(rows) - placed,
                    *key,
                )
        self.metrics.streams_restored.inc(restored)
        self.metrics.restore_seconds.set(time.perf_counter() - started)
        with self.lock:
            self.metrics.streams.set(len(self.detector.streams))
