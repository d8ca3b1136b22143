"""Additive Holt-Winters forecasting for many streams at once."""

from __future__ import annotations

from typing import Literal

import numpy as np

from monitor.state import ArraySpec, ArrayState, flat_view


class HoltWinters:
    """Additive Holt-Winters with an optional trend and a per-stream season length.

    The vectorised counterpart of ``river.time_series.HoltWinters`` (additive):
    the same recurrences and the same initialisation from the first
    ``k = max(2, seasonality)`` values (level: their mean; trend: their mean first
    difference; season: one component per value). ``beta == 0`` means no trend,
    as in river. ``season_init="ratio"`` initialises the season as river does
    (``y / level``, a multiplicative start); the default ``"difference"`` uses the
    additive ``y - level``, which is right when the level is far from 1.

    Parameters
    ----------
    alpha, beta, gamma
        Smoothing of level, trend and season.
    max_seasonality
        Largest season length any stream may use (sizes the season buffer).
    season_init
        ``"difference"`` (default) or ``"ratio"`` (river's).

    Examples
    --------
    >>> model = HoltWinters(alpha=0.5, beta=0.1, gamma=0.3, max_seasonality=4)
    >>> rows = np.array([0, 1])
    >>> model.set_seasonality(rows, np.array([0, 4]))
    >>> for t in range(40):
    ...     model.update(rows, np.array([10.0 + t, 10.0 + [0, 5, 0, -5][t % 4]]))
    >>> model.forecast(rows).round(2).tolist()
    [50.0, 9.89]
    """

    def __init__(
        self,
        alpha: float,
        beta: float = 0.0,
        gamma: float = 0.0,
        max_seasonality: int = 0,
        season_init: Literal["difference", "ratio"] = "difference",
        capacity: int = 16,
    ) -> None:
        for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if alpha == 0:
            raise ValueError("alpha must be > 0")
        if max_seasonality < 0 or max_seasonality == 1:
            raise ValueError(f"max_seasonality must be 0 or >= 2, got {max_seasonality}")
        if max_seasonality and gamma == 0:
            raise ValueError("gamma must be > 0 when a seasonality is possible")
        if max_seasonality and beta == 0 and season_init == "ratio":
            raise ValueError("river's seasonal recurrences need a trend (beta > 0)")
        if season_init not in ("difference", "ratio"):
            raise ValueError(f"season_init must be 'difference' or 'ratio', got {season_init!r}")
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma
        self.max_seasonality = max_seasonality
        self.season_init = season_init
        width = max(2, max_seasonality)
        self.state = ArrayState(
            {
                "count": ArraySpec((), np.int64, 0),
                "seasonality": ArraySpec((), np.int32, 0),
                "level": ArraySpec((), np.float64, 0.0),
                "trend": ArraySpec((), np.float64, 0.0),
                # Before initialisation: the first values; after: the season components.
                "season": ArraySpec((width,), np.float64, 0.0),
            },
            capacity,
        )

    def set_seasonality(self, rows: np.ndarray, seasonality: np.ndarray) -> None:
        """Set the season length of new ``rows`` (0 for none, else 2..max_seasonality)."""
        if np.any((seasonality == 1) | (seasonality < 0) | (seasonality > self.max_seasonality)):
            raise ValueError(f"seasonality must be 0 or in [2, {self.max_seasonality}]")
        if len(rows):
            self.state.ensure(int(rows.max()) + 1)
        self.state.seasonality[rows] = seasonality

    def initialized(self, rows: np.ndarray) -> np.ndarray:
        """Whether each row has seen its first ``max(2, seasonality)`` values."""
        s = self.state
        return s.count[rows] >= np.maximum(2, s.seasonality[rows])

    def forecast(self, rows: np.ndarray) -> np.ndarray:
        """One-step-ahead forecast of each row; NaN where not yet initialised."""
        s = self.state
        m = s.seasonality[rows]
        phase = np.where(m > 0, s.count[rows] % np.maximum(m, 1), 0)
        season = np.where(m > 0, flat_view(s.season).take(self._season_cells(rows, phase)), 0.0)
        out = s.level[rows] + s.trend[rows] + season
        return np.where(self.initialized(rows), out, np.nan)

    def _season_cells(self, rows: np.ndarray, phase: np.ndarray) -> np.ndarray:
        """The (row, phase) cells of the flat ``season`` array: read and written with
        take/put there, faster than indexing ``season[rows, phase]``."""
        return rows * self.state.season.shape[1] + phase

    def shift_level(self, rows: np.ndarray, delta: np.ndarray) -> None:
        """Re-baseline: move the level of initialised ``rows`` by ``delta``, drop the trend."""
        s = self.state
        ready = self.initialized(rows)
        s.level[rows[ready]] += delta[ready]
        s.trend[rows[ready]] = 0.0

    def skip(self, rows: np.ndarray, steps: np.ndarray) -> None:
        """Advance initialised ``rows`` (distinct) over ``steps`` missed points.

        The season phase moves on by ``steps`` and the level follows the trend, as
        if the missed points had been exactly as forecast; nothing else is learned.
        Rows still collecting their first values are left as they are.
        """
        s = self.state
        ready = self.initialized(rows) & (steps > 0)
        moved, steps = rows[ready], steps[ready]
        s.level[moved] += s.trend[moved] * steps
        s.count[moved] += steps

    def update(self, rows: np.ndarray, values: np.ndarray) -> None:
        """Learn one value for each of ``rows`` (distinct)."""
        if len(rows):
            self.state.ensure(int(rows.max()) + 1)
        s = self.state
        count = s.count[rows]
        m = s.seasonality[rows]
        k = np.maximum(2, m)
        warming = count < k
        if warming.any():
            self._collect(rows[warming], values[warming], count[warming], k[warming])
        running = ~warming
        if running.any():
            self._smooth(rows[running], values[running], count[running], m[running])
        s.count[rows] = count + 1

    def _collect(
        self, rows: np.ndarray, values: np.ndarray, count: np.ndarray, k: np.ndarray
    ) -> None:
        s = self.state
        s.season[rows, count] = values
        ready = count + 1 == k
        if not ready.any():
            return
        rows, k = rows[ready], k[ready]
        first = s.season[rows]
        in_window = np.arange(first.shape[1])[None, :] < k[:, None]
        level = np.where(in_window, first, 0.0).sum(axis=1) / k
        s.level[rows] = level
        if self.beta > 0:
            last = first[np.arange(len(rows)), k - 1]
            s.trend[rows] = (last - first[:, 0]) / (k - 1)
        m = s.seasonality[rows]
        seasonal = m > 0
        if self.season_init == "ratio":
            components = first / level[:, None]
        else:
            components = first - level[:, None]
        s.season[rows] = np.where(seasonal[:, None] & in_window, components, 0.0)

    def _smooth(
        self, rows: np.ndarray, values: np.ndarray, count: np.ndarray, m: np.ndarray
    ) -> None:
        s = self.state
        seasonal = m > 0
        phase = np.where(seasonal, count % np.maximum(m, 1), 0)
        cells = self._season_cells(rows, phase)
        season = flat_view(s.season)
        season_old = np.where(seasonal, season.take(cells), 0.0)
        level_old = s.level[rows]
        trend_old = s.trend[rows]
        level = self.alpha * (values - season_old) + (1 - self.alpha) * (level_old + trend_old)
        s.level[rows] = level
        if self.beta > 0:
            s.trend[rows] = self.beta * (level - level_old) + (1 - self.beta) * trend_old
        if seasonal.any():
            new = self.gamma * (values - level_old - trend_old) + (1 - self.gamma) * season_old
            season[cells[seasonal]] = new[seasonal]
