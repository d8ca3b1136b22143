import numpy as np
import pytest
from scipy.stats import poisson

from monitor.anomaly.rare_rate import RareRate

WARM, CUT = np.array([True]), np.array([0.5])


def feed(rate: RareRate, rare, row=0):
    rows = np.array([row])
    return np.array([rate.update(rows, np.array([bool(r)]), WARM, CUT)[0] for r in rare])


def every(period: int, n: int, offsets=(0,)) -> np.ndarray:
    t = np.arange(n)
    return np.isin(t % period, offsets)


def test_a_burst_of_rare_values_scores_high_where_their_usual_rate_scores_nothing():
    rate = RareRate(short_fading=0.03, long_fading=0.001, prior_rate=0.01)
    usual = feed(rate, every(200, 3000))
    assert usual[1000:].max() < 0.2  # a lone rare value at its usual rate: hardly surprising
    burst = feed(rate, every(3, 13))
    assert burst[0] < 0.2
    assert burst[-1] > 0.5
    assert (np.diff(burst[burst > 0]) > 0).all()


def test_the_score_is_the_poisson_tail_of_independent_rare_values():
    # A new stream: the long run is the prior (rate 0.01), of dispersion 1 / (2 - a).
    a = 0.05
    rate = RareRate(short_fading=a, long_fading=0.001, prior_rate=0.01)
    score = feed(rate, [True, True, True])[-1]
    short = 1 + (1 - a) + (1 - a) ** 2
    c = 1 / (2 - a)
    # For a whole count k, P(N >= k) is the Poisson survival function at k - 1.
    k, lam = short / c, 0.01 / a / c
    lower = poisson.sf(np.ceil(k) - 1, lam)
    upper = poisson.sf(np.floor(k) - 1, lam)
    assert -np.log10(upper) / 10 <= score <= -np.log10(lower) / 10


def test_rare_values_that_usually_cluster_score_less_than_lone_ones():
    # Same long-run rate (1 %): lone rare values every 100 points, or pairs every 200.
    lone, pairs = RareRate(), RareRate()
    feed(lone, every(100, 4000))
    feed(pairs, every(200, 4000, offsets=(0, 3)))
    dispersion = {
        name: rate.long_run.state.var_[0] / rate.long_run.state.mean_[0]
        for name, rate in (("lone", lone), ("pairs", pairs))
    }
    assert dispersion["pairs"] > 1.2 * dispersion["lone"]
    burst = every(4, 16)
    assert feed(pairs, burst).max() < feed(lone, burst).max()


def test_the_long_run_does_not_learn_a_burst_scoring_above_the_cut():
    learning, kept = RareRate(), RareRate()
    for rate in (learning, kept):
        feed(rate, every(200, 2000))
    mean = kept.long_run.state.mean_[0]
    rows = np.array([0])
    for _ in range(10):
        learning.update(rows, np.array([True]), WARM, np.array([1.1]))
        kept.update(rows, np.array([True]), WARM, np.array([0.3]))
    assert learning.long_run.state.mean_[0] > kept.long_run.state.mean_[0]
    assert kept.long_run.state.mean_[0] < mean * 1.1


def test_nothing_scores_before_the_warm_up_or_without_a_rare_value():
    rate = RareRate()
    rows = np.array([0, 1])
    for _ in range(10):
        score = rate.update(rows, np.array([True, True]), np.array([False, True]), CUT)
        assert score[0] == 0.0
    assert score[1] > 0.5
    assert rate.update(rows, np.array([False, False]), np.array([True, True]), CUT).tolist() == [
        0.0,
        0.0,
    ]
    # Both learned the same counts.
    assert rate.state.short[0] == rate.state.short[1]


def test_streams_are_independent_and_rows_grow():
    rate = RareRate(capacity=1)
    rng = np.random.default_rng(1)
    rare = rng.uniform(size=(500, 3)) < [0.005, 0.05, 0.2]
    rows, warm, cut = np.arange(3), np.ones(3, bool), np.full(3, 0.5)
    together = np.array([rate.update(rows, r, warm, cut) for r in rare])
    for j in range(3):
        alone = RareRate()
        np.testing.assert_array_equal(together[:, j], feed(alone, rare[:, j]))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"short_fading": 0.0},
        {"short_fading": 1.0},
        {"long_fading": 0.0},
        {"prior_rate": 0.0},
        {"prior_rate": 1.0},
        {"ceiling": 0.0},
    ],
)
def test_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        RareRate(**kwargs)
