import numpy as np
import pytest
from river import stats

from monitor.stats import EWMeanVar


@pytest.mark.parametrize("fading_factor", [0.01, 0.1, 0.5, 1.0])
def test_agrees_with_river_ewmean_and_ewvar(fading_factor):
    rng = np.random.default_rng(3)
    n_streams, n_points = 5, 300
    data = rng.normal(0, 1, (n_streams, n_points)) * rng.uniform(0.1, 10, (n_streams, 1))
    ours = EWMeanVar(fading_factor=fading_factor, capacity=1)
    means = [stats.EWMean(fading_factor) for _ in range(n_streams)]
    variances = [stats.EWVar(fading_factor) for _ in range(n_streams)]
    rows = np.arange(n_streams)
    for t in range(n_points):
        ours.update(rows, data[:, t])
        for i in range(n_streams):
            means[i].update(data[i, t])
            variances[i].update(data[i, t])
        np.testing.assert_allclose(ours.mean(rows), [m.get() for m in means], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(
            ours.var(rows), [v.get() for v in variances], rtol=1e-7, atol=1e-9
        )


def test_zero_weight_leaves_a_seen_row_unchanged():
    stat = EWMeanVar(0.5)
    rows = np.array([0])
    stat.update(rows, np.array([2.0]))
    stat.update(rows, np.array([100.0]), weights=np.array([0.0]))
    assert stat.mean(rows).tolist() == [2.0]
    assert stat.var(rows).tolist() == [0.0]


def test_rejects_bad_fading_factor():
    with pytest.raises(ValueError, match="fading_factor"):
        EWMeanVar(0.0)
