"""Value novelty: how rarely a stream has taken values in the range of the current one.

Each stream keeps a histogram of its values over the range it has seen so far
(running minimum to maximum, cut into ``bins`` equal bins) with exponentially
faded counts. A point is scored by the surprisal ``-log p`` of its bin under that
histogram, with add-``prior`` smoothing; a value outside the range seen so far is
scored as an empty bin, one nat more surprising. When the range grows, the faded
counts are moved to the new bins their old bin centres fall in. A bin's mass includes
a share (``neighbour``) of its fuller adjacent bin, so a value just past a
well-populated bin (the edge of a usual daily swing, say) is not scored as if it
were far from everything seen. Likewise a value just past the range keeps a share
``exp(-distance / edge)`` (distance in bin widths) of its edge bin's mass, so a new
high or low that only grazes the old one is not scored as an empty bin. This catches what
a forecaster that follows the data misses: a slow drift into values the stream has
never (or long not) taken, a level that settles where it never was, a signal that
goes flat at an unusual value.

Fading is lazy: instead of every count losing ``fading`` of its weight at each point,
a new point weighs ``1 / (1 - fading)`` times the one before (the stream's ``unit``)
and counts are read divided by the unit; so a point touches its own bin only, not all
of them. Rows whose unit grows past 2**64 are brought back to 1.
"""

from __future__ import annotations

import numpy as np

from monitor.state import ArraySpec, ArrayState, flat_view
from monitor.stats.finite import finite

OUT_OF_RANGE_NATS = 1.0
"""Extra surprisal of a value outside the range seen so far (beyond an empty bin)."""

MAX_UNIT = 2.0**64
"""A stream's unit (the weight of its next point) past which its counts are rescaled."""


class ValueNovelty:
    """Surprisal of each value under its stream's faded histogram of past values.

    Parameters
    ----------
    bins
        Number of equal bins between the stream's running minimum and maximum.
    fading
        Weight lost by past counts at each point, in (0, 1): the histogram covers
        about the last ``1 / fading`` points.
    prior
        Pseudo-count added to every bin (smoothing); in (0, 1].
    neighbour
        Share of the fuller adjacent bin's count added to a bin's own count when a
        value in it is scored, in [0, 1]; 0 scores each bin alone.
    edge
        A value outside the range seen so far keeps a share ``exp(-distance / edge)``
        of the edge bin's mass (with its neighbour share), ``distance`` in bin widths
        past the range (>= 0): a value that only grazes the old minimum or maximum
        scores about like the edge bin, one several bin widths past it as an empty
        bin. 0 scores every value outside the range as an empty bin.

    Examples
    --------
    >>> novelty = ValueNovelty(bins=8, fading=0.01)
    >>> row = np.array([0])
    >>> for t in range(200):
    ...     _ = novelty.score_learn(row, np.array([float(t % 4)]))
    >>> usual = novelty.score_learn(row, np.array([1.0]))
    >>> unseen = novelty.score_learn(row, np.array([9.0]))
    >>> bool(unseen[0] > usual[0] + 4.0)
    True
    """

    def __init__(
        self,
        bins: int = 32,
        fading: float = 0.0005,
        prior: float = 0.1,
        capacity: int = 16,
        neighbour: float = 0.0,
        edge: float = 0.0,
    ) -> None:
        if not 2 <= bins <= 255:
            raise ValueError(f"bins must be in [2, 255], got {bins}")
        if not 0 < fading < 1:
            raise ValueError(f"fading must be in (0, 1), got {fading}")
        if not 0 < prior <= 1:
            raise ValueError(f"prior must be in (0, 1], got {prior}")
        if not 0 <= neighbour <= 1:
            raise ValueError(f"neighbour must be in [0, 1], got {neighbour}")
        if not edge >= 0:
            raise ValueError(f"edge must be >= 0, got {edge}")
        self.bins = bins
        self.fading = fading
        self.prior = prior
        self.neighbour = neighbour
        self.edge = edge
        self.state = ArrayState(
            {
                "counts": ArraySpec((bins,), np.float32, 0.0),
                "unit": ArraySpec((), np.float64, 1.0),
                "total": ArraySpec((), np.float64, 0.0),
                "low": ArraySpec((), np.float64, np.nan),
                "high": ArraySpec((), np.float64, np.nan),
            },
            capacity,
        )

    def _bin(self, x: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Bin of each value in [low, high] (a degenerate range has one bin, 0)."""
        span = high - low
        with np.errstate(divide="ignore", invalid="ignore"):
            position = np.where(span > 0, (x - low) / span * self.bins, 0.0)
        # fmax/fmin: NaN -> bin 0, +-inf -> the last or the first (as nan_to_num, clip).
        return np.fmin(np.fmax(position, 0.0), self.bins - 1).astype(np.intp)

    def score(self, rows: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Surprisal in nats of each value of ``rows``; 0 for a stream's first value."""
        s = self.state
        low, high = s.low[rows], s.high[rows]
        unit = s.unit[rows]
        total = s.total[rows] / unit
        inside = (x >= low) & (x <= high)
        bin_ = self._bin(x, low, high)
        cells = rows * self.bins + bin_
        counts = flat_view(s.counts)
        in_bin = counts.take(cells) / unit
        if self.neighbour > 0:  # (take clips the cells past either end of the array)
            left = np.where(bin_ > 0, counts.take(cells - 1, mode="clip"), 0.0)
            right = np.where(bin_ < self.bins - 1, counts.take(cells + 1, mode="clip"), 0.0)
            in_bin = in_bin + self.neighbour * np.maximum(left, right) / unit
        width = np.maximum((high - low) / self.bins, 1e-12 * np.abs(low) + 1e-300)
        with np.errstate(invalid="ignore"):
            distance = finite(np.maximum(np.maximum(low - x, x - high) / width, 0.0))
        # Outside the range the value's bin is the edge bin; it keeps a share of that
        # bin's mass that falls with the distance past the range.
        outside = self.prior
        if self.edge > 0:
            outside = outside + in_bin * np.exp(-distance / self.edge)
        mass = np.where(inside, in_bin + self.prior, outside)
        surprisal = np.log((total + self.prior * self.bins) / mass)
        # Outside the range: one nat more, plus the log of the distance in bin widths.
        beyond = OUT_OF_RANGE_NATS + np.log1p(distance)
        surprisal = np.where(inside, surprisal, surprisal + beyond)
        return np.where(np.isnan(low), 0.0, surprisal)

    def learn(self, rows: np.ndarray, x: np.ndarray) -> None:
        """Add one value to each of ``rows`` (distinct), growing the range as needed."""
        self.state.ensure_rows(rows)
        s = self.state
        low, high = s.low[rows], s.high[rows]
        new_low = np.fmin(low, x)
        new_high = np.fmax(high, x)
        grown = (new_low < low) | (new_high > high)
        if grown.any():
            self._rebin(rows[grown], low[grown], high[grown], new_low[grown], new_high[grown])
        s.low[rows], s.high[rows] = new_low, new_high
        unit = s.unit[rows] / (1.0 - self.fading)
        flat_view(s.counts)[rows * self.bins + self._bin(x, new_low, new_high)] += unit
        s.total[rows] += unit
        s.unit[rows] = unit
        big = unit > MAX_UNIT
        if big.any():
            rescale = rows[big]
            s.counts[rescale] /= unit[big, None].astype(np.float32)
            s.total[rescale] /= unit[big]
            s.unit[rescale] = 1.0

    def _rebin(
        self,
        rows: np.ndarray,
        low: np.ndarray,
        high: np.ndarray,
        new_low: np.ndarray,
        new_high: np.ndarray,
    ) -> None:
        """Move each old bin's count to the new bin holding the old bin's centre."""
        s = self.state
        centres = (
            low[:, None]
            + (np.arange(self.bins) + 0.5)[None, :] * ((high - low) / self.bins)[:, None]
        )
        target = self._bin(centres, new_low[:, None], new_high[:, None])
        flat = (np.arange(len(rows))[:, None] * self.bins + target).ravel()
        moved = np.bincount(flat, weights=s.counts[rows].ravel(), minlength=len(rows) * self.bins)
        s.counts[rows] = moved.reshape(len(rows), self.bins).astype(np.float32)

    def score_learn(self, rows: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Score each value, then learn it (rows distinct): the online protocol."""
        self.state.ensure_rows(rows)
        out = self.score(rows, x)
        self.learn(rows, x)
        return out
