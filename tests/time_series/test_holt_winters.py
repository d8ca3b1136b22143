import numpy as np
import pytest
from river import time_series

from monitor.time_series import HoltWinters


def _series(n_streams, n_points, season, seed=11):
    rng = np.random.default_rng(seed)
    t = np.arange(n_points)
    level = rng.uniform(0.5, 2.0, (n_streams, 1))
    shape = np.sin(2 * np.pi * t / max(season, 1)) * 0.3 if season else 0.0
    return level + 0.002 * t + shape + rng.normal(0, 0.05, (n_streams, n_points))


@pytest.mark.parametrize(
    ("alpha", "beta", "gamma", "season"),
    [(0.4, 0.0, 0.0, 0), (0.3, 0.1, 0.0, 0), (0.3, 0.1, 0.4, 12), (0.7, 0.05, 0.2, 7)],
)
def test_agrees_with_river_holt_winters(alpha, beta, gamma, season):
    """Same recurrences and (with season_init="ratio") river's own initialisation."""
    n_streams, n_points = 4, 150
    data = _series(n_streams, n_points, season)
    ours = HoltWinters(alpha, beta, gamma, max_seasonality=season, season_init="ratio", capacity=1)
    rows = np.arange(n_streams)
    ours.set_seasonality(rows, np.full(n_streams, season))
    refs = [
        time_series.HoltWinters(alpha, beta or None, gamma or None, seasonality=season)
        for _ in range(n_streams)
    ]
    compared = 0
    for t in range(n_points):
        ours.update(rows, data[:, t])
        for i, ref in enumerate(refs):
            ref.learn_one(data[i, t])
        if t + 1 >= max(2, season):
            expected = [ref.forecast(horizon=1)[0] for ref in refs]
            np.testing.assert_allclose(ours.forecast(rows), expected, rtol=1e-9)
            compared += 1
        else:
            assert np.isnan(ours.forecast(rows)).all()
    assert compared > 100


def test_difference_initialisation_matches_river_recurrences_from_the_same_start():
    """The default additive start differs from river's only in the initial season."""
    season, n_points = 6, 120
    data = _series(1, n_points, season, seed=5)[0] * 50
    ours = HoltWinters(0.3, 0.1, 0.3, max_seasonality=season)
    row = np.array([0])
    ours.set_seasonality(row, np.array([season]))
    ref = time_series.HoltWinters(0.3, 0.1, 0.3, seasonality=season)
    for t in range(n_points):
        ours.update(row, data[t : t + 1])
        ref.learn_one(data[t])
        if t + 1 == season:
            # Put river on the additive start: components y - level instead of y / level.
            level = ref.level[-1]
            ref.season.clear()
            ref.season.extend(data[:season] - level)
        if t + 1 >= season:
            assert ours.forecast(row)[0] == pytest.approx(ref.forecast(1)[0], rel=1e-9)


def test_streams_with_different_seasons_share_one_model():
    ours = HoltWinters(0.5, 0.0, 0.5, max_seasonality=4)
    rows = np.array([0, 1])
    ours.set_seasonality(rows, np.array([4, 2]))
    pattern4, pattern2 = [1.0, 5.0, 9.0, 5.0], [0.0, 10.0]
    for t in range(40):
        ours.update(rows, np.array([pattern4[t % 4], pattern2[t % 2]]))
    np.testing.assert_allclose(ours.forecast(rows), [pattern4[0], pattern2[0]], atol=1e-6)


def test_validation():
    with pytest.raises(ValueError, match="alpha"):
        HoltWinters(alpha=0.0)
    with pytest.raises(ValueError, match="max_seasonality"):
        HoltWinters(alpha=0.5, gamma=0.1, max_seasonality=1)
    with pytest.raises(ValueError, match="gamma"):
        HoltWinters(alpha=0.5, max_seasonality=4)
    model = HoltWinters(alpha=0.5, gamma=0.1, max_seasonality=4)
    with pytest.raises(ValueError, match="seasonality"):
        model.set_seasonality(np.array([0]), np.array([5]))


def test_skip_moves_the_season_phase_and_the_level_along_the_trend():
    model = HoltWinters(alpha=0.5, beta=0.1, gamma=0.3, max_seasonality=4)
    rows = np.array([0, 1])
    model.set_seasonality(rows, np.array([4, 4]))
    for t in range(40):
        model.update(rows, np.array([10.0 + [0, 5, 0, -5][t % 4]] * 2))
    model.skip(np.array([1]), np.array([1]))
    first, second = model.forecast(rows)
    # Row 1 skipped one point: its next forecast is for the phase one step later.
    assert first == pytest.approx(10.0, abs=0.5)
    assert second == pytest.approx(15.0, abs=0.5)


def test_skip_leaves_rows_still_collecting_their_first_values():
    model = HoltWinters(alpha=0.5, gamma=0.3, max_seasonality=4)
    row = np.array([0])
    model.set_seasonality(row, np.array([4]))
    model.update(row, np.array([1.0]))
    model.skip(row, np.array([3]))
    assert model.state.count[0] == 1
