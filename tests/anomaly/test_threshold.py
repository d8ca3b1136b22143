import math

import numpy as np
import pytest

from monitor.anomaly import TailThreshold
from monitor.anomaly.threshold import sensitivity_threshold


class PerEventTail:
    """Plain per-stream transcription of the tail model, the reference for the arrays."""

    def __init__(
        self, tail_quantile=0.98, window=1000, short_window=1, guard_q=0.999, guard_step=0.01
    ):
        self.tau, self.guard_q, self.guard_step = tail_quantile, guard_q, guard_step
        exceedances = window * (1 - tail_quantile)
        self.q_step, self.e_rate = 1 / (exceedances + 1), 2 / (exceedances + 1)
        self.alpha = 2 / (short_window + 1)
        self.short = None
        self.start, self.excess, self.guard = 0.0, 0.1, 0.0

    def update(self, raw, sensitivity, warm):
        y = -math.log1p(-min(max(raw, 0.0), 1 - 1e-12))
        self.short = y if self.short is None else self.short + self.alpha * (y - self.short)
        y = self.short
        log10_tail = math.log10(1 - self.tau) - max(y - self.start, 0) / self.excess / math.log(10)
        score = min(max(-log10_tail / 10, 0.0), 1.0)
        threshold = min(max((2 + 6 * (1 - sensitivity)) / 10, self.guard), 1.0)
        if not warm or score < threshold:
            above = y > self.start
            new_start = max(self.start + self.q_step * self.excess * (above - (1 - self.tau)), 0.0)
            if above:
                self.excess = max(self.excess + self.e_rate * (y - self.start - self.excess), 1e-6)
            self.start = new_start
        if warm:
            step = self.guard_step * (self.guard_q - (score < self.guard))
            self.guard = min(max(self.guard + step, 0.0), 1.0)
        return score, threshold


@pytest.mark.parametrize("short_window", [1, 4])
def test_agrees_with_per_event_reference(short_window):
    rng = np.random.default_rng(4)
    n_streams, n_points = 5, 1500
    raw = rng.beta(2, 5, (n_streams, n_points))
    raw[:, 900::97] = 0.99
    sensitivity = np.linspace(0.1, 0.9, n_streams)
    gate = TailThreshold(window=200, short_window=short_window, capacity=1)
    refs = [PerEventTail(window=200, short_window=short_window) for _ in range(n_streams)]
    rows = np.arange(n_streams)
    for t in range(n_points):
        warm = np.full(n_streams, t >= 300)
        score, threshold = gate.update(rows, raw[:, t], sensitivity, warm)
        expected = [
            ref.update(raw[i, t], sensitivity[i], bool(warm[i])) for i, ref in enumerate(refs)
        ]
        np.testing.assert_allclose(score, [e[0] for e in expected], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(threshold, [e[1] for e in expected], rtol=1e-12)


def test_scores_are_calibrated_on_gaussian_like_scores():
    """About the promised fraction of ordinary points reaches each score level."""
    rng = np.random.default_rng(0)
    n_streams, n_points = 200, 3000
    gate = TailThreshold(window=1000)
    rows = np.arange(n_streams)
    z = rng.normal(size=(n_streams, n_points))
    raw = z**2 / (z**2 + 9)
    scores = []
    for t in range(n_points):
        score, _ = gate.update(
            rows, raw[:, t], np.full(n_streams, 0.5), np.full(n_streams, t >= 500)
        )
        if t >= 500:
            scores.append(score)
    scores = np.concatenate(scores)
    assert 0.005 < np.mean(scores >= 0.2) < 0.03  # promised 1e-2
    assert np.mean(scores >= 0.5) < 1e-4  # promised 1e-5: rare or none


@pytest.mark.parametrize("learn_recurring", [False, True])
def test_anomalies_are_not_learned_into_the_tail(learn_recurring):
    # With learn_recurring too: one stretch of kept-out points changes nothing, only
    # later stretches count.
    gate = TailThreshold(window=100, learn_recurring=learn_recurring)
    row = np.array([0])
    for t in range(400):
        gate.update(row, np.array([0.2 + 0.05 * (t % 3)]), np.array([0.5]), np.array([t >= 300]))
    before = gate.state.snapshot(row)
    for _ in range(20):
        score, threshold = gate.update(row, np.array([0.999]), np.array([0.5]), np.array([True]))
        assert score[0] >= threshold[0]
    after = gate.state.snapshot(row)
    assert after["tail_start"] == before["tail_start"]
    assert after["mean_excess"] == before["mean_excess"]


def test_a_ceiling_above_one_keeps_ranking_extreme_scores():
    rows = np.arange(2)
    clipped, ranked = TailThreshold(window=100), TailThreshold(window=100, ceiling=5.0)
    rng = np.random.default_rng(0)
    for t, raw in enumerate(rng.uniform(0.1, 0.4, 400)):
        for gate in (clipped, ranked):
            gate.update(rows, np.full(2, raw), np.full(2, 0.5), np.full(2, t >= 300))
    extreme = np.array([0.5, 0.6])
    low, _ = clipped.update(rows, extreme, np.full(2, 0.5), np.ones(2, dtype=bool))
    high, threshold = ranked.update(rows, extreme, np.full(2, 0.5), np.ones(2, dtype=bool))
    assert low.tolist() == [1.0, 1.0]
    assert 1.0 < high[0] < high[1] <= 5.0
    assert threshold.tolist() == [0.5, 0.5]


def test_sensitivity_levels():
    assert sensitivity_threshold(0.5).item() == 0.5
    assert sensitivity_threshold(np.array([1.0])).tolist() == [0.2]


def test_validation():
    with pytest.raises(ValueError, match="tail_quantile"):
        TailThreshold(tail_quantile=1.0)
    with pytest.raises(ValueError, match="window"):
        TailThreshold(window=1)
    with pytest.raises(ValueError, match="ceiling"):
        TailThreshold(ceiling=0.9)


def _spiky_stream(gate, spikes_every=60, n_points=1500, warmup=300):
    """Scores of the spikes of a quiet stream whose spikes start after its warm-up."""
    rng = np.random.default_rng(1)
    row, sensitivity = np.array([0]), np.array([0.5])
    spike_scores = []
    for t in range(n_points):
        spike = t >= 400 and t % spikes_every == 0
        raw = 0.99 if spike else rng.uniform(0.05, 0.3)
        score, threshold = gate.update(row, np.array([raw]), sensitivity, np.array([t >= warmup]))
        if spike:
            spike_scores.append((float(score[0]), float(threshold[0])))
    return spike_scores


def test_recurring_kept_out_points_widen_the_tail():
    """Spikes kept out one after the other stop alerting with learn_recurring."""
    kept = _spiky_stream(TailThreshold(window=1000, learn_recurring=False))
    learned = _spiky_stream(TailThreshold(window=1000, learn_recurring=True))
    # Without it every spike stays anomalous: the tail never hears of them.
    assert all(score >= threshold for score, threshold in kept)
    # With it the first spike (no kept-out stretch has ended yet) is the same ...
    assert learned[0] == kept[0]
    # ... and once spikes recur the tail widens until they no longer alert.
    assert learned[-1][0] < learned[-1][1]
    assert all(score < threshold for score, threshold in learned[-5:])


def test_learn_recurring_changes_nothing_until_something_is_censored():
    """Before the first censored point the tail model is exactly the plain one."""
    rng = np.random.default_rng(3)
    raw = rng.beta(2, 5, (4, 800))
    rows = np.arange(4)
    plain = TailThreshold(window=200)
    recurring = TailThreshold(window=200, learn_recurring=True)
    for t in range(800):
        warm = np.full(4, t >= 300)
        a, _ = plain.update(rows, raw[:, t], np.full(4, 0.5), warm)
        b, _ = recurring.update(rows, raw[:, t], np.full(4, 0.5), warm)
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(recurring.state.events[:4], 1.0)
