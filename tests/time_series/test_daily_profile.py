import numpy as np
import pytest

from monitor.time_series import DailyProfile
from monitor.time_series.daily_profile import DAY_SECONDS


def daily(t: np.ndarray) -> np.ndarray:
    """A daily rhythm (high by day, low by night, level within each hour), a little noise."""
    hour = (t % DAY_SECONDS) // 3600.0
    noise = np.random.default_rng(0).normal(0, 0.2, len(t))
    return 10.0 * np.sin(2 * np.pi * (hour - 6) / 24) + noise


def feed(profile: DailyProfile, rows: np.ndarray, step: float, days: int) -> None:
    t = np.arange(0, days * DAY_SECONDS, step)
    values = daily(t)
    interval = np.full(len(rows), step)
    prior = np.full(len(rows), 50.0)
    for ts, x in zip(t, values, strict=True):
        profile.learn(rows, np.full(len(rows), ts), np.full(len(rows), x), prior, interval)


def z_at(profile: DailyProfile, hour: float, deviation: float, step: float) -> float:
    ts = np.array([30 * DAY_SECONDS + hour * 3600.0])
    return float(
        profile.z(np.array([0]), ts, np.array([deviation]), np.array([50.0]), np.array([step]))[0]
    )


def test_a_value_usual_at_night_is_anomalous_at_noon():
    profile = DailyProfile(bins=24, fading=0.2, prior_weight=0.3)
    feed(profile, np.array([0]), 600.0, 15)
    assert abs(z_at(profile, 0.5, -9.9, 600.0)) < 3  # night: about -10 is usual
    assert z_at(profile, 12.5, -9.9, 600.0) < -10  # noon: about +10 is usual


def test_fading_is_per_day_whatever_the_sampling_interval():
    # The same rhythm sampled every 5 minutes and every hour: the bins hold the same
    # statistics, because a day's values share the day's weight.
    fine, coarse = DailyProfile(fading=0.2), DailyProfile(fading=0.2)
    feed(fine, np.array([0]), 300.0, 10)
    feed(coarse, np.array([0]), 3600.0, 10)
    np.testing.assert_allclose(fine.state.mean_[0], coarse.state.mean_[0], atol=0.3)
    # Ten days of five-minute values weigh as much as ten days of hourly ones.
    assert (fine.state.weight[0] == 12 * coarse.state.weight[0]).all()
    assert z_at(fine, 12.5, 0.0, 300.0) == pytest.approx(z_at(coarse, 12.5, 0.0, 3600.0), rel=0.5)


def test_a_young_bin_is_pooled_with_the_prior():
    profile = DailyProfile(prior_weight=1.0)
    rows, step = np.array([0]), np.array([60.0])
    # One value in the first bin: the prior (deviation 0, variance 4) dominates.
    profile.learn(rows, np.array([0.0]), np.array([1.0]), np.array([4.0]), step)
    z = profile.z(rows, np.array([60.0]), np.array([6.0]), np.array([4.0]), step)
    own = 1.0 / 60.0  # one value of a bin visited 60 times a day: 1/60 of a day
    mean = own * 1.0 / (own + 1.0)
    assert z[0] == pytest.approx((6.0 - mean) / np.sqrt(4.0 / (own + 1.0)))
    # A bin never seen scores against the prior alone.
    far = profile.z(rows, np.array([43_200.0]), np.array([6.0]), np.array([4.0]), step)
    assert far[0] == pytest.approx(3.0)


def test_streams_learned_together_match_streams_learned_alone():
    together = DailyProfile(capacity=2)
    feed(together, np.array([0, 1]), 900.0, 3)
    alone = DailyProfile(capacity=2)
    feed(alone, np.array([1]), 900.0, 3)
    for name in ("mean_", "var_", "weight"):
        np.testing.assert_array_equal(together.state[name][1], alone.state[name][1])
        np.testing.assert_array_equal(together.state[name][0], together.state[name][1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"bins": 0}, "bins"), ({"fading": 0.0}, "fading"), ({"prior_weight": -1.0}, "prior_weight")],
)
def test_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DailyProfile(**kwargs)
