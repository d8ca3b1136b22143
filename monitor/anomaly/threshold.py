"""From raw detector scores to calibrated scores and alert decisions, per stream.

Raw scores are not comparable across streams: a noisy stream scores high all
the time, and no single cut suits every stream. :class:`TailThreshold` turns a
stream's raw score into the probability of a score at least that high under the
stream's own recent score distribution, with a peaks-over-threshold model (a
light form of SPOT, Siffer et al. 2017): each stream tracks the ``tail_quantile``
of its transformed raw scores ``y = -log(1 - raw)`` and the mean excess above
it, and the tail beyond is taken as exponential::

    P(Y > y) = (1 - tail_quantile) * exp(-(y - q) / mean_excess)

The score is ``-log10(P) / 10`` in [0, 1], comparable across streams (0.5 means
a one-in-100,000 point); a ``ceiling`` above 1 lets scores beyond 1e-10 keep their
rank. The alert threshold is set per stream by its
sensitivity and raised to a streaming high quantile of the stream's own scores
when the stream alerts more often than its sensitivity promises. Points judged
anomalous are kept out of the tail model, so an open anomaly does not become
normal.

Keeping points out has a cost when they are the stream's normal: a stream whose
spikes first come after its warm-up keeps each of them out, its tail model only ever
sees the small exceedances, and every spike alerts again once suppression has let
go. With ``learn_recurring``, once a stretch of kept-out points has ended (within
about ``window`` points), later kept-out points count in the mean excess as
*censored* exceedances: an exceedance known to reach at least the level where the
score meets the cut, without its size (the maximum-likelihood estimate of an
exponential tail from censored data: that level is added to the exposure, no event to
the count). A lone anomaly is thus still kept out entirely, a recurring kind of point
widens the tail until it no longer stands out, and no kept-out point's own size ever
enters the model.
"""

from __future__ import annotations

import numpy as np

from monitor.state import ArraySpec, ArrayState
from monitor.stats import EWMeanVar

LN10 = float(np.log(10.0))


def sensitivity_threshold(sensitivity: np.ndarray | float) -> np.ndarray:
    """Score level at which a stream of the given sensitivity alerts.

    Sensitivity 0.5 alerts at a tail probability of 1e-5 (score 0.5), 1 at 1e-2,
    0 at 1e-8.

    >>> sensitivity_threshold(np.array([0.0, 0.5, 1.0])).tolist()
    [0.8, 0.5, 0.2]
    """
    return np.round((2.0 + 6.0 * (1.0 - np.asarray(sensitivity, dtype=np.float64))) / 10.0, 12)


class TailThreshold:
    """Per-stream calibrated score of raw detector scores, and an adaptive threshold.

    Parameters
    ----------
    tail_quantile
        Quantile of transformed raw scores where the exponential tail starts.
    window
        Span in points of the tail model (quantile step and mean-excess average).
    short_window
        Span in points of the average of transformed raw scores that is scored
        (1 scores each point on its own).
    guard_quantile
        The threshold never sits below this streaming quantile of the stream's scores.
    guard_step
        Step of the stochastic-approximation tracker of that quantile.
    learn_below
        Once warm, scores at or above ``max(threshold, learn_below)`` are kept out of
        the tail model; ``None`` keeps out everything at or above the threshold. A
        fixed level lets a sensitive (low) threshold alert early without an alerting
        stretch freezing the model.
    ceiling
        Largest score returned (at least 1). Above 1 (a tail probability beyond
        1e-10) scores still rank points, e.g. for a peak that a later, less extreme
        point should not beat; callers clip to 1 where a score must be in [0, 1].
    learn_recurring
        Once a stretch of kept-out points has ended, count later kept-out points in the
        mean excess as censored exceedances (see the module docstring); ``False`` keeps
        every kept-out point out of the model.

    Examples
    --------
    >>> gate = TailThreshold(window=100)
    >>> row = np.array([0])
    >>> rng = np.random.default_rng(0)
    >>> for t, raw in enumerate(rng.uniform(0.1, 0.4, 500)):
    ...     _ = gate.update(row, np.array([raw]), np.array([0.5]), np.array([t >= 300]))
    >>> score, threshold = gate.update(row, np.array([0.95]), np.array([0.5]), np.array([True]))
    >>> bool(score[0] > threshold[0]), threshold.tolist()
    (True, [0.5])
    """

    def __init__(
        self,
        tail_quantile: float = 0.98,
        window: int = 1000,
        short_window: int = 1,
        guard_quantile: float = 0.999,
        guard_step: float = 0.01,
        capacity: int = 16,
        learn_below: float | None = None,
        ceiling: float = 1.0,
        learn_recurring: bool = False,
    ) -> None:
        if not 0.5 <= tail_quantile < 1:
            raise ValueError(f"tail_quantile must be in [0.5, 1), got {tail_quantile}")
        if window < 2 or short_window < 1:
            raise ValueError(
                f"window must be >= 2 and short_window >= 1, got {window}, {short_window}"
            )
        if not 0.5 < guard_quantile < 1:
            raise ValueError(f"guard_quantile must be in (0.5, 1), got {guard_quantile}")
        if not 0 < guard_step <= 0.5:
            raise ValueError(f"guard_step must be in (0, 0.5], got {guard_step}")
        self.tail_quantile = tail_quantile
        self.window = window
        self.short_window = short_window
        self.guard_quantile = guard_quantile
        self.guard_step = guard_step
        if learn_below is not None and not 0 < learn_below <= 1:
            raise ValueError(f"learn_below must be in (0, 1], got {learn_below}")
        self.learn_below = learn_below
        if ceiling < 1:
            raise ValueError(f"ceiling must be >= 1, got {ceiling}")
        self.ceiling = ceiling
        self.learn_recurring = learn_recurring
        # Kept-out stretches are remembered over about ``window`` points.
        self._episode_keep = 1.0 - 1.0 / window
        self.short = EWMeanVar(2.0 / (short_window + 1), capacity)
        # Both halves of the tail model follow about ``window`` points: the quantile
        # moves in steps of the mean excess over the expected number of exceedances,
        # and the mean excess averages over about that many exceedances.
        exceedances = window * (1.0 - tail_quantile)
        self._quantile_step = 1.0 / (exceedances + 1.0)
        self._excess_rate = 2.0 / (exceedances + 1.0)
        self.state = ArrayState(
            {
                "tail_start": ArraySpec((), np.float64, 0.0),
                "mean_excess": ArraySpec((), np.float64, 0.1),
                # Faded weight of the observed (not censored) exceedances behind the mean
                # excess: 1 while nothing is censored.
                "events": ArraySpec((), np.float64, 1.0),
                # Faded count of ended stretches of kept-out points, and whether the
                # previous point was kept out.
                "episodes": ArraySpec((), np.float64, 0.0),
                "kept_out": ArraySpec((), np.bool_, False),
                "guard": ArraySpec((), np.float64, 0.0),
            },
            capacity,
        )

    def update(
        self,
        rows: np.ndarray,
        raw: np.ndarray,
        sensitivity: np.ndarray,
        warm: np.ndarray,
        alert_level: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Score raw values in [0, 1] of ``rows`` (distinct), then learn them.

        Returns (score, threshold), scores in [0, ``ceiling``]. ``warm`` marks
        streams past their warm-up: before it every value is learned and the guard
        quantile stays put; after it, values scoring at or above the threshold are
        not learned. ``alert_level``: ``sensitivity_threshold(sensitivity)``, when the
        caller has it already.
        """
        self.state.ensure_rows(rows)
        s = self.state
        y = -np.log1p(-np.clip(raw, 0.0, 1.0 - 1e-12))
        self.short.update(rows, y)
        y = self.short.mean(rows)
        start = s.tail_start[rows]
        excess = s.mean_excess[rows]
        log10_tail = np.log10(1.0 - self.tail_quantile) - np.maximum(y - start, 0.0) / excess / LN10
        score = np.clip(-log10_tail / 10.0, 0.0, self.ceiling)
        guard = s.guard[rows]
        if alert_level is None:
            alert_level = sensitivity_threshold(sensitivity)
        threshold = np.minimum(np.maximum(alert_level, guard), 1.0)

        cut = threshold if self.learn_below is None else np.maximum(threshold, self.learn_below)
        learn = ~warm | (score < cut)
        above = y > start
        censored = self._censored(rows, ~learn, above)
        step = self._quantile_step * excess * (above - (1.0 - self.tail_quantile))
        stepped = learn if censored is None else learn | censored
        s.tail_start[rows] = np.where(stepped, np.maximum(start + step, 0.0), start)
        grow = learn & above
        if censored is None:
            new_excess = excess + self._excess_rate * (y - start - excess)
            s.mean_excess[rows] = np.where(grow, np.maximum(new_excess, 1e-6), excess)
        else:
            self._learn_excess(rows, y - start, excess, grow, censored, cut)
        guard_step = self.guard_step * (self.guard_quantile - (score < guard))
        s.guard[rows] = np.where(warm, np.clip(guard + guard_step, 0.0, 1.0), guard)
        return score, threshold

    def _censored(self, rows: np.ndarray, out: np.ndarray, above: np.ndarray) -> np.ndarray | None:
        """Which kept-out points count as censored exceedances (``learn_recurring``):
        those after an ended stretch of kept-out points; then remember the stretches.
        ``None`` when ``learn_recurring`` is off."""
        if not self.learn_recurring:
            return None
        s = self.state
        episodes = s.episodes[rows] * self._episode_keep
        censored = out & above & (episodes >= 1.0)
        s.episodes[rows] = episodes + (s.kept_out[rows] & ~out)
        s.kept_out[rows] = out
        return censored

    def _learn_excess(
        self,
        rows: np.ndarray,
        excess_now: np.ndarray,
        excess: np.ndarray,
        observed: np.ndarray,
        censored: np.ndarray,
        cut: np.ndarray,
    ) -> None:
        """Mean excess from observed and censored exceedances.

        The faded exposure (mean excess times the faded event weight ``n``) gains each
        observed excess with one event, and each censored point's level (the excess at
        which the score reaches ``cut``) with none; the mean excess is exposure over
        events. With nothing censored ``n`` stays 1 and this is the plain faded mean.
        """
        s = self.state
        r = self._excess_rate
        n = s.events[rows]
        # An observed excess: exposure (1 - r) n m + r e over events (1 - r) n + r.
        rate = r / (n - r * (n - 1.0))
        observed_mean = excess + rate * (excess_now - excess)
        # A censored one: exposure (1 - r) n m + r level over events (1 - r) n.
        level = excess * LN10 * (10.0 * cut + np.log10(1.0 - self.tail_quantile))
        kept_n = n * (1.0 - r)
        censored_mean = excess + r * level / np.maximum(kept_n, 1e-12)
        new_excess = np.where(observed, observed_mean, np.where(censored, censored_mean, excess))
        s.mean_excess[rows] = np.where(observed | censored, np.maximum(new_excess, 1e-6), excess)
        s.events[rows] = np.where(observed, n + r * (1.0 - n), np.where(censored, kept_n, n))
