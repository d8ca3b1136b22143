import math

import numpy as np
import pytest

from monitor.anomaly.novelty import OUT_OF_RANGE_NATS, ValueNovelty
from monitor.config import MonitorConfig
from monitor.detection.detector import Detector


class PerEventNovelty:
    """Plain per-stream transcription of the faded value histogram (the reference)."""

    def __init__(self, bins=8, fading=0.01, prior=0.1, neighbour=0.0, edge=0.0):
        self.bins, self.fading, self.prior = bins, fading, prior
        self.neighbour, self.edge = neighbour, edge
        self.counts = [0.0] * bins
        self.low = self.high = None

    def _bin(self, x, low, high):
        if high <= low:
            return 0
        return min(max(int((x - low) / (high - low) * self.bins), 0), self.bins - 1)

    def score(self, x):
        if self.low is None:
            return 0.0
        total = sum(self.counts) + self.prior * self.bins
        b = self._bin(x, self.low, self.high)
        left = self.counts[b - 1] if b > 0 else 0.0
        right = self.counts[b + 1] if b < self.bins - 1 else 0.0
        mass = self.counts[b] + self.neighbour * max(left, right)
        if self.low <= x <= self.high:
            return math.log(total / (mass + self.prior))
        width = max((self.high - self.low) / self.bins, 1e-12 * abs(self.low) + 1e-300)
        distance = max(self.low - x, x - self.high) / width
        kept = mass * math.exp(-distance / self.edge) if self.edge > 0 else 0.0
        return math.log(total / (kept + self.prior)) + OUT_OF_RANGE_NATS + math.log1p(distance)

    def learn(self, x):
        if self.low is None:
            self.low = self.high = x
        low, high = min(self.low, x), max(self.high, x)
        if (low, high) != (self.low, self.high):
            moved = [0.0] * self.bins
            for b, c in enumerate(self.counts):
                centre = self.low + (b + 0.5) * (self.high - self.low) / self.bins
                moved[self._bin(centre, low, high)] += c
            self.counts = moved
        self.low, self.high = low, high
        self.counts = [c * (1 - self.fading) for c in self.counts]
        self.counts[self._bin(x, low, high)] += 1


@pytest.mark.parametrize(("neighbour", "edge"), [(0.0, 0.0), (0.5, 0.0), (0.5, 1.5), (0.0, 0.5)])
def test_matches_the_per_event_reference_on_many_streams(neighbour, edge):
    rng = np.random.default_rng(0)
    streams = [
        rng.normal(0, 1, 300),
        rng.exponential(2, 300),
        np.r_[np.ones(50), rng.normal(5, 1, 250)],
    ]
    model = ValueNovelty(bins=8, fading=0.01, capacity=2, neighbour=neighbour, edge=edge)
    refs = [PerEventNovelty(neighbour=neighbour, edge=edge) for _ in streams]
    rows = np.arange(len(streams))
    for t in range(300):
        x = np.array([s[t] for s in streams])
        got = model.score_learn(rows, x)
        want = []
        for ref, value in zip(refs, x, strict=True):
            want.append(ref.score(value))
            ref.learn(value)
        np.testing.assert_allclose(got, want, rtol=1e-4)


def test_growing_the_range_keeps_the_mass():
    model = ValueNovelty(bins=16, fading=0.001)
    row = np.array([0])
    for x in np.linspace(0, 10, 200):
        model.learn(row, np.array([x]))
    expected = sum((1 - 0.001) ** k for k in range(200))
    s = model.state
    assert s.counts[0].sum() / s.unit[0] == pytest.approx(expected, rel=1e-4)
    assert s.total[0] / s.unit[0] == pytest.approx(expected, rel=1e-9)
    assert (s.low[0], s.high[0]) == (0.0, 10.0)


def test_counts_are_rescaled_when_the_unit_grows_large(monkeypatch):
    values = np.random.default_rng(4).normal(0, 1, (3000, 2))
    rows = np.array([0, 1])
    plain = ValueNovelty(bins=16, fading=0.01, neighbour=0.5, edge=1.5)
    expected = [plain.score_learn(rows, x) for x in values]
    assert plain.state.unit.max() > 1e13
    monkeypatch.setattr("monitor.anomaly.novelty.MAX_UNIT", 8.0)
    rescaled = ValueNovelty(bins=16, fading=0.01, neighbour=0.5, edge=1.5)
    got = [rescaled.score_learn(rows, x) for x in values]
    assert rescaled.state.unit.max() <= 8.0
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_further_outside_the_range_is_more_novel():
    model = ValueNovelty()
    row = np.array([0])
    for x in np.random.default_rng(1).uniform(0, 1, 500):
        model.learn(row, np.array([x]))
    near, far = model.score(np.array([0, 0]), np.array([1.05, 5.0]))
    inside = model.score(row, np.array([0.5]))[0]
    assert inside < near < far


def test_a_value_beside_a_full_bin_is_less_novel_than_one_far_from_any():
    # Values in bins 0-3 and 7 of [0, 8): bin 4 borders a full bin, bin 5 does not.
    smooth, plain = ValueNovelty(bins=8, neighbour=0.5), ValueNovelty(bins=8)
    row = np.array([0])
    for x in np.r_[np.tile([0.5, 1.5, 2.5, 3.5], 100), 7.5, 7.99, 0.0]:
        smooth.learn(row, np.array([x]))
        plain.learn(row, np.array([x]))
    beside, apart = smooth.score(np.array([0, 0]), np.array([4.5, 5.5]))
    assert beside < apart - 2.0
    # Scored alone, the two empty bins are equally novel.
    alone = plain.score(np.array([0, 0]), np.array([4.5, 5.5]))
    assert alone[0] == pytest.approx(alone[1])
    assert apart == pytest.approx(alone[1])


def test_a_value_grazing_a_full_edge_bin_is_less_novel_than_one_far_past_it():
    # A daily swing between 0 and 1 that fills its top bin: a new high a hair above it
    # scores about like that bin, one several bin widths past it as an empty bin.
    grazing, plain = ValueNovelty(bins=8, edge=1.5), ValueNovelty(bins=8)
    row = np.array([0])
    for x in np.r_[np.tile(np.linspace(0.0, 1.0, 9), 60), 1.0]:
        grazing.learn(row, np.array([x]))
        plain.learn(row, np.array([x]))
    hair, far = grazing.score(np.array([0, 0]), np.array([1.001, 3.0]))
    top = grazing.score(row, np.array([0.99]))[0]
    assert hair < top + OUT_OF_RANGE_NATS + 0.1
    assert far > hair + 4.0
    # Without the edge share every value outside the range scores as an empty bin.
    plain_hair, plain_far = plain.score(np.array([0, 0]), np.array([1.001, 3.0]))
    assert plain_hair > hair + 3.0
    assert plain_far == pytest.approx(far, abs=0.05)


def test_the_default_configuration_lets_a_grazing_new_high_pass():
    novelty = Detector(MonitorConfig()).novelty
    row = np.array([0])
    for x in np.tile(np.linspace(0.0, 1.0, 9), 60):
        novelty.learn(row, np.array([x]))
    hair = novelty.score(row, np.array([1.001]))[0]
    assert hair < novelty.score(row, np.array([0.99]))[0] + OUT_OF_RANGE_NATS + 0.1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bins": 1}, "bins"),
        ({"fading": 0.0}, "fading"),
        ({"prior": 0.0}, "prior"),
        ({"neighbour": 1.5}, "neighbour"),
        ({"edge": -1.0}, "edge"),
    ],
)
def test_rejects_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ValueNovelty(**kwargs)
