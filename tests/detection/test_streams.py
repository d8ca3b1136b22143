"""The stream table: rows, last-seen wall times, idle eviction and reuse of freed rows."""

from __future__ import annotations

import json
import threading

import numpy as np
from prometheus_client import CollectorRegistry

from monitor.config import MonitorConfig
from monitor.config.schema import DetectorConfig
from monitor.detection import Detector, StreamTable
from monitor.metrics import StreamCollector
from monitor.records import Point
from monitor.records.batch import RowsByNumber

T0 = 1_700_000_000.0


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ids(*keys: str) -> list[tuple[str, tuple]]:
    return [(k, ()) for k in keys]


def table_of(max_streams: int = 100, capacity: int = 4) -> tuple[StreamTable, Clock]:
    clock = Clock()
    return StreamTable(DetectorConfig(), (), max_streams, capacity, clock=clock), clock


def test_lookup_marks_rows_seen_at_the_clock_or_the_given_time():
    table, clock = table_of()
    rows, _ = table.lookup(["a", "b"], ids("a", "b"))
    assert table.state.last_seen[rows].tolist() == [T0, T0]
    table.lookup(["b"], ids("b"), now=T0 + 5)
    assert table.state.last_seen[rows].tolist() == [T0, T0 + 5]
    clock.now = T0 + 9
    table.lookup(["a"], ids("a"))
    assert table.state.last_seen[rows].tolist() == [T0 + 9, T0 + 5]


def test_points_with_no_room_mark_nothing_seen():
    table, _ = table_of(max_streams=1)
    rows, created = table.lookup(["a", "b"], ids("a", "b"), now=T0)
    assert rows.tolist() == [0, -1] and created.tolist() == [0]
    table.lookup(["b", "c"], ids("b", "c"), now=T0 + 5)  # -1 must not index the last row
    assert table.state.last_seen.tolist() == [T0]


def by_number(table, keys, numbers, cache, now=None):
    """Look ``keys`` up with their stream ``numbers`` and a row cache."""
    return table.lookup(keys, ids(*keys), now=now, numbers=np.array(numbers), cache=cache)


def test_lookup_by_number_finds_the_rows_lookup_by_key_finds():
    by_key, _ = table_of()
    numbered, _ = table_of()
    cache = RowsByNumber()
    number_of = {"a": 0, "b": 1, "c": 2, "d": 3}
    for batch in (["a", "b"], ["b", "c", "a", "c"], ["d", "a"], ["c", "d", "b"]):
        rows, created = by_key.lookup(batch, ids(*batch))
        got, got_created = by_number(numbered, batch, [number_of[k] for k in batch], cache)
        assert got.tolist() == rows.tolist() and got_created.tolist() == created.tolist()
        assert numbered.state.last_seen[got].tolist() == [T0] * len(batch)


def test_rows_by_number_are_forgotten_once_the_table_frees_rows():
    table, _ = table_of()
    cache = RowsByNumber()
    by_number(table, ["a", "b"], [0, 1], cache, now=T0)
    by_number(table, ["b"], [1], cache, now=T0 + 100)
    assert table.evict_idle(now=T0 + 100, ttl=50).tolist() == [0]  # "a" is gone
    # "c" takes the freed row 0; "a" comes back as a new stream, not into row 0.
    rows, created = by_number(table, ["c", "a"], [2, 0], cache, now=T0 + 101)
    assert rows.tolist() == [0, 2] and created.tolist() == [0, 2]
    assert table.keys == ["c", "b", "a"]


def test_streams_without_room_are_not_kept_by_number():
    table, _ = table_of(max_streams=1)
    cache = RowsByNumber()
    rows, _ = by_number(table, ["a", "b"], [0, 1], cache, now=T0)
    assert rows.tolist() == [0, -1] and cache.rows[:2].tolist() == [0, -1]
    table.remove(np.array([0]))  # room again: "b" gets a row the next time
    rows, created = by_number(table, ["b"], [1], cache, now=T0)
    assert rows.tolist() == [0] and created.tolist() == [0] and table.keys == ["b"]


def test_evict_idle_frees_rows_blanks_entries_and_forgets_keys():
    table, _ = table_of()
    table.lookup(["a", "b", "c"], [("a", (("h", "1"),)), ("b", ()), ("c", ())], now=T0)
    table.lookup(["b"], ids("b"), now=T0 + 50)
    evicted = table.evict_idle(T0 + 100, ttl=60)
    assert evicted.tolist() == [0, 2]
    assert evicted.dtype == np.int64
    assert len(table) == 1 and table.extent == 3
    assert table.rows == {"b": 1}
    assert table.keys == ["", "b", ""]
    assert table.names == ["", "b", ""]
    assert table.labels == [(), (), ()]
    assert np.isinf(table.state.last_seen[[0, 2]]).all()  # free rows are never idle
    assert table.evict_idle(T0 + 100, ttl=60).tolist() == []


def test_idle_is_measured_inclusively_from_the_last_point():
    table, _ = table_of()
    table.lookup(["a"], ids("a"), now=T0)
    assert table.evict_idle(T0 + 59.999, ttl=60).tolist() == []
    assert table.evict_idle(T0 + 60, ttl=60).tolist() == [0]


def test_ttl_zero_evicts_nothing():
    table, _ = table_of()
    table.lookup(["a", "b"], ids("a", "b"), now=T0)
    assert table.evict_idle(T0 + 10**9, ttl=0).tolist() == []
    assert len(table) == 2 and table.keys == ["a", "b"]


def test_new_streams_take_freed_rows_lowest_first_before_growing():
    table, _ = table_of(capacity=4)
    table.lookup(list("abcd"), ids(*"abcd"), now=T0)
    table.lookup(["b"], ids("b"), now=T0 + 100)
    assert table.evict_idle(T0 + 100, ttl=60).tolist() == [0, 2, 3]
    rows, created = table.lookup(["x", "y", "b", "z", "w"], ids("x", "y", "b", "z", "w"))
    assert rows.tolist() == [0, 2, 1, 3, 4]
    assert created.tolist() == [0, 2, 3, 4]
    assert table.keys == ["x", "b", "y", "z", "w"]
    assert table.rows == {"x": 0, "b": 1, "y": 2, "z": 3, "w": 4}
    assert table.state.capacity == 8


def test_reused_row_gets_the_new_streams_settings():
    cfg = MonitorConfig.model_validate_json(
        json.dumps({"streams": {"overrides": [{"match": "quiet*", "disabled": True, "warmup": 5}]}})
    )
    table = StreamTable(cfg.detector, cfg.streams.overrides, 10, clock=Clock())
    table.lookup(["quiet.a"], ids("quiet.a"), now=T0)
    table.state.last_ts[0] = T0
    table.evict_idle(T0 + 10, ttl=1)
    (row,), _ = table.lookup(["loud"], ids("loud"), now=T0 + 10)
    assert row == 0
    assert not table.state.disabled[0]
    assert table.state.warmup[0] == cfg.detector.warmup
    assert table.state.last_ts[0] == -np.inf


def test_max_streams_bounds_live_streams_and_eviction_makes_room():
    table, _ = table_of(max_streams=2)
    table.lookup(["a", "b"], ids("a", "b"), now=T0)
    rows, _ = table.lookup(["c"], ids("c"), now=T0 + 1)
    assert rows.tolist() == [-1]
    table.evict_idle(T0 + 100, ttl=60)
    rows, created = table.lookup(["c", "d", "e"], ids("c", "d", "e"), now=T0 + 100)
    assert rows.tolist() == [0, 1, -1] and created.tolist() == [0, 1]
    assert len(table) == 2 and table.extent == 2


# --- with the detector ---------------------------------------------------------------------


def detector_with_clock(**streams: object) -> tuple[Detector, Clock]:
    config = MonitorConfig.model_validate_json(
        json.dumps({"detector": {"warmup": 20}, "streams": streams})
    )
    detector = Detector(config, capacity=4)
    clock = Clock()
    detector.streams.clock = clock
    return detector, clock


def feed(detector: Detector, name: str, values: np.ndarray, start: float = T0):
    points = [Point(name, (), start + 60.0 * t, float(v)) for t, v in enumerate(values)]
    return detector.process(points).scored


def evict(detector: Detector, now: float, ttl: float) -> np.ndarray:
    rows = detector.streams.evict_idle(now, ttl)
    detector.release(rows)
    return rows


def test_a_stream_in_a_reused_row_starts_fresh():
    rng = np.random.default_rng(3)
    old = 50 + rng.normal(0, 1, 300)
    old[-1] = 500.0  # the old stream ends on an anomaly: a stale score and events
    new = 1000 + rng.normal(0, 5, 300)
    new[250] = 2000.0

    detector, clock = detector_with_clock()
    feed(detector, "old", old)
    row = detector.streams.rows["old"]
    assert detector.state.anomalous[row] and detector.state.events[row] > 0
    clock.now += 3600
    assert evict(detector, clock.now, ttl=600).tolist() == [row]
    for component in detector._components():
        for name in component:
            initial = component.specs[name].allocate(1)[0]
            np.testing.assert_array_equal(component[name][row], initial, err_msg=name)
    reused = feed(detector, "new", new, start=T0 + 7200)
    assert detector.streams.rows["new"] == row

    fresh_detector, _ = detector_with_clock()
    fresh = feed(fresh_detector, "new", new, start=T0 + 7200)
    for name in ("score", "threshold", "expected", "lower", "upper", "anomalous"):
        np.testing.assert_array_equal(getattr(reused, name), getattr(fresh, name), err_msg=name)
    assert reused.score[0] == fresh.score[0]
    assert detector.state.count[row] == len(new)
    assert detector.state.events[row] == fresh_detector.state.events[0]


def test_warmup_count_of_a_reused_row_starts_at_zero():
    detector, clock = detector_with_clock()
    feed(detector, "old", np.full(50, 3.0))
    clock.now += 100
    evict(detector, clock.now, ttl=10)
    assert detector.state.count[0] == 0
    feed(detector, "new", np.ones(1))
    assert detector.streams.rows["new"] == 0
    assert detector.state.count[0] == 1


def test_release_of_no_rows_does_nothing():
    detector, _ = detector_with_clock()
    feed(detector, "a", np.ones(5))
    detector.release(np.zeros(0, dtype=np.int64))
    assert detector.state.count[0] == 5


def scrape(detector: Detector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(StreamCollector(detector, threading.Lock()))
    return registry


def test_evicted_streams_vanish_from_the_collector():
    detector, clock = detector_with_clock()
    for name in ("a", "b", "c"):
        feed(detector, name, np.ones(3))
    clock.now += 100
    feed(detector, "c", np.ones(1), start=T0 + 1000)
    registry = scrape(detector)
    assert registry.get_sample_value("monitor_stream_value", {"stream": "a"}) == 1.0
    assert len(evict(detector, clock.now + 50, ttl=120)) == 2
    for stream in ("a", "b"):
        assert registry.get_sample_value("monitor_stream_value", {"stream": stream}) is None
        assert registry.get_sample_value("monitor_anomaly_events_total", {"stream": stream}) is None
    shown = {
        sample.labels["stream"]
        for family in registry.collect()
        for sample in family.samples
        if "stream" in sample.labels
    }
    assert "" not in shown and not shown & {"a", "b"}


def test_live_streams_above_an_evicted_row_stay_in_the_collector():
    detector, clock = detector_with_clock()
    feed(detector, "a", np.ones(3))
    clock.now += 100
    feed(detector, "b", np.full(3, 2.0), start=T0 + 1000)
    evict(detector, clock.now + 50, ttl=120)
    assert detector.streams.rows == {"b": 1}
    registry = scrape(detector)
    assert registry.get_sample_value("monitor_stream_value", {"stream": "b"}) == 2.0


def test_a_flood_of_new_names_keeps_the_arrays_bounded():
    """1,000,000 distinct names in batches of 10,000, max_streams 10,000, TTL 1 s."""
    max_streams, batch, names = 10_000, 10_000, 1_000_000
    bound = max_streams  # the arrays grow within a reservation of max_streams rows
    detector, clock = detector_with_clock(max_streams=max_streams, idle_ttl_seconds=1.0)
    table = detector.streams
    admitted = 0
    for start in range(0, names, batch):
        points = [Point(f"flood_{i}", (), clock.now, 1.0) for i in range(start, start + batch)]
        outcome = detector.process(points)
        admitted += len(points) - len(outcome.over_capacity)
        assert len(table) <= max_streams
        assert table.extent <= max_streams
        assert table.state.capacity <= bound
        assert all(c.capacity <= bound for c in detector._components())
        assert len(table.keys) == len(table.names) == len(table.labels) <= max_streams
        clock.now += 1.0
        evict(detector, clock.now, ttl=1.0)
        assert len(table) == 0 and not table.rows
    assert admitted == names
    assert table.state.capacity == bound
