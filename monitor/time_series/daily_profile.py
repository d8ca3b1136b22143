"""Daily profile: what a stream usually does at this time of day, by timestamp.

Many metrics follow the clock (traffic, load, temperature, user activity): a value
that is ordinary at noon can be anomalous at 3 am. :class:`DailyProfile` keeps, per
stream and per time-of-day bin (UTC), the exponentially weighted mean and variance
of the stream's deviation from a baseline the caller passes in (e.g. its long-run
mean), and scores a point by the z-score of its deviation against its own bin. A
young bin knows little: its mean and variance are shrunk towards the prior the caller
passes (deviation 0 and the stream's overall variance) with ``prior_weight`` pseudo
values, so a bin's first values do not make a noisy score.
Because bins are found from timestamps, not point counts, it needs no season
length, survives gaps and irregular sampling, and costs a few bytes per bin. A
stream without a daily rhythm has about the same mean and spread in every bin, so
the profile then compares each value with the stream's overall spread.
"""

from __future__ import annotations

import numpy as np

from monitor.state import ArraySpec, ArrayState, flat_view
from monitor.stats.finite import finite

DAY_SECONDS = 86_400.0


def visits_per_bin(bins: int, interval: np.ndarray) -> np.ndarray:
    """Values a time-of-day bin gets per day at each stream's sampling interval (>= 1;
    1 where the interval is not known yet)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        visits = DAY_SECONDS / (bins * interval)
    return np.where(np.isfinite(visits), np.maximum(visits, 1.0), 1.0)


def time_of_day_bin(bins: int, ts: np.ndarray) -> np.ndarray:
    """Each timestamp's equal time-of-day bin (UTC) of ``bins`` a day; NaN counts as 0.

    >>> time_of_day_bin(24, np.array([0.0, 3_600.0 * 13.5, 86_399.0])).tolist()
    [0, 13, 23]
    """
    position = np.mod(finite(ts), DAY_SECONDS) * (bins / DAY_SECONDS)
    return np.clip(position.astype(np.intp), 0, bins - 1)


class DailyProfile:
    """Per-stream mean and variance of deviations in each time-of-day bin.

    Parameters
    ----------
    bins
        Equal time-of-day bins a day is cut into (24: hourly).
    fading
        Weight of the newest day in a bin's averages, in (0, 1]: a stream sampled
        ``k`` times per bin and day gives each value ``fading / k``.
    prior_weight
        Pseudo days of the prior (deviation 0, the variance the caller passes) that
        each bin's own mean and variance are pooled with.
    clip_z
        A deviation further than this many standard deviations from its bin's mean
        is learned clipped to that distance (robust learning: an anomaly does not
        become usual); 0 learns every deviation as it is.

    Examples
    --------
    A stream at 10 by day and 0 by night; after 20 days, 0 at noon is anomalous
    while 0 at midnight is not:

    >>> profile = DailyProfile(bins=24, fading=0.1, prior_weight=1.0, clip_z=0.0)
    >>> row, hourly = np.array([0]), np.array([3_600.0])
    >>> for t in range(0, 20 * 86_400, 3_600):
    ...     hour = t % 86_400 // 3_600
    ...     x = (10.0 if 8 <= hour < 20 else 0.0) + (t // 3_600) % 3 * 0.1
    ...     profile.learn(row, np.array([float(t)]), np.array([x - 5.0]), hourly, hourly)
    >>> noon, midnight = 20 * 86_400 + 12 * 3_600.0, 21 * 86_400.0
    >>> overall = np.array([25.0])
    >>> z_noon = profile.z(row, np.array([noon]), np.array([-5.0]), overall, hourly)
    >>> z_midnight = profile.z(row, np.array([midnight]), np.array([-5.0]), overall, hourly)
    >>> bool(z_noon[0] < -5), bool(abs(z_midnight[0]) < 3)
    (True, True)
    """

    def __init__(
        self,
        bins: int = 24,
        fading: float = 0.15,
        prior_weight: float = 0.3,
        clip_z: float = 3.0,
        capacity: int = 16,
    ) -> None:
        if not 1 <= bins <= 1440:
            raise ValueError(f"bins must be in [1, 1440], got {bins}")
        if not 0 < fading <= 1:
            raise ValueError(f"fading must be in (0, 1], got {fading}")
        if prior_weight < 0:
            raise ValueError(f"prior_weight must be >= 0, got {prior_weight}")
        if clip_z < 0:
            raise ValueError(f"clip_z must be >= 0, got {clip_z}")
        self.bins = bins
        self.fading = fading
        self.prior_weight = prior_weight
        self.clip_z = clip_z
        self.state = ArrayState(
            {
                "mean_": ArraySpec((bins,), np.float32, 0.0),
                "var_": ArraySpec((bins,), np.float32, 0.0),
                "weight": ArraySpec((bins,), np.float32, 0.0),
            },
            capacity,
        )

    def z(
        self,
        rows: np.ndarray,
        ts: np.ndarray,
        deviation: np.ndarray,
        prior_var: np.ndarray,
        interval: np.ndarray,
    ) -> np.ndarray:
        """Z-score of each deviation against its stream's bin, pooled with the prior.

        ``interval`` is each stream's typical sampling interval in seconds (NaN if
        not known yet).
        """
        mean, scale = self.pooled(rows, ts, prior_var, interval)
        return (deviation - mean) / scale

    def pooled(
        self,
        rows: np.ndarray,
        ts: np.ndarray,
        prior_var: np.ndarray,
        interval: np.ndarray,
        tod_bins: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and scale of each stream's bin at ``ts``, pooled with the prior: the
        deviation :meth:`z` compares with and its unit. ``tod_bins``: the bins of
        ``ts`` (:func:`time_of_day_bin`), when the caller has them."""
        self.state.ensure_rows(rows)
        b = time_of_day_bin(self.bins, ts) if tod_bins is None else tod_bins
        return self._pooled(rows * self.bins + b, prior_var, interval)

    def _pooled(
        self, cells: np.ndarray, prior_var: np.ndarray, interval: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and scale of each (row, bin) cell of the flat arrays (``row * bins +
        bin``), pooled with the prior."""
        s = self.state
        own = flat_view(s.weight).take(cells).astype(np.float64) / visits_per_bin(
            self.bins, interval
        )
        pooled = own + self.prior_weight
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(pooled > 0, own * flat_view(s.mean_).take(cells) / pooled, 0.0)
            var = np.where(
                pooled > 0,
                (own * flat_view(s.var_).take(cells) + self.prior_weight * prior_var) / pooled,
                0.0,
            )
        return mean, np.maximum(np.sqrt(var), 1e-6 * np.abs(mean) + 1e-9)

    def learn(
        self,
        rows: np.ndarray,
        ts: np.ndarray,
        deviation: np.ndarray,
        prior_var: np.ndarray,
        interval: np.ndarray,
        tod_bins: np.ndarray | None = None,
    ) -> None:
        """Fold each deviation into its stream's bin (rows distinct); see :meth:`z`
        (``tod_bins`` as in :meth:`pooled`)."""
        self.state.ensure_rows(rows)
        s = self.state
        b = time_of_day_bin(self.bins, ts) if tod_bins is None else tod_bins
        # (row, bin) cells of the flat arrays: take/put, faster than indexing [rows, b].
        cells = rows * self.bins + b
        if self.clip_z > 0:
            centre, scale = self._pooled(cells, prior_var, interval)
            reach = self.clip_z * scale
            deviation = centre + np.clip(deviation - centre, -reach, reach)
        mean_, var_, weight_ = flat_view(s.mean_), flat_view(s.var_), flat_view(s.weight)
        mean = mean_.take(cells).astype(np.float64)
        var = var_.take(cells).astype(np.float64)
        weight = weight_.take(cells)
        first = weight == 0
        # A young bin averages its days evenly, then fades at ``fading`` a day; a day's
        # values share that day's weight.
        visits = visits_per_bin(self.bins, interval)
        a = np.maximum(self.fading, 1.0 / (weight / visits + 1.0)) / visits
        diff = deviation - mean
        increment = a * diff
        mean_[cells] = np.where(first, deviation, mean + increment)
        var_[cells] = np.where(first, 0.0, (1 - a) * (var + diff * increment))
        weight_[cells] = weight + 1.0
