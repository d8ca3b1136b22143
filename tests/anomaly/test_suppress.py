import numpy as np
import pytest

from monitor.anomaly.suppress import PeakSuppression


def reference(scores, span, margin=0.0):
    peak, out = 0.0, []
    for s in scores:
        if s > peak:
            out.append(s)
            peak = s + margin
        else:
            out.append(0.0)
            peak -= (peak - s) / span
    return out


@pytest.mark.parametrize("margin", [0.0, 0.03])
def test_matches_the_per_event_reference_on_many_streams(margin):
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 1, (500, 4)) ** 4
    gate = PeakSuppression(span=20, capacity=2, margin=margin)
    rows = np.arange(4)
    got = np.array([gate.update(rows, scores[t]) for t in range(500)])
    for j in range(4):
        np.testing.assert_allclose(got[:, j], reference(scores[:, j], 20, margin))


def test_a_burst_creeping_upwards_is_reported_once_then_at_a_clear_rise():
    scores = [0.2] * 20 + [0.50, 0.51, 0.52, 0.50, 0.60] + [0.2] * 5
    row = np.array([0])
    plain, margined = PeakSuppression(span=200), PeakSuppression(span=200, margin=0.03)
    reported = [
        [float(gate.update(row, np.array([s]))[0]) >= 0.4 for s in scores]
        for gate in (plain, margined)
    ]
    assert np.flatnonzero(reported[0]).tolist() == [20, 21, 22, 24]
    assert np.flatnonzero(reported[1]).tolist() == [20, 24]


def test_a_burst_passes_once_and_the_next_burst_passes_again():
    gate = PeakSuppression(span=10)
    row = np.array([0])
    scores = [0.2] * 50 + [0.9] * 10 + [0.2] * 100 + [0.9] * 5
    out = np.array([gate.update(row, np.array([s]))[0] for s in scores])
    assert np.flatnonzero(out >= 0.5).tolist() == [50, 160]


def test_span_zero_passes_everything():
    gate = PeakSuppression(span=0)
    scores = np.array([0.5, 0.4])
    assert gate.update(np.array([0, 1]), scores) is scores


def test_rejects_a_negative_span_or_margin():
    with pytest.raises(ValueError, match="span"):
        PeakSuppression(span=-1)
    with pytest.raises(ValueError, match="margin"):
        PeakSuppression(margin=-0.1)


def test_inactive_rows_score_zero_and_remember_no_peak():
    gate = PeakSuppression(span=100)
    rows = np.array([0, 1])
    warming = np.array([False, True])
    # Row 0 is warming up: its huge score is hidden and not remembered.
    assert gate.update(rows, np.array([1.0, 0.9]), warming).tolist() == [0.0, 0.9]
    warm = np.array([True, True])
    assert gate.update(rows, np.array([0.3, 0.3]), warm).tolist() == [0.3, 0.0]
