"""Rare-value rate: a burst of rare values, none of them remarkable alone.

Per-point models judge each value on its own; a stream whose rare values (a spike,
a visit to a seldom-seen range) suddenly come much more often than they used to
shows nothing unusual at any single point. :class:`RareRate` counts each stream's
rare values in two faded counts: a short one, ``S = (1 - a) S + rare`` (about the
last ``1 / a`` points), and the long-run mean ``m`` and variance ``v`` of that short
count (about the last ``1 / long_fading`` points). A rare value is scored by how
improbable a short count at least as large is under the long run, with a
quasi-Poisson tail: ``S / c`` against a Poisson law of mean ``m / c``, ``c = v / m``
the count's dispersion (never below ``1 / (2 - a)``, the dispersion of a faded count
of independent events). Rare values that usually come in clusters thus raise ``c``
and score less. The score is ``-log10(tail) / 10``, on the scale of the calibrated
scores (0.5 at a tail probability of 1e-5). The long run does not learn the counts of
points scoring at or above the caller's cut, so an open burst does not become usual.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammainc

from monitor.state import ArraySpec, ArrayState
from monitor.stats.ewm import EWMeanVar

LN10 = float(np.log(10.0))


class RareRate:
    """Surprise of each stream's short count of rare values under its long run.

    Parameters
    ----------
    short_fading
        Weight the short count loses per point, in (0, 1): it counts about the last
        ``1 / short_fading`` points.
    long_fading
        Fading factor, in (0, 1), of the long-run mean and variance of the short count.
    prior_rate
        Share of rare values a new stream is assumed to have, in (0, 1): the long
        run starts at the mean and variance of independent rare values at this rate.
    ceiling
        Largest score returned (> 0).

    Examples
    --------
    >>> rate = RareRate(short_fading=0.05, long_fading=0.002, prior_rate=0.01)
    >>> row, warm, cut = np.array([0]), np.array([True]), np.array([0.5])
    >>> for t in range(2000):  # one rare value every 100 points
    ...     _ = rate.update(row, np.array([t % 100 == 0]), warm, cut)
    >>> lone = rate.update(row, np.array([True]), warm, cut)  # right after one: a pair
    >>> burst = [float(rate.update(row, np.array([True]), warm, cut)[0]) for _ in range(3)]
    >>> bool(lone[0] < 0.2 < 0.5 < burst[-1])
    True
    """

    def __init__(
        self,
        short_fading: float = 0.03,
        long_fading: float = 0.001,
        prior_rate: float = 0.01,
        capacity: int = 16,
        ceiling: float = 1.0,
    ) -> None:
        if not 0 < short_fading < 1:
            raise ValueError(f"short_fading must be in (0, 1), got {short_fading}")
        if not 0 < long_fading < 1:
            raise ValueError(f"long_fading must be in (0, 1), got {long_fading}")
        if not 0 < prior_rate < 1:
            raise ValueError(f"prior_rate must be in (0, 1), got {prior_rate}")
        if not ceiling > 0:
            raise ValueError(f"ceiling must be > 0, got {ceiling}")
        self.short_fading = short_fading
        self.long_fading = long_fading
        self.ceiling = ceiling
        # A faded count of independent events at rate r has mean r / a and variance
        # r / (a (2 - a)): its dispersion is 1 / (2 - a).
        self.min_dispersion = 1.0 / (2.0 - short_fading)
        self.prior_mean = prior_rate / short_fading
        self.state = ArrayState({"short": ArraySpec((), np.float64, 0.0)}, capacity)
        self.long_run = EWMeanVar(
            long_fading, capacity, prior=(self.prior_mean, self.prior_mean * self.min_dispersion)
        )
        """The long-run mean and variance of the short count."""

    def update(
        self, rows: np.ndarray, rare: np.ndarray, warm: np.ndarray, cut: np.ndarray
    ) -> np.ndarray:
        """Score each point of ``rows`` (distinct), then learn it.

        ``rare`` marks the rare values. Only a rare value of a ``warm`` stream whose
        short count is above the long-run mean scores (in [0, ``ceiling``]); every
        other point scores 0. The long run learns every point except those scoring at
        or above ``cut``.
        """
        self.state.ensure_rows(rows)
        self.long_run.state.ensure_rows(rows)
        s = self.state
        a = self.short_fading
        short = s.short[rows] * (1.0 - a) + rare
        mean, var = self.long_run.mean(rows), self.long_run.var(rows)
        score = np.zeros(len(rows))
        scored = rare & warm & (short > mean)
        if scored.any():
            m = mean[scored]
            c = np.maximum(var[scored] / np.maximum(m, 1e-12), self.min_dispersion)
            # P(N >= k) of a Poisson law of mean lam is the regularised lower incomplete
            # gamma function P(k, lam), also for a fractional k.
            tail = gammainc(short[scored] / c, m / c)
            log10_tail = np.log10(np.maximum(tail, 1e-300))
            score[scored] = np.clip(-log10_tail / 10.0, 0.0, self.ceiling)
        # Counts scoring at or above the cut are not learned (weight 0).
        self.long_run.update(rows, short, weights=(score < cut).astype(np.float64))
        s.short[rows] = short
        return score
