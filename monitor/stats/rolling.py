"""Mean and variance over a sliding window, for many streams at once."""

from __future__ import annotations

import numpy as np

from monitor.state import ArraySpec, ArrayState, flat_view


class RollingMeanVar:
    """Mean and variance of the last ``window_size`` values of each stream.

    The vectorised counterpart of ``river.utils.Rolling(stats.Mean, window_size)``
    and ``river.utils.Rolling(stats.Var, window_size, ddof)``: Welford's update,
    reverted for the value leaving the window. ``update`` takes rows that are
    distinct within one call (one point per stream; see
    :mod:`monitor.detection.rounds`).

    Parameters
    ----------
    window_size
        Number of most recent values per stream.
    ddof
        Delta degrees of freedom of the variance.

    Examples
    --------
    >>> stat = RollingMeanVar(window_size=3)
    >>> for x in [1.0, 3.0, 5.0, 4.0]:
    ...     stat.update(np.array([0]), np.array([x]))
    >>> stat.mean(np.array([0])), stat.var(np.array([0]))
    (array([4.]), array([1.]))
    """

    def __init__(self, window_size: int, ddof: int = 1, capacity: int = 16) -> None:
        if window_size < 1:
            raise ValueError(f"window_size must be >= 1, got {window_size}")
        if ddof < 0:
            raise ValueError(f"ddof must be >= 0, got {ddof}")
        self.window_size = window_size
        self.ddof = ddof
        self.state = ArrayState(
            {
                "window": ArraySpec((window_size,), np.float64, 0.0),
                "position": ArraySpec((), np.int32, 0),
                "count": ArraySpec((), np.int32, 0),
                "mean_": ArraySpec((), np.float64, 0.0),
                "m2": ArraySpec((), np.float64, 0.0),
            },
            capacity,
        )

    def update(self, rows: np.ndarray, values: np.ndarray) -> None:
        """Push one value into the window of each of ``rows`` (distinct)."""
        if len(rows):
            self.state.ensure(int(rows.max()) + 1)
        s = self.state
        count = s.count[rows]
        position = s.position[rows]
        mean = s.mean_[rows]
        m2 = s.m2[rows]
        full = count >= self.window_size
        # (row, position) cells of the flat window: take/put instead of [rows, position].
        window = flat_view(s.window)
        cells = rows * self.window_size + position
        leaving = np.where(full, window.take(cells), 0.0)
        # Values entering a window that is not yet full: Welford's update.
        n = np.where(full, count, count + 1).astype(np.float64)
        delta_in = values - mean
        grown_mean = mean + delta_in / n
        grown_m2 = m2 + delta_in * (values - grown_mean)
        # Window full: replace the leaving value (Welford reverted, then updated).
        shifted_mean = mean + (values - leaving) / n
        shifted_m2 = m2 + (values - leaving) * (values - shifted_mean + leaving - mean)
        s.mean_[rows] = np.where(full, shifted_mean, grown_mean)
        s.m2[rows] = np.maximum(np.where(full, shifted_m2, grown_m2), 0.0)
        window[cells] = values
        s.position[rows] = (position + 1) % self.window_size
        s.count[rows] = np.minimum(count + 1, self.window_size)

    def mean(self, rows: np.ndarray) -> np.ndarray:
        """Mean of each row's window (0 before the first value)."""
        return self.state.mean_[rows].copy()

    def var(self, rows: np.ndarray) -> np.ndarray:
        """Variance of each row's window (0 until there are more than ``ddof`` values)."""
        n = self.state.count[rows].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(n > self.ddof, self.state.m2[rows] / (n - self.ddof), 0.0)

    def count(self, rows: np.ndarray) -> np.ndarray:
        """Number of values in each row's window."""
        return self.state.count[rows].copy()
