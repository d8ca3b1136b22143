"""Synthetic streams: determinism, anomalies placed as specified, interleaving."""

from __future__ import annotations

import time

import numpy as np
import pytest

from monitor.demo.synthetic import (
    FLEET_METRICS,
    KINDS,
    MIN_GAP,
    Anomaly,
    SyntheticSeries,
    interleave,
    interleave_order,
    make_fleet,
    make_series,
)

ALL_KINDS = KINDS  # ("spike", "level_shift", "dropout")


def test_same_seed_same_series_other_seed_differs() -> None:
    a = make_series("m", 3000, seed=11, kinds=ALL_KINDS)
    b = make_series("m", 3000, seed=11, kinds=ALL_KINDS)
    c = make_series("m", 3000, seed=12, kinds=ALL_KINDS)
    assert np.array_equal(a.values, b.values) and np.array_equal(a.ts, b.ts)
    assert a.anomalies == b.anomalies and a.params == b.params
    assert not np.array_equal(a.values, c.values)


def test_fleet_is_deterministic() -> None:
    one, two = make_fleet(30, 800, seed=5), make_fleet(30, 800, seed=5)
    assert [s.key for s in one] == [s.key for s in two]
    assert all(np.array_equal(x.values, y.values) for x, y in zip(one, two, strict=True))
    assert [x.anomalies for x in one] == [y.anomalies for y in two]
    other = make_fleet(30, 800, seed=6)
    assert [x.anomalies for x in one] != [y.anomalies for y in other]


def test_timestamps_and_shape() -> None:
    s = make_series("m", 500, seed=1, start_ts=100.0, step=15.0, labels=(("b", "2"), ("a", "1")))
    assert s.ts[0] == 100.0 and np.all(np.diff(s.ts) == 15.0)
    assert len(s) == len(s.ts) == len(s.values) == 500
    assert s.labels == (("a", "1"), ("b", "2"))
    assert s.key == "m{a=1,b=2}"
    assert not s.values.flags.writeable


def test_clean_base_does_not_depend_on_the_anomalies() -> None:
    clean = make_series("m", 2000, seed=3)
    dirty = make_series("m", 2000, seed=3, kinds=ALL_KINDS)
    assert clean.anomalies == ()
    outside = ~dirty.anomaly_mask()
    assert np.array_equal(clean.values[outside], dirty.values[outside])
    assert clean.params == dirty.params


@pytest.mark.parametrize("seed", range(25))
def test_anomalies_are_placed_as_specified(seed: int) -> None:
    n = 2000
    clean = make_series("m", n, seed=seed)
    s = make_series("m", n, seed=seed, kinds=ALL_KINDS)
    level, amplitude, sigma = (s.params[k] for k in ("level", "amplitude", "sigma_total"))
    assert sigma == pytest.approx(np.sqrt(amplitude**2 / 2 + s.params["noise_sigma"] ** 2))
    assert [a.kind for a in s.anomalies] == ["spike", "dropout", "level_shift"]

    assert s.anomalies[0].start >= 0.4 * n
    for before, after in zip(s.anomalies, s.anomalies[1:], strict=False):
        assert after.start - before.end >= MIN_GAP

    spike, dropout, shift = s.anomalies
    assert len(spike) == 1
    i = spike.start
    # The spike sits 8..15 sigma_total from the expected value; the clean point at the
    # same index is the expected value plus noise.
    deviation = abs(s.values[i] - clean.values[i])
    noise = 5 * s.params["noise_sigma"]
    assert 8 * sigma - noise <= deviation <= 15 * sigma + noise
    assert abs(s.values[i] - level) >= 8 * sigma - amplitude

    assert 10 <= len(dropout) <= 30
    assert np.all(s.values[dropout.start : dropout.end] == 0.0)
    assert s.values[dropout.start - 1] != 0.0 and s.values[dropout.end] != 0.0

    assert shift.end == n and n - shift.start >= MIN_GAP
    moved = s.values[shift.start :] - clean.values[shift.start :]
    assert np.allclose(moved, moved[0])
    assert 6 * sigma <= abs(moved[0]) <= 10 * sigma

    untouched = ~s.anomaly_mask()
    assert np.array_equal(s.values[untouched], clean.values[untouched])
    assert np.all(clean.values > 0)


def test_only_the_requested_kinds_are_planted() -> None:
    for kind in KINDS:
        s = make_series("m", 1000, seed=2, kinds=(kind,))
        assert [a.kind for a in s.anomalies] == [kind]
    assert make_series("m", 1000, seed=2, kinds=("spike", "spike")).anomalies[1].kind == "spike"


def test_anomalies_that_do_not_fit_are_refused() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        make_series("m", 300, seed=1, kinds=ALL_KINDS)
    with pytest.raises(ValueError, match="unknown anomaly kind"):
        make_series("m", 300, seed=1, kinds=("wobble",))  # type: ignore[arg-type]


def test_fleet_names_labels_and_clean_streams() -> None:
    fleet = make_fleet(90, 1000, seed=42)
    keys = [s.key for s in fleet]
    assert len(set(keys)) == 90
    assert {s.name for s in fleet} == set(FLEET_METRICS)
    assert fleet[0].labels == (("host", "h-0001"),) and fleet[89].labels == (("host", "h-0030"),)

    anomalous = [s for s in fleet if s.anomalies]
    clean = [s for s in fleet if not s.anomalies]
    assert len(anomalous) == 30 and len(clean) == 60
    assert all(len(s.anomalies) == 1 for s in anomalous)
    kinds = [s.anomalies[0].kind for s in anomalous]
    assert kinds == [KINDS[i % 3] for i in range(30)]  # in turn, by stream order
    assert all(s.anomalies[0].start >= 400 for s in anomalous)
    assert all(np.array_equal(s.ts, fleet[0].ts) for s in fleet)


def test_small_fleets() -> None:
    assert make_fleet(0, 100, seed=1) == []
    assert len(make_fleet(1, 500, seed=1)[0].anomalies) == 1
    assert len(make_fleet(3, 500, seed=1, anomalous_fraction=0.0)) == 3
    assert all(not s.anomalies for s in make_fleet(3, 500, seed=1, anomalous_fraction=0.0))


def _series(name: str, ts: list[float]) -> SyntheticSeries:
    return SyntheticSeries(name, (), np.array(ts), np.zeros(len(ts)))


def test_interleave_orders_by_timestamp_then_series() -> None:
    series = [
        _series("a", [0.0, 10.0, 20.0]),
        _series("b", [5.0, 10.0]),
        _series("c", [10.0, 10.0, 30.0]),
        _series("d", []),
    ]
    order = list(interleave(series))
    assert order == [(0, 0), (1, 0), (0, 1), (1, 1), (2, 0), (2, 1), (0, 2), (2, 2)]
    assert list(interleave([])) == []


def test_interleave_matches_a_python_sort_on_a_fleet() -> None:
    fleet = make_fleet(12, 300, seed=9, step=60.0)
    shifted = [
        SyntheticSeries(s.name, s.labels, s.ts + 7.0 * (i % 5), s.values)
        for i, s in enumerate(fleet)
    ]
    expected = sorted(
        ((i, j) for i, s in enumerate(shifted) for j in range(len(s))),
        key=lambda ij: (shifted[ij[0]].ts[ij[1]], ij[0], ij[1]),
    )
    assert list(interleave(shifted)) == expected
    series_index, point_index = interleave_order(shifted)
    assert series_index.dtype == np.int64 and len(point_index) == 12 * 300


def test_interleave_of_a_large_fleet_is_fast() -> None:
    fleet = make_fleet(1000, 2000, seed=1)
    started = time.perf_counter()
    count = sum(1 for _ in interleave(fleet))
    elapsed = time.perf_counter() - started
    assert count == 2_000_000
    assert elapsed < 1.5  # typically ~0.2 s


def test_anomaly_validation() -> None:
    with pytest.raises(ValueError):
        Anomaly("spike", 5, 5)
    assert 5 in Anomaly("spike", 5, 6) and np.int64(5) in Anomaly("spike", 5, 6)
