"""Checkpoints, commits and partition moves of the daemon, driven through in-memory clients.

The same behaviour against the real broker is in tests/daemon/test_restart.py.
"""

import json
import threading
import time

import numpy as np
import orjson
from kafka import TopicPartition
from prometheus_client import CollectorRegistry

from monitor.config import MonitorConfig
from monitor.daemon import Daemon
from monitor.daemon.partitions import model_signature
from monitor.metrics import DaemonMetrics
from monitor.state.checkpoints import CheckpointStore
from tests.daemon.fakes import FakeConsumer, FakeProducer, record

NOW = 1_700_100_000.0
P0, P1 = TopicPartition("metrics", 0), TopicPartition("metrics", 1)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def batch(partition, start, count, streams=("a", "b")):
    """``count`` points of each stream, offsets from ``start`` on ``partition``."""
    records, offset = [], start
    for _ in range(count):
        for stream in streams:
            value = 5.0 + float(np.sin(offset / 5))
            body = orjson.dumps(
                {"stream": stream, "ts": 1_700_000_000.0 + 60 * offset, "value": value}
            )
            records.append(record(partition.topic, partition.partition, offset, body))
            offset += 1
    return {partition: records}


def make_daemon(batches, tmp_path, clock=None, **state):
    settings = {"state": {"dir": str(tmp_path / "state"), **state}}
    config = MonitorConfig.model_validate_json(json.dumps(settings))
    consumer = FakeConsumer(list(batches), [])
    registry = CollectorRegistry()
    daemon = Daemon(
        config, consumer, FakeProducer(), DaemonMetrics(registry), clock=clock or (lambda: NOW)
    )
    consumer.stop = daemon.stop
    return daemon, consumer, registry


def store_of(daemon):
    return daemon.partitions.store


def test_offsets_are_committed_only_with_a_checkpoint_covering_them(tmp_path):
    clock = Clock()

    def later(listener):
        clock.now += 31.0

    batches = [batch(P0, 0, 50), batch(P1, 0, 50, streams=("c",)), later, batch(P0, 100, 10)]
    daemon, consumer, registry = make_daemon(batches, tmp_path, clock=clock)
    assert daemon.run() == 0
    # A round starts when the interval has passed (after the empty poll of `later`) and
    # is committed once written; the rest is committed at shutdown.
    committed_in_turn = {
        partition: [commit[partition] for commit in consumer.history if partition in commit]
        for partition in (P0, P1)
    }
    assert committed_in_turn == {P0: [100, 120], P1: [50]}
    store = store_of(daemon)
    for commit in consumer.history:
        for partition, offset in commit.items():
            assert store.directory("metrics", partition.partition) / f"{offset:020d}.npz" in set(
                store.paths("metrics", partition.partition)
            )
    for partition, offset, streams in ((P0, 120, ["a", "b"]), (P1, 50, ["c"])):
        checkpoint = store.load_latest(
            "metrics", partition.partition, model_signature(daemon.config)
        )
        assert checkpoint.offset == offset
        assert sorted(checkpoint.snapshot.keys) == streams
    assert [p.name for p in store.paths("metrics", 0)] == [f"{120:020d}.npz", f"{100:020d}.npz"]
    assert registry.get_sample_value("monitor_checkpoint_last_timestamp_seconds") == clock.now


def test_a_failed_checkpoint_commits_nothing_and_the_loop_goes_on(tmp_path):
    (tmp_path / "state").write_text("a file where the directory should be")
    daemon, consumer, registry = make_daemon([batch(P0, 0, 20), batch(P0, 40, 20)], tmp_path)
    assert daemon.run() == 0
    assert consumer.committed == {}
    assert registry.get_sample_value("monitor_points_scored_total") == 80
    assert registry.get_sample_value("monitor_checkpoint_failures_total") == 1


def test_without_state_every_batch_is_committed(tmp_path):
    daemon, consumer, _ = make_daemon([batch(P0, 0, 5), batch(P0, 10, 5)], tmp_path, enabled=False)
    assert daemon.run() == 0
    assert consumer.commits == 2 and consumer.committed == {P0: 20}
    assert not (tmp_path / "state").exists()


def test_a_partition_moved_away_takes_its_streams_and_one_given_back_keeps_them(tmp_path):
    def rebalance(listener):
        listener.on_partitions_revoked({P0, P1})
        listener.on_partitions_assigned({P0})

    batches = [lambda listener: listener.on_partitions_assigned({P0, P1}), batch(P0, 0, 30)]
    batches += [batch(P1, 0, 30, streams=("c",)), rebalance]
    daemon, consumer, registry = make_daemon(batches, tmp_path)
    assert daemon.run() == 0
    assert sorted(daemon.detector.streams.rows) == ["a", "b"]
    assert daemon.detector.state.count[daemon.detector.streams.rows["a"]] == 30
    assert registry.get_sample_value("monitor_streams_released_total") == 1
    # Both partitions were checkpointed and committed on revoke, before P1 left.
    assert consumer.committed == {P0: 60, P1: 30}
    assert consumer.seeks == []


def test_partitions_moved_away_free_the_arrays_checkpoints_are_copied_into(tmp_path):
    copies = []

    def rebalance(listener):
        listener.on_partitions_revoked({P0, P1})
        copies.append(daemon.partitions._buffers[0] is not None)  # the checkpoints on revoke
        listener.on_partitions_assigned({P0})
        copies.append(daemon.partitions._buffers)

    batches = [lambda listener: listener.on_partitions_assigned({P0, P1}), batch(P0, 0, 30)]
    batches += [batch(P1, 0, 30, streams=("c",)), rebalance]
    daemon, _, _ = make_daemon(batches, tmp_path)
    assert daemon.run() == 0
    assert copies == [True, [None, None]]


def test_an_assigned_partition_is_restored_warm_at_its_checkpoint_offset(tmp_path):
    first, _, _ = make_daemon([batch(P0, 0, 400), batch(P1, 0, 400, streams=("c",))], tmp_path)
    assert first.run() == 0
    learned = {
        key: first.detector.state.count[row] for key, row in first.detector.streams.rows.items()
    }
    assign = [lambda listener: listener.on_partitions_assigned({P1})]
    second, consumer, registry = make_daemon(assign, tmp_path)
    assert second.run() == 0
    assert consumer.seeks == [(P1, 400)]
    assert list(second.detector.streams.rows) == ["c"]
    assert second.detector.state.count[0] == learned["c"] == 400
    assert registry.get_sample_value("monitor_streams_restored_total") == 1
    assert registry.get_sample_value("monitor_streams_tracked") == 1


def test_an_unusable_checkpoint_is_skipped_and_the_partition_starts_cold(tmp_path):
    first, _, _ = make_daemon([batch(P0, 0, 10)], tmp_path)
    assert first.run() == 0
    (newest,) = store_of(first).paths("metrics", 0)
    newest.write_bytes(b"not an archive")
    assign = [lambda listener: listener.on_partitions_assigned({P0})]
    second, consumer, registry = make_daemon(assign, tmp_path)
    assert second.run() == 0
    assert consumer.seeks == [] and len(second.detector.streams) == 0
    assert (
        registry.get_sample_value("monitor_checkpoints_skipped_total", {"reason": "corrupt"}) == 1
    )


def test_checkpoints_of_other_models_are_not_restored(tmp_path):
    first, _, _ = make_daemon([batch(P0, 0, 10)], tmp_path)
    assert first.run() == 0
    config = MonitorConfig.model_validate(
        {"state": {"dir": str(tmp_path / "state")}, "detector": {"hst": {"seed": 7}}}
    )
    store = CheckpointStore(config.state.dir, config.kafka.group_id)
    skipped = []
    assert store.load_latest("metrics", 0, model_signature(config), skipped) is None
    assert [s.reason for s in skipped] == ["incompatible"]


def test_a_checkpoint_round_copies_one_partition_at_a_time_into_the_same_arrays(tmp_path):
    clock = Clock()
    daemon, consumer, _ = make_daemon([], tmp_path, clock=clock)
    daemon.process_batch(batch(P0, 0, 10))
    daemon.process_batch(batch(P1, 0, 10, streams=("c",)))
    partitions = daemon.partitions
    writer_busy = threading.Event()
    partitions._writers[0].submit(writer_busy.wait, 10)  # P0's write waits behind this
    clock.now += 31.0
    partitions.commit_if_due()
    ((key, offset, written),) = partitions._in_flight
    assert (key, offset) == (P0, 20)
    buffers = partitions._buffers[0]
    partitions.commit_if_due()  # P0 is not written yet: P1 is not copied over its arrays
    assert [key for key, _, _ in partitions._in_flight] == [P0]
    writer_busy.set()
    written.result(timeout=10)
    partitions.commit_if_due()  # commits P0, copies P1 into the same arrays
    assert consumer.committed == {P0: 20}
    assert [key for key, _, _ in partitions._in_flight] == [P1]
    assert partitions._buffers[0] is buffers
    partitions.commit()
    assert consumer.committed == {P0: 20, P1: 10}
    partitions.close()
    signature = model_signature(daemon.config)
    for partition, streams in ((P0, ["a", "b"]), (P1, ["c"])):
        checkpoint = store_of(daemon).load_latest("metrics", partition.partition, signature)
        assert sorted(checkpoint.snapshot.keys) == streams
        assert len(checkpoint.snapshot.arrays["forecaster.level"]) == len(streams)


def test_a_commit_writes_two_partitions_at_once_into_two_sets_of_arrays(tmp_path):
    daemon, consumer, _ = make_daemon([], tmp_path)
    partitions = [TopicPartition("metrics", p) for p in range(3)]
    for p in partitions:
        daemon.process_batch(batch(p, 100 * p.partition, 10, streams=(f"s{p.partition}",)))
    writing: list[int] = []
    overlapped = threading.Event()
    save = daemon.partitions._save

    def slow_save(key, offset, snapshot):
        writing.append(key.partition)
        if len(writing) == 2:
            overlapped.set()  # the second write started while the first one waits
        arrays = {name: values.copy() for name, values in snapshot.arrays.items()}
        overlapped.wait(10)
        time.sleep(0.05)  # room for a wrong copy into these arrays to happen first
        for name, values in snapshot.arrays.items():  # not copied over meanwhile
            assert np.array_equal(values, arrays[name], equal_nan=True), name
        return save(key, offset, snapshot)

    daemon.partitions._save = slow_save
    daemon.partitions.commit()
    assert overlapped.is_set() and sorted(writing) == [0, 1, 2]
    assert consumer.committed == {p: 100 * p.partition + 10 for p in partitions}
    assert daemon.partitions._buffers[0] is not None and daemon.partitions._buffers[1] is None
    signature = model_signature(daemon.config)
    for p in partitions:
        checkpoint = store_of(daemon).load_latest("metrics", p.partition, signature)
        assert list(checkpoint.snapshot.keys) == [f"s{p.partition}"]
    daemon.partitions.close()
