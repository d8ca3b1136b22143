import numpy as np
import pytest

from monitor.time_series import DailyRecurrence

STEP, PER_DAY = 300.0, 288
INTERVAL = np.array([STEP])
ROW = np.array([0])


def feed(recurrence, residuals, start_day=0):
    """Learn a residual per five-minute point, from midnight of ``start_day``."""
    for i, residual in enumerate(residuals):
        ts = np.array([(start_day * PER_DAY + i) * STEP])
        recurrence.learn(ROW, ts, np.array([residual]))


def limited(recurrence, day, minute, residual, score=0.6):
    ts = np.array([day * 86_400.0 + minute * 60.0])
    return float(recurrence.limit(ROW, ts, np.array([residual]), INTERVAL, np.array([score]))[0])


def quiet(days, seed=0):
    return np.random.default_rng(seed).normal(0, 1, days * PER_DAY)


def test_a_nightly_spike_recurs_and_the_same_spike_at_noon_does_not():
    residuals = quiet(9)
    residuals[3 * 12 + 1 :: PER_DAY] += 30.0  # 03:05 every day
    rec = DailyRecurrence()
    feed(rec, residuals)
    capped = limited(rec, 9, 3 * 60 + 5, 30.0)
    # Seven of seven previous days, three hourly bins of twelve values: p = 1 / 36.
    assert capped == pytest.approx(np.log10(36) / 10)
    assert limited(rec, 9, 12 * 60 + 5, 30.0) == 0.6
    # A spike far larger than the nightly ones is not like them.
    assert limited(rec, 9, 3 * 60 + 5, 100.0) == 0.6
    # Nor is a dip at that time.
    assert limited(rec, 9, 3 * 60 + 5, -30.0) == 0.6
    # A score already below the cap keeps its value.
    assert limited(rec, 9, 3 * 60 + 5, 30.0, score=0.1) == 0.1


def test_it_needs_min_days_of_recurrence():
    residuals = quiet(9)
    residuals[7 * PER_DAY + 37] += 30.0  # 03:05 on day 7 only
    rec = DailyRecurrence(min_days=2)
    feed(rec, residuals)
    assert limited(rec, 9, 3 * 60 + 5, 30.0) == 0.6
    residuals[8 * PER_DAY + 37] += 30.0  # and day 8
    rec = DailyRecurrence(min_days=2)
    feed(rec, residuals)
    assert limited(rec, 9, 3 * 60 + 5, 30.0) < 0.3


def test_a_jittering_start_time_still_recurs():
    """A job that starts at 02:50 on some days and 04:10 on others recurs at 03:30."""
    residuals = quiet(9)
    for day in range(9):
        minute = (2 * 60 + 50) if day % 2 else (4 * 60 + 10)
        residuals[day * PER_DAY + minute // 5] += 30.0
    rec = DailyRecurrence(neighbours=1)
    feed(rec, residuals)
    assert limited(rec, 9, 3 * 60 + 30, 30.0) < 0.3
    alone = DailyRecurrence(neighbours=0)
    feed(alone, residuals)
    assert limited(alone, 9, 3 * 60 + 30, 30.0) == 0.6


def test_spikes_at_all_hours_recur_nowhere():
    """A stream with spikes at any time: near-now spikes are no more common than anywhere."""
    rng = np.random.default_rng(3)
    residuals = quiet(9)
    residuals[rng.choice(len(residuals), 9 * 30, replace=False)] += 30.0
    rec = DailyRecurrence()
    feed(rec, residuals)
    assert all(limited(rec, 9, 60 * hour + 5, 30.0) == 0.6 for hour in range(24))
    # Without the comparison with the whole day, they recur everywhere.
    loose = DailyRecurrence(specificity=0)
    feed(loose, residuals)
    assert sum(limited(loose, 9, 60 * hour + 5, 30.0) < 0.6 for hour in range(24)) > 12


def test_ordinary_residuals_recur_nowhere():
    rec = DailyRecurrence()
    feed(rec, quiet(9))
    assert all(limited(rec, 9, 60 * hour + 5, 0.5) == 0.6 for hour in range(24))


def test_only_previous_days_count():
    """Spikes earlier the same day (an hour ago, the bin before) are not a recurrence."""
    residuals = quiet(2)
    residuals[PER_DAY + 2 * 12 : PER_DAY + 3 * 12 : 3] += 30.0  # day 1, 02:00-03:00
    rec = DailyRecurrence(min_days=1, specificity=0)
    feed(rec, residuals[: PER_DAY + 3 * 12])
    assert limited(rec, 1, 3 * 60 + 5, 30.0) == 0.6


def test_validation():
    with pytest.raises(ValueError, match="days"):
        DailyRecurrence(days=1)
    with pytest.raises(ValueError, match="min_days"):
        DailyRecurrence(min_days=0)
    with pytest.raises(ValueError, match="ratio"):
        DailyRecurrence(ratio=0)
    with pytest.raises(ValueError, match="neighbours"):
        DailyRecurrence(bins=2, neighbours=1)
    with pytest.raises(ValueError, match="specificity"):
        DailyRecurrence(specificity=-1)
