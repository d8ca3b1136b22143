"""ArrayState: growth by copying and within a reservation keep every row's values."""

from __future__ import annotations

import mmap

import numpy as np
import pytest

from monitor.state.arrays import ArraySpec, ArrayState

SPECS = {
    "mean": ArraySpec((), np.float64, np.nan),
    "counts": ArraySpec((3,), np.uint16, 0),
    "seen": ArraySpec((), np.bool_, True),
}


def filled(state: ArrayState, rows: int) -> None:
    """Write distinct values into the first ``rows`` rows of every array."""
    state.ensure(rows)
    state.mean[:rows] = np.arange(rows) + 0.5
    state.counts[:rows] = np.arange(rows * 3).reshape(rows, 3) % 60_000
    state.seen[:rows] = np.arange(rows) % 2 == 0


def assert_same(state: ArrayState, reference: ArrayState) -> None:
    assert state.capacity == reference.capacity
    for name in SPECS:
        np.testing.assert_array_equal(state[name], reference[name])


@pytest.mark.parametrize("reserve", [0, 50, 5_000])
def test_growth_keeps_values_and_gives_new_rows_their_initial_values(reserve):
    state = ArrayState(SPECS, capacity=4)
    state.reserve(reserve)
    filled(state, 4)
    for rows in (5, 17, 40, 41, 400, 3_000):
        state.ensure(rows)
        assert state.capacity >= rows
        assert np.allclose(state.mean[:4], [0.5, 1.5, 2.5, 3.5])
        assert state.counts[3].tolist() == [9, 10, 11]
        assert state.seen[:4].tolist() == [True, False, True, False]
        assert np.isnan(state.mean[4:]).all()
        assert not state.counts[4:].any()
        assert state.seen[4:].all()
        for name in SPECS:
            assert len(state[name]) == state.capacity
            assert getattr(state, name) is state[name]


def test_growth_within_a_reservation_moves_nothing_and_grows_by_a_quarter():
    state = ArrayState(SPECS, capacity=8)
    state.reserve(1_000)
    before = state.counts
    state.ensure(9)
    assert state.capacity == 10  # 8 + 8 // 4
    assert np.shares_memory(before, state.counts)
    state.ensure(999)
    assert state.capacity == 999
    state.ensure(1_000)
    assert state.capacity == 1_000
    assert np.shares_memory(before, state.counts)


def test_growth_past_the_reservation_copies_and_keeps_values():
    state = ArrayState(SPECS, capacity=4)
    state.reserve(10)
    filled(state, 10)
    state.ensure(11)
    assert state.capacity == 20  # doubling again, outside the reservation
    assert np.allclose(state.mean[:10], np.arange(10) + 0.5)
    assert np.isnan(state.mean[10:]).all() and state.seen[10:].all()


def test_a_reservation_taken_after_writes_keeps_them():
    state = ArrayState(SPECS, capacity=6)
    filled(state, 6)
    reference = ArrayState(SPECS, capacity=6)
    filled(reference, 6)
    state.reserve(100)
    assert_same(state, reference)
    state.reserve(50)  # smaller than the one held: nothing changes
    assert_same(state, reference)


def test_without_mappings_the_arrays_grow_by_copying(monkeypatch):
    def refused(*args, **kwargs):
        raise OSError("mapping refused")

    monkeypatch.setattr(mmap, "mmap", refused)
    state = ArrayState(SPECS, capacity=4)
    state.reserve(1_000)
    filled(state, 4)
    before = state.mean
    state.ensure(5)
    assert state.capacity == 8 and not np.shares_memory(before, state.mean)
    assert np.allclose(state.mean[:4], [0.5, 1.5, 2.5, 3.5]) and np.isnan(state.mean[4:]).all()


def test_snapshot_and_restore_through_a_reservation():
    state = ArrayState(SPECS, capacity=4)
    state.reserve(64)
    filled(state, 20)
    rows = np.array([19, 3, 7])
    copy = state.snapshot(rows)
    fresh = ArrayState(SPECS, capacity=2)
    fresh.reserve(64)
    fresh.restore(rows, copy)
    for name in SPECS:
        np.testing.assert_array_equal(fresh[name][rows], state[name][rows])
    assert fresh.capacity >= 20
