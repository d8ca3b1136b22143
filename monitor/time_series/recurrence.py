"""Daily recurrence: a deviation the stream shows at this time of day on most days.

Many streams have a job that runs at about the same time every day (a nightly backup,
a cron job, a report): a spike or a dip at 3 am, day after day. The daily profile
keeps each time-of-day bin's mean and spread, which a one-point spike among a bin's
values fits badly (one spike in twelve five-minute values is a z-score of about 3.5
every day), and the stream's tail model is fitted to all points, so such a spike keeps
scoring as improbable although it comes every night.

:class:`DailyRecurrence` keeps, per stream and per time-of-day bin (UTC), the largest
and the smallest residual (a value's deviation from its bin's usual deviation) of each
of the last ``days`` days, in a ring. A residual *recurs* when, on at least
``min_days`` of the previous days, the same bin or one of its ``neighbours`` on either
side (a job's start time jitters) had a residual on the same side at least ``ratio``
times as large, and that happened at this time of day clearly more often than anywhere
in the day: the share of the previous days with such a residual near this time is at
least ``specificity`` times the share expected if the like residuals of the whole day
were spread evenly over it. A stream with spikes at all hours thus gets nothing from
it (its spikes are rare or not by its tail model alone), and neither does a residual
so small that every hour has one like it. A recurring residual is as probable as those
days make it, per point: ``share of days / (values per bin and day * bins looked at)``;
:meth:`DailyRecurrence.limit` caps a point's score at that probability's score
(``-log10(p) / 10``, the scale of the calibrated scores).

Extremes are kept as ``asinh`` of the residual in half precision (order-preserving,
any magnitude, about 1.6 % resolution at the largest), ``2 * bins * days`` values per
stream: 768 bytes with 24 bins and 8 days, and a few scalars. After a gap of several
days the ring still holds the days before it, standing in for the days missed.
"""

from __future__ import annotations

import numpy as np

from monitor.state import ArraySpec, ArrayState
from monitor.stats.finite import finite
from monitor.time_series.daily_profile import DAY_SECONDS, time_of_day_bin, visits_per_bin


class DailyRecurrence:
    """Per-stream extremes of each time-of-day bin over the last days, and their recurrence.

    Parameters
    ----------
    bins
        Equal time-of-day bins of a day (24: hourly).
    days
        Days in the ring (>= 2): the current day and ``days - 1`` previous ones.
    min_days
        Previous days with a like residual near this time for it to recur (>= 1).
    ratio
        A previous day's residual is like the current one when it is on the same side
        and at least this share of its size (> 0).
    neighbours
        Bins on either side of the current one that count as this time of day
        (``2 * neighbours + 1 <= bins``).
    specificity
        The share of previous days with a like residual near this time must be at least
        this multiple of the share expected from the like residuals of the whole day
        spread evenly (>= 0; 0 does not compare).

    Examples
    --------
    A quiet stream (residuals about 0.1) with a spike of 10 at 03:05 every day: on day
    9 the spike's score is capped, one at 15:05 keeps its score.

    >>> rec = DailyRecurrence(bins=24, days=8)
    >>> row, interval = np.array([0]), np.array([300.0])
    >>> for t in range(0, 9 * 86_400, 300):
    ...     spike = t % 86_400 == 3 * 3_600 + 300
    ...     rec.learn(row, np.array([float(t)]), np.array([10.0 if spike else 0.1]))
    >>> night, afternoon = 9 * 86_400 + 3 * 3_600 + 300.0, 9 * 86_400 + 15 * 3_600 + 300.0
    >>> score = np.array([0.6])
    >>> capped = rec.limit(row, np.array([night]), np.array([10.0]), interval, score)
    >>> kept = rec.limit(row, np.array([afternoon]), np.array([10.0]), interval, score)
    >>> round(float(capped[0]), 3), float(kept[0])
    (0.156, 0.6)
    """

    def __init__(
        self,
        bins: int = 24,
        days: int = 8,
        min_days: int = 2,
        ratio: float = 0.9,
        neighbours: int = 1,
        specificity: float = 1.5,
        capacity: int = 16,
    ) -> None:
        if not 1 <= bins <= 1440:
            raise ValueError(f"bins must be in [1, 1440], got {bins}")
        if days < 2:
            raise ValueError(f"days must be >= 2, got {days}")
        if min_days < 1:
            raise ValueError(f"min_days must be >= 1, got {min_days}")
        if not ratio > 0:
            raise ValueError(f"ratio must be > 0, got {ratio}")
        if neighbours < 0 or 2 * neighbours + 1 > bins:
            raise ValueError(f"neighbours must be in [0, (bins - 1) / 2], got {neighbours}")
        if specificity < 0:
            raise ValueError(f"specificity must be >= 0, got {specificity}")
        self.bins = bins
        self.days = days
        self.min_days = min_days
        self.ratio = ratio
        self.specificity = specificity
        self.offsets = np.arange(-neighbours, neighbours + 1)
        self.state = ArrayState(
            {
                # asinh of the largest residual ([0]) and minus asinh of the smallest
                # ([1]) of (bin, day), at column day % days: larger is more extreme.
                "extremes": ArraySpec((2, bins, days), np.float16, np.nan),
                # The (day, bin) slot of the last point, and its extremes so far.
                "slot": ArraySpec((), np.int64, -1),
                "slot_up": ArraySpec((), np.float32, 0.0),
                "slot_down": ArraySpec((), np.float32, 0.0),
            },
            capacity,
        )

    def _day_bin(
        self, ts: np.ndarray, tod_bins: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        day = np.floor(finite(ts) / DAY_SECONDS).astype(np.int64)
        return day, time_of_day_bin(self.bins, ts) if tod_bins is None else tod_bins

    def limit(
        self,
        rows: np.ndarray,
        ts: np.ndarray,
        residual: np.ndarray,
        interval: np.ndarray,
        score: np.ndarray,
        tod_bins: np.ndarray | None = None,
    ) -> np.ndarray:
        """Each score, capped where the residual recurs (rows distinct; nothing learned).

        ``interval`` is each stream's typical sampling interval in seconds (NaN if not
        known yet). Only scores above the lowest cap possible (a like residual on every
        previous day) are looked at. ``tod_bins``: the time-of-day bins of ``ts``
        (:func:`~monitor.time_series.daily_profile.time_of_day_bin`), when the caller
        has them.
        """
        self.state.ensure_rows(rows)
        looked_at = len(self.offsets)
        per_day = visits_per_bin(self.bins, interval) * looked_at
        candidates = np.flatnonzero(score > np.log10(per_day) / 10.0)
        if not len(candidates):
            return score
        r = rows[candidates]
        residual = finite(residual[candidates])
        side = (residual <= 0).astype(np.intp)
        level = np.arcsinh(self.ratio * np.abs(residual))
        day, b = self._day_bin(ts[candidates], None if tod_bins is None else tod_bins[candidates])
        shifted = b[:, None] + self.offsets  # (n, bins looked at)
        neighbour = np.mod(shifted, self.bins)
        # The column of a bin's own day holds that day (or one older than the ring):
        # only the other columns are previous days.
        own = np.mod(day[:, None] + np.floor_divide(shifted, self.bins), self.days)
        extremes = self.state.extremes[r[:, None], side[:, None], neighbour]  # (n, k, days)
        hit = extremes.astype(np.float32) >= level[:, None, None]
        np.put_along_axis(hit, own[:, :, None], False, axis=2)
        matched = hit.any(axis=1).sum(axis=1)
        share = matched / (self.days - 1)
        with np.errstate(divide="ignore"):
            cap = -np.log10(share / per_day[candidates]) / 10.0
        recurs = (matched >= self.min_days) & (score[candidates] > cap)
        if self.specificity > 0 and recurs.any():
            recurs[recurs] = self._specific(
                r[recurs], side[recurs], level[recurs], day[recurs], share[recurs]
            )
        out = score.copy()
        capped = candidates[recurs]
        out[capped] = cap[recurs]
        return out

    def _specific(
        self,
        rows: np.ndarray,
        side: np.ndarray,
        level: np.ndarray,
        day: np.ndarray,
        share: np.ndarray,
    ) -> np.ndarray:
        """Whether like residuals come near this time more often than the whole day's
        like residuals spread evenly would put there (``specificity``)."""
        extremes = self.state.extremes[rows, side]  # (n, bins, days)
        hit = extremes.astype(np.float32) >= level[:, None, None]
        # Today's column (or the oldest day) is left out for every bin.
        hit[np.arange(len(rows)), :, np.mod(day, self.days)] = False
        per_bin = hit.sum(axis=(1, 2)) / (self.bins * (self.days - 1))
        # Chance that at least one of the bins looked at has one, on a day.
        expected = 1.0 - (1.0 - per_bin) ** len(self.offsets)
        return share >= self.specificity * expected

    def learn(
        self,
        rows: np.ndarray,
        ts: np.ndarray,
        residual: np.ndarray,
        tod_bins: np.ndarray | None = None,
    ) -> None:
        """Record each point's residual (rows distinct); a point in a new slot first
        files the previous slot's extremes in the ring (``tod_bins`` as in :meth:`limit`)."""
        self.state.ensure_rows(rows)
        s = self.state
        stored = np.arcsinh(finite(residual))
        day, b = self._day_bin(ts, tod_bins)
        slot = day * self.bins + b
        previous = s.slot[rows]
        done = (previous >= 0) & (previous != slot)
        if done.any():
            filed = rows[done]
            old_bin = previous[done] % self.bins
            column = (previous[done] // self.bins) % self.days
            s.extremes[filed, 0, old_bin, column] = s.slot_up[filed]
            s.extremes[filed, 1, old_bin, column] = -s.slot_down[filed]
        fresh = previous != slot
        s.slot_up[rows] = np.where(fresh, stored, np.maximum(s.slot_up[rows], stored))
        s.slot_down[rows] = np.where(fresh, stored, np.minimum(s.slot_down[rows], stored))
        s.slot[rows] = slot
