"""A detector's streams exported then imported elsewhere continue exactly as if never moved."""

import numpy as np
import pytest

from monitor.config import MonitorConfig
from monitor.detection import Detector
from monitor.records import Point


def points(streams, start, stop, spike_at=None):
    rng = np.random.default_rng(start)
    out = []
    for t in range(start, stop):
        for s in range(streams):
            value = 10.0 * s + np.sin(t / 7) + rng.normal(0, 0.1)
            if t == spike_at and s == 1:
                value += 25
            out.append(Point(f"m{s}", (("host", f"h{s}"),), 60.0 * t, value))
    return out


def test_imported_streams_score_the_rest_exactly_like_the_original():
    config = MonitorConfig()
    original = Detector(config)
    original.process(points(4, 0, 500))
    moved = Detector(config)
    rows = original.streams.owned_by([-1])
    assert len(rows) == 4
    placed = moved.import_streams(original.export_streams(rows), owner=7)
    assert (placed >= 0).all()
    assert moved.streams.owned_by([7]).tolist() == sorted(placed.tolist())
    rest = points(4, 500, 700, spike_at=650)
    a = original.process(rest).scored
    b = moved.process(rest).scored
    np.testing.assert_array_equal(a.index, b.index)
    np.testing.assert_array_equal(a.score, b.score)
    np.testing.assert_array_equal(a.anomalous, b.anomalous)
    assert a.anomalous.any(), "the planted spike must be found by both"


def test_import_refuses_arrays_of_other_models_and_changes_nothing():
    original = Detector(MonitorConfig())
    original.process(points(2, 0, 50))
    snapshot = original.export_streams(np.array([0, 1]))
    other = Detector(MonitorConfig.model_validate({"detector": {"rolling_window": 30}}))
    with pytest.raises(ValueError, match="window"):
        other.import_streams(snapshot)
    assert len(other.streams) == 0
    del snapshot.arrays["forecaster.level"]
    with pytest.raises(ValueError, match="missing"):
        Detector(MonitorConfig()).import_streams(snapshot)


def test_import_stops_at_max_streams_and_says_which_did_not_fit():
    original = Detector(MonitorConfig())
    original.process(points(3, 0, 20))
    small = Detector(MonitorConfig.model_validate({"streams": {"max_streams": 2}}))
    placed = small.import_streams(original.export_streams(np.array([0, 1, 2])))
    assert placed.tolist() == [0, 1, -1]
    assert len(small.streams) == 2


def test_dropped_streams_are_forgotten_and_their_rows_reused():
    detector = Detector(MonitorConfig())
    owners = np.repeat([[0, 1]], 30, axis=0).ravel()
    detector.process(points(2, 0, 30), owners=owners)
    detector.drop_streams(detector.streams.owned_by([1]))
    assert list(detector.streams.rows) == ["m0{host=h0}"]
    assert detector.state.count[1] == 0
    rows = detector.process([Point("new", (), 0.0, 1.0)]).scored.rows
    assert rows.tolist() == [1]


def test_an_export_keeps_its_values_while_the_detector_learns_on():
    # The daemon writes a checkpoint on a background thread while the loop scores the next
    # batches: the exported arrays must be copies, not views of the live state.
    detector = Detector(MonitorConfig())
    detector.process(points(3, 0, 40))
    rows = np.array([0, 1, 2])
    snapshot = detector.export_streams(rows)
    frozen = {name: values.copy() for name, values in snapshot.arrays.items()}
    detector.process(points(3, 40, 80, spike_at=60))
    changed = [
        name
        for name, values in detector.export_streams(rows).arrays.items()
        if not np.array_equal(values, frozen[name])
    ]
    assert "forecaster.level" in changed
    for name, values in snapshot.arrays.items():
        np.testing.assert_array_equal(values, frozen[name], err_msg=name)


def test_an_export_into_reused_arrays_equals_a_fresh_one():
    detector = Detector(MonitorConfig())
    detector.process(points(4, 0, 40))
    buffers = detector.export_buffers(10)
    for rows in (np.array([3, 0, 2]), np.array([1])):
        fresh = detector.export_streams(rows)
        reused = detector.export_streams(rows, into=buffers)
        assert reused.keys == fresh.keys
        assert reused.arrays.keys() == fresh.arrays.keys()
        for name, values in fresh.arrays.items():
            np.testing.assert_array_equal(reused.arrays[name], values, err_msg=name)
            assert np.shares_memory(reused.arrays[name], buffers[name]), name
