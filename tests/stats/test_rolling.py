import numpy as np
import pytest
from river import stats, utils

from monitor.stats import RollingMeanVar


@pytest.mark.parametrize("window_size", [1, 2, 5, 30])
def test_agrees_with_river_rolling_mean_and_var(window_size):
    rng = np.random.default_rng(7)
    n_streams, n_points = 6, 200
    data = rng.normal(100, 5, (n_streams, n_points)) + np.arange(n_points) * 0.1
    ours = RollingMeanVar(window_size=window_size, capacity=2)
    means = [utils.Rolling(stats.Mean, window_size=window_size) for _ in range(n_streams)]
    variances = [
        utils.Rolling(stats.Var, window_size=window_size, ddof=1) for _ in range(n_streams)
    ]
    rows = np.arange(n_streams)
    for t in range(n_points):
        ours.update(rows, data[:, t])
        for i in range(n_streams):
            means[i].update(data[i, t])
            variances[i].update(data[i, t])
        np.testing.assert_allclose(ours.mean(rows), [m.get() for m in means], rtol=1e-9)
        np.testing.assert_allclose(
            ours.var(rows), [v.get() for v in variances], rtol=1e-6, atol=1e-9
        )


def test_rows_are_independent_and_partial_updates_leave_others_alone():
    stat = RollingMeanVar(window_size=3)
    stat.update(np.array([0, 1]), np.array([1.0, 10.0]))
    stat.update(np.array([1]), np.array([20.0]))
    assert stat.mean(np.array([0, 1])).tolist() == [1.0, 15.0]
    assert stat.count(np.array([0, 1])).tolist() == [1, 2]


def test_rejects_bad_hyperparameters():
    with pytest.raises(ValueError, match="window_size"):
        RollingMeanVar(window_size=0)
    with pytest.raises(ValueError, match="ddof"):
        RollingMeanVar(window_size=3, ddof=-1)
