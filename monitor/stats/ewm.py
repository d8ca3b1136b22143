"""Exponentially weighted mean and variance, for many streams at once."""

from __future__ import annotations

import numpy as np

from monitor.state import ArraySpec, ArrayState


class EWMeanVar:
    """Exponentially weighted mean and variance of each stream.

    The vectorised counterpart of ``river.stats.EWMean`` and ``river.stats.EWVar``
    with the same ``fading_factor``: the first value sets the mean, then
    ``mean += a * (x - mean)``. The variance uses the algebraically identical but
    numerically stable form ``var = (1 - a) * (var + a * (x - mean)**2)`` instead of
    river's ``E[x^2] - E[x]^2``, which loses precision on large values.

    Parameters
    ----------
    fading_factor
        Weight of the newest value, in (0, 1]; the closer to 1, the faster it adapts.
    prior
        (mean, variance) every row starts from, as if it had seen values already; None
        (the default): a row's first value sets the mean.

    Examples
    --------
    >>> stat = EWMeanVar(fading_factor=0.5)
    >>> for x in [1.0, 3.0, 5.0, 4.0]:
    ...     stat.update(np.array([0]), np.array([x]))
    >>> stat.mean(np.array([0])), stat.var(np.array([0]))
    (array([3.75]), array([1.4375]))
    """

    def __init__(
        self, fading_factor: float, capacity: int = 16, prior: tuple[float, float] | None = None
    ) -> None:
        if not 0 < fading_factor <= 1:
            raise ValueError(f"fading_factor must be in (0, 1], got {fading_factor}")
        self.fading_factor = fading_factor
        mean, var = (0.0, 0.0) if prior is None else prior
        self.state = ArrayState(
            {
                "mean_": ArraySpec((), np.float64, mean),
                "var_": ArraySpec((), np.float64, var),
                "seen": ArraySpec((), np.bool_, prior is not None),
            },
            capacity,
        )

    def update(
        self, rows: np.ndarray, values: np.ndarray, weights: np.ndarray | None = None
    ) -> None:
        """Fold one value into each of ``rows`` (distinct).

        ``weights`` (0..1 per value) scales the fading factor, so a value with weight
        0 leaves the statistics unchanged; a row's first value always sets the mean.
        """
        if len(rows):
            self.state.ensure(int(rows.max()) + 1)
        s = self.state
        a = self.fading_factor if weights is None else self.fading_factor * weights
        seen = s.seen[rows]
        mean = s.mean_[rows]
        diff = values - mean
        increment = a * diff
        if seen.all():  # the usual case: no first values to set
            s.mean_[rows] = mean + increment
            s.var_[rows] = (1 - a) * (s.var_[rows] + diff * increment)
            return
        s.mean_[rows] = np.where(seen, mean + increment, values)
        s.var_[rows] = np.where(seen, (1 - a) * (s.var_[rows] + diff * increment), 0.0)
        s.seen[rows] = True

    def mean(self, rows: np.ndarray) -> np.ndarray:
        """Current mean of each row."""
        return self.state.mean_[rows].copy()

    def var(self, rows: np.ndarray) -> np.ndarray:
        """Current variance of each row."""
        return self.state.var_[rows].copy()

    def seen(self, rows: np.ndarray) -> np.ndarray:
        """Whether each row has had a value."""
        return self.state.seen[rows].copy()
