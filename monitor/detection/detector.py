"""The per-stream detection core: every model, applied to a polled batch as rounds.

For each point, in this order (each point is scored before it is learned):

1. the forecaster's expected value and a prediction interval from the
   exponentially weighted spread of its past residuals;
2. five detector scores in [0, 1]: the forecast residual, the deviation from
   the rolling window, half-space trees over [value z, residual z,
   first-difference z] squashed into [0, 1], the value against the long-run mean
   (``level``) and its deviation from that mean against the same time of day
   (``season``, :class:`DailyProfile`; learned only from points the stream does not
   find anomalous), or, when higher, the run of such deviations the point continues
   (two one-sided CUSUMs of the season z-score, counted once the stream is warm);
3. their weighted mean, the raw score, turned by :class:`TailThreshold`
   into the stream's anomaly score (and value novelty likewise; a burst of values
   rare under the novelty histogram is scored by :class:`RareRate`; the stream's
   score is the largest of the three), reported only when it beats the stream's
   recent peak (:class:`PeakSuppression`, which compares scores beyond 1 too) and
   compared with its adaptive threshold;
4. no alert before the stream's warm-up is over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from monitor.anomaly.hst import HalfSpaceTrees
from monitor.anomaly.novelty import ValueNovelty
from monitor.anomaly.rare_rate import RareRate
from monitor.anomaly.suppress import PeakSuppression
from monitor.anomaly.threshold import TailThreshold, sensitivity_threshold
from monitor.config.schema import DetectorConfig, MonitorConfig, ThresholdConfig
from monitor.detection.rounds import plan_rounds
from monitor.detection.streams import Identities, StreamTable
from monitor.records.base import Labels, Point
from monitor.records.batch import RowsByNumber, point_columns
from monitor.state import ArraySpec, ArrayState
from monitor.stats import EWMeanVar, RollingMeanVar
from monitor.stats.finite import finite
from monitor.time_series import DailyProfile, DailyRecurrence, HoltWinters
from monitor.time_series.daily_profile import time_of_day_bin

DETECTORS = ("forecast", "rolling", "hst", "level", "season")
"""Names of the detectors whose weighted scores make the raw score, in order."""

CONTRIBUTIONS = (*DETECTORS, "novelty", "rare_rate")
"""Names of :attr:`Scored.contributions` columns: each detector's score in [0, 1], then
the calibrated scores (clipped to 1) of value novelty and of the rare-value rate (0 when
it is off), which the stream's score takes the largest of with the calibrated raw one."""

GAP_FACTOR = 1.5
"""A step longer than this many typical intervals is a gap (not learned as an interval)."""
MAX_SKIPPED = 100_000
"""Most points a single gap may skip in the forecaster."""
INTERVAL_FADING = 0.05
"""Fading factor of each stream's typical-interval average."""

SCORE_CEILING = 5.0
"""Calibrated scores reach up to this (a tail probability of 1e-50) until suppression has
compared them with the stream's recent peak; reported scores are then clipped to 1. A
burst of points all beyond 1e-10 thus alerts once, not at every saturated point."""

RUN_Z_CLIP = 6.0
"""A point's season z-score is clipped to this before it is added to a run, so a single
huge spike does not make a run that outlasts it."""

_RELATIVE_SCALE_FLOOR = 1e-6
_ABSOLUTE_SCALE_FLOOR = 1e-9


@dataclass(frozen=True)
class Scored:
    """Outcome of every applied point of a batch, aligned with :attr:`index`.

    ``index`` points into the batch given to :meth:`Detector.process`;
    ``contributions`` has one column per name in :data:`CONTRIBUTIONS`.
    """

    index: np.ndarray
    rows: np.ndarray
    ts: np.ndarray
    value: np.ndarray
    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    score: np.ndarray
    threshold: np.ndarray
    anomalous: np.ndarray
    severity_critical: np.ndarray
    contributions: np.ndarray


@dataclass(frozen=True)
class StreamSnapshot:
    """Learned state of some streams: identities and one array per state array.

    ``arrays`` maps ``"<component>.<array>"`` to the rows of the snapshot, in the
    order of ``keys``.
    """

    keys: list[str]
    names: list[str]
    labels: list[Labels]
    arrays: dict[str, np.ndarray]


@dataclass(frozen=True)
class BatchOutcome:
    """What happened to each point of a batch."""

    scored: Scored
    late: np.ndarray
    duplicate: np.ndarray
    over_capacity: np.ndarray
    disabled: np.ndarray


def _section(buffers: Mapping[str, np.ndarray], component: str) -> dict[str, np.ndarray]:
    """The arrays of ``component`` in flat ``"<component>.<array>"`` buffers, by array name."""
    prefix = f"{component}."
    return {
        name[len(prefix) :]: values for name, values in buffers.items() if name.startswith(prefix)
    }


def _tail_threshold(
    t: ThresholdConfig,
    capacity: int,
    tail_quantile: float | None = None,
    learn_below: float | None = None,
) -> TailThreshold:
    """A tail model with the configured settings (the combined score's and novelty's);
    ``tail_quantile`` and ``learn_below`` replace the configured ones."""
    return TailThreshold(
        t.tail_quantile if tail_quantile is None else tail_quantile,
        t.window,
        t.short_window,
        t.guard_quantile,
        t.guard_step,
        capacity,
        t.learn_below if learn_below is None else learn_below,
        SCORE_CEILING,
        t.learn_recurring,
    )


def _score_of(z: np.ndarray, scale: float) -> np.ndarray:
    """Map a deviation in standard deviations to [0, 1): 0.5 at ``scale``."""
    z2 = np.square(z)
    return z2 / (z2 + scale * scale)


def _squash(z: np.ndarray) -> np.ndarray:
    """Map a z-score to [0, 1] for the half-space trees (0.5 at 0, 0.88 at +8)."""
    return 0.5 + 0.5 * np.tanh(z / 4.0)


def _scale(var: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return np.maximum(
        np.sqrt(var), _RELATIVE_SCALE_FLOOR * np.abs(reference) + _ABSOLUTE_SCALE_FLOOR
    )


class Detector:
    """Every per-stream model of every stream, in arrays with one row per stream.

    Parameters
    ----------
    config
        The whole configuration (detector settings, per-stream overrides, bounds).

    Examples
    --------
    >>> from monitor.config import MonitorConfig
    >>> detector = Detector(MonitorConfig())
    >>> rng = np.random.default_rng(0)
    >>> points = [Point("cpu", (), 60.0 * t, 50 + rng.normal()) for t in range(600)]
    >>> points.append(Point("cpu", (), 60.0 * 600, 90.0))
    >>> scored = detector.process(points).scored
    >>> int(scored.anomalous.sum()), int(scored.index[scored.anomalous][0])
    (1, 600)
    """

    def __init__(self, config: MonitorConfig, capacity: int = 1024) -> None:
        self.config = config
        d: DetectorConfig = config.detector
        self.streams = StreamTable(
            d, config.streams.overrides, config.streams.max_streams, capacity
        )
        self._rows_used = 0
        """Rows below this have had a stream (rows above hold their initial values)."""
        max_season = max(
            [d.forecaster.seasonality, *(o.seasonality or 0 for o in config.streams.overrides)]
        )
        f = d.forecaster
        self.forecaster = HoltWinters(f.alpha, f.beta, f.gamma, max_season, capacity=capacity)
        self.values = EWMeanVar(d.ew_fading, capacity)
        self.residuals = EWMeanVar(d.ew_fading, capacity)
        self.differences = EWMeanVar(d.ew_fading, capacity)
        self.long_run = EWMeanVar(d.level_fading, capacity)
        self.window = RollingMeanVar(d.rolling_window, capacity=capacity)
        p = d.daily_profile
        self.profile = DailyProfile(p.bins, p.fading, p.prior_weight, 0.0, capacity)
        rc = d.recurrence
        self.recurrence = (
            DailyRecurrence(
                p.bins, rc.days, rc.min_days, rc.ratio, rc.neighbours, rc.specificity, capacity
            )
            if rc.days
            else None
        )
        self.run_allowance = p.run_allowance
        self.run_scale = p.run_scale
        h = d.hst
        self.trees = HalfSpaceTrees(3, h.n_trees, h.height, h.window_size, h.seed, capacity)
        t = d.threshold
        self.gate = _tail_threshold(t, capacity)
        n = d.novelty
        self.novelty = ValueNovelty(n.bins, n.fading, n.prior, capacity, n.neighbour, n.edge)
        self.novelty_gate = _tail_threshold(
            t, capacity, d.novelty.tail_quantile, d.novelty.learn_below
        )
        # A value in a bin of average mass is not novel: only surprisal beyond that counts.
        self.uniform_surprisal = float(np.log(n.bins))
        r = d.rare_rate
        # A value is rare when its bin holds less than ``share`` of the histogram's mass.
        self.rare_surprisal = float(-np.log(r.share)) if r.share > 0 else None
        self.rare_rate = RareRate(
            r.short_fading, r.long_fading, r.share if r.share > 0 else 0.01, capacity
        )
        self.suppression = PeakSuppression(d.suppression_span, capacity, d.suppression_margin)
        w = d.weights
        weights = np.array([w.forecast, w.rolling, w.hst, w.level, w.season])
        self.weights = weights / weights.sum()
        self.interval_z = d.interval_z
        self.rebaseline_after = d.rebaseline_after
        # The residual spread means something once it has averaged over about its span.
        self.spread_span = int(np.ceil(1.0 / d.ew_fading))
        self.critical = t.critical
        self.learn_below = t.learn_below
        self.state = ArrayState(
            {
                "count": ArraySpec((), np.int64, 0),
                "last_value": ArraySpec((), np.float64, np.nan),
                "expected": ArraySpec((), np.float64, np.nan),
                "lower": ArraySpec((), np.float64, np.nan),
                "upper": ArraySpec((), np.float64, np.nan),
                "score": ArraySpec((), np.float64, 0.0),
                "threshold": ArraySpec((), np.float64, 1.0),
                "anomalous": ArraySpec((), np.bool_, False),
                "critical": ArraySpec((), np.bool_, False),
                "events": ArraySpec((), np.int64, 0),
                "excursion": ArraySpec((), np.int32, 0),
                "excursion_sum": ArraySpec((), np.float64, 0.0),
                "interval": ArraySpec((), np.float64, np.nan),
                "run_up": ArraySpec((), np.float64, 0.0),
                "run_down": ArraySpec((), np.float64, 0.0),
            },
            capacity,
        )
        # Address space for as many streams as the table may hold: the arrays grow into it
        # without copying, and a row takes memory once a stream writes it.
        for state in (self.streams.state, *self._components()):
            state.reserve(config.streams.max_streams)

    def process(self, points: list[Point], owners: np.ndarray | None = None) -> BatchOutcome:
        """Score then learn every point of a batch, each stream in time order.

        ``owners`` (one int per point, e.g. the daemon's number of the Kafka partition
        the point came from) marks who feeds each stream: see :meth:`export_streams`.
        """
        keys, ts, values = point_columns(points)
        return self.process_columns(keys, _Identities(points), ts, values, owners)

    def process_columns(
        self,
        keys: Sequence[str],
        identities: Identities,
        ts: np.ndarray,
        values: np.ndarray,
        owners: np.ndarray | None = None,
        numbers: np.ndarray | None = None,
        rows_by_number: RowsByNumber | None = None,
    ) -> BatchOutcome:
        """As :meth:`process`, for points given column by column: each point's stream key,
        its (name, labels) (read for new streams only), time and value
        (:class:`~monitor.records.batch.DecodedColumns`), and when they came numbered,
        their stream numbers and the rows by number known (see
        :meth:`StreamTable.lookup`)."""
        rows, created = self.streams.lookup(keys, identities, numbers=numbers, cache=rows_by_number)
        if len(created):
            self._admit(created)
        if owners is not None:
            placed = rows >= 0
            self.streams.state.owner[rows[placed]] = owners[placed]
        return self.process_arrays(rows, ts, values)

    def process_arrays(self, rows: np.ndarray, ts: np.ndarray, values: np.ndarray) -> BatchOutcome:
        """As :meth:`process`, with stream rows already assigned (``-1`` = no room)."""
        over_capacity = np.flatnonzero(rows < 0)
        known = rows >= 0
        disabled_mask = known & self.streams.state.disabled[np.maximum(rows, 0)]
        candidates = np.flatnonzero(known & ~disabled_mask)
        plan = plan_rounds(
            rows[candidates], ts[candidates], self.streams.state.last_ts[rows[candidates]]
        )
        parts = [
            self._step(candidates[r], rows[candidates[r]], ts[candidates[r]], values[candidates[r]])
            for r in plan.rounds
        ]
        return BatchOutcome(
            scored=_concat(parts),
            late=candidates[plan.late],
            duplicate=candidates[plan.duplicate],
            over_capacity=over_capacity,
            disabled=np.flatnonzero(disabled_mask),
        )

    def _admit(self, rows: np.ndarray) -> None:
        """Prepare state rows for streams seen for the first time.

        A row no stream had before holds its initial values already (as the arrays
        were allocated); only rows used before are reset here (they were when freed,
        see :meth:`release`, but a reset costs little next to a stale row). Resetting
        a new row would write every byte of it: ~10 KB a stream, and the pages would
        be resident before the stream needs them.
        """
        capacity = self.streams.state.capacity
        used = rows[rows < self._rows_used]
        for component in self._components():
            component.ensure(capacity)
            if len(used):
                component.reset(used)
        if len(rows):
            self._rows_used = max(self._rows_used, int(rows.max()) + 1)
        self.forecaster.set_seasonality(rows, self.streams.state.seasonality[rows])

    def release(self, rows: np.ndarray) -> None:
        """Forget the state of evicted streams' rows (see :meth:`StreamTable.evict_idle`).

        Every component's rows return to their initial values, so ``state.count`` is 0
        and the per-stream collector no longer shows them; a new stream given one of
        these rows starts fresh.
        """
        if not len(rows):
            return
        for component in self._components():
            component.reset(rows)
        self.state.count[rows] = 0

    def components(self) -> dict[str, ArrayState]:
        """Every per-stream model state by a stable name: what a checkpoint holds.

        Learned state lives only here (and in :attr:`streams`); the shared trees'
        structure is rebuilt from the configured seed.
        """
        return {
            "detector": self.state,
            "forecaster": self.forecaster.state,
            "values": self.values.state,
            "residuals": self.residuals.state,
            "differences": self.differences.state,
            "long_run": self.long_run.state,
            "window": self.window.state,
            "profile": self.profile.state,
            "trees": self.trees.state,
            "gate": self.gate.state,
            "gate_short": self.gate.short.state,
            "novelty": self.novelty.state,
            "novelty_gate": self.novelty_gate.state,
            "novelty_gate_short": self.novelty_gate.short.state,
            "suppression": self.suppression.state,
            "rare_rate": self.rare_rate.state,
            "rare_rate_long": self.rare_rate.long_run.state,
            **({"recurrence": self.recurrence.state} if self.recurrence else {}),
        }

    def _components(self) -> list[ArrayState]:
        return list(self.components().values())

    def _step(self, index: np.ndarray, rows: np.ndarray, ts: np.ndarray, x: np.ndarray) -> Scored:
        """Score then learn one point for each of ``rows`` (distinct)."""
        s = self.state
        count = s.count[rows]
        seen = count > 0
        last = np.where(seen, s.last_value[rows], x)
        value_mean = np.where(seen, self.values.mean(rows), x)
        value_scale = _scale(self.values.var(rows), value_mean)

        self._advance_over_gaps(rows, ts)
        forecast = self.forecaster.forecast(rows)
        expected = np.where(np.isnan(forecast), value_mean, forecast)
        residual = x - expected
        residual_scale = np.where(
            self.residuals.seen(rows), _scale(self.residuals.var(rows), value_mean), value_scale
        )
        z_forecast = residual / residual_scale

        window_mean = np.where(self.window.count(rows) > 0, self.window.mean(rows), x)
        z_window = (x - window_mean) / _scale(self.window.var(rows), window_mean)

        difference = x - last
        z_difference = difference / _scale(self.differences.var(rows), value_mean)
        z_value = (x - value_mean) / value_scale

        features = np.column_stack([_squash(z_value), _squash(z_forecast), _squash(z_difference)])
        hst_score = self.trees.score_learn(rows, features)
        long_mean = np.where(self.long_run.seen(rows), self.long_run.mean(rows), x)
        z_level = (x - long_mean) / _scale(self.long_run.var(rows), long_mean)
        # Time-of-day bins of the points, for the profile and the recurrence (same bins).
        tod = time_of_day_bin(self.profile.bins, ts)
        bin_mean, bin_scale = self.profile.pooled(
            rows, ts, self.long_run.var(rows), s.interval[rows], tod
        )
        # The deviation from the long-run mean, against its usual value at this hour.
        bin_residual = (x - long_mean) - bin_mean
        z_season = bin_residual / bin_scale
        warm = count >= self.streams.state.warmup[rows]
        season = _score_of(z_season, self.interval_z)
        if self.run_scale > 0:
            season = np.maximum(season, self._season_run(rows, z_season, warm))
        contributions = np.column_stack(
            [
                _score_of(z_forecast, self.interval_z),
                _score_of(z_window, self.interval_z),
                hst_score,
                _score_of(z_level, self.interval_z),
                season,
            ]
        )
        raw = contributions @ self.weights

        sensitivity = self.streams.state.sensitivity[rows]
        alert_level = sensitivity_threshold(sensitivity)  # for both gates
        score, threshold = self.gate.update(rows, raw, sensitivity, warm, alert_level)
        surprisal = self.novelty.score_learn(rows, x)
        novel, novel_threshold = self.novelty_gate.update(
            rows,
            -np.expm1(-np.maximum(surprisal - self.uniform_surprisal, 0.0)),
            sensitivity,
            warm,
            alert_level,
        )
        # Like the tail model, the profile does not learn what scores at or above
        # max(threshold, learn_below): a clear anomaly does not become usual.
        cut = np.maximum(threshold, self.learn_below)
        usual = ~warm | (score < cut)
        point = np.maximum(score, novel)
        rare_score = np.zeros(len(rows))
        if self.rare_surprisal is not None:
            rare = surprisal > self.rare_surprisal
            rare_score = self.rare_rate.update(rows, rare, warm, cut)
            point = np.maximum(point, rare_score)
        if self.recurrence is not None:
            # A residual the stream shows at this time on most days is at most as
            # improbable as those days make it.
            point = self.recurrence.limit(rows, ts, bin_residual, s.interval[rows], point, tod)
            self.recurrence.learn(rows, ts, bin_residual, tod)
        score = np.minimum(self.suppression.update(rows, point, warm), 1.0)
        threshold = np.maximum(threshold, novel_threshold)
        anomalous = warm & (score >= threshold)

        half_width = self.interval_z * residual_scale
        lower, upper = expected - half_width, expected + half_width
        has_forecast = ~np.isnan(forecast)
        mature = count >= self.streams.state.seasonality[rows] + 2 + self.spread_span
        self._learn(rows, x, expected, residual, half_width, has_forecast, mature)
        if seen.any():
            self.differences.update(rows[seen], difference[seen])
        if usual.any():
            kept = rows[usual]
            self.profile.learn(
                kept,
                ts[usual],
                (x - long_mean)[usual],
                self.long_run.var(kept),
                s.interval[kept],
                tod[usual],
            )
        self.long_run.update(rows, x)

        s.count[rows] = count + 1
        s.last_value[rows] = x
        s.expected[rows] = expected
        s.lower[rows] = lower
        s.upper[rows] = upper
        s.score[rows] = score
        s.threshold[rows] = threshold
        s.anomalous[rows] = anomalous
        critical = anomalous & (score >= self.critical)
        s.critical[rows] = critical
        s.events[rows] += anomalous
        self.streams.state.last_ts[rows] = ts
        return Scored(
            index,
            rows,
            ts,
            x,
            expected,
            lower,
            upper,
            score,
            threshold,
            anomalous,
            critical,
            np.column_stack([contributions, np.minimum(novel, 1.0), np.minimum(rare_score, 1.0)]),
        )

    def _season_run(self, rows: np.ndarray, z: np.ndarray, warm: np.ndarray) -> np.ndarray:
        """Score in [0, 1) of the run of deviations from the daily profile a point continues.

        Two one-sided CUSUMs of the season z-score (clipped to ``RUN_Z_CLIP``): each
        point adds its z-score beyond ``run_allowance`` to the run above (below) the
        profile, which never falls under 0, so a stream that sits 2.5 standard deviations
        off its usual value for this hour, no single point of it remarkable, builds up a
        large run. Only a point that itself lies beyond the allowance on the run's side
        scores the run (``run_scale`` scores 0.5): once the stream is back, what is left of
        the run lends nothing to the next ordinary point. Counted from the end of the
        stream's warm-up, when its profile has learned something.
        """
        s = self.state
        k = self.run_allowance
        z = np.clip(finite(z), -RUN_Z_CLIP, RUN_Z_CLIP)
        up = np.where(warm, np.maximum(s.run_up[rows] + z - k, 0.0), 0.0)
        down = np.where(warm, np.maximum(s.run_down[rows] - z - k, 0.0), 0.0)
        s.run_up[rows] = up
        s.run_down[rows] = down
        run = np.where(np.abs(z) >= k, np.where(z > 0, up, down), 0.0)
        return _score_of(run, self.run_scale)

    def _advance_over_gaps(self, rows: np.ndarray, ts: np.ndarray) -> None:
        """Time gaps: move the forecaster over points a stream missed, by timestamp.

        Each stream's typical interval is an average of its regular steps (those at
        most ``GAP_FACTOR`` times the current estimate). A step of ``k`` intervals
        (rounded) means ``k - 1`` missed points: the forecaster's season phase moves on
        by them and its level follows its trend (:meth:`HoltWinters.skip`), so a
        seasonal stream keeps its phase across a gap. At most ``MAX_SKIPPED`` points
        are skipped; nothing else is learned from a gap.
        """
        s = self.state
        step = ts - self.streams.state.last_ts[rows]
        interval = s.interval[rows]
        known = np.isfinite(interval)
        with np.errstate(invalid="ignore", divide="ignore"):
            steps = np.where(known & np.isfinite(step), np.rint(step / interval), 1.0)
        missed = np.clip(steps - 1, 0, MAX_SKIPPED).astype(np.int64)
        if missed.any():
            self.forecaster.skip(rows, missed)
        regular = np.isfinite(step) & (~known | (step <= GAP_FACTOR * interval))
        s.interval[rows] = np.where(
            regular,
            np.where(known, interval + INTERVAL_FADING * (step - interval), step),
            interval,
        )

    def _learn(
        self,
        rows: np.ndarray,
        x: np.ndarray,
        expected: np.ndarray,
        residual: np.ndarray,
        half_width: np.ndarray,
        has_forecast: np.ndarray,
        mature: np.ndarray,
    ) -> None:
        """Learn each point; robustly, so that an open anomaly does not become normal.

        Once a stream's residual spread is established (``mature``), a value outside
        the prediction interval is learned clipped to the interval's edge, and the
        second and later points of an excursion do not widen the residual spread.
        After ``rebaseline_after`` consecutive points outside, the level moves by the
        excursion's mean residual: the stream has a new normal.
        """
        s = self.state
        in_excursion = np.zeros(len(rows), dtype=bool)
        learned = x
        if self.rebaseline_after > 0:
            outside = mature & has_forecast & (np.abs(residual) > half_width)
            excursion = np.where(outside, s.excursion[rows] + 1, 0)
            excursion_sum = np.where(outside, s.excursion_sum[rows] + residual, 0.0)
            in_excursion = excursion >= 2
            clipped = expected + np.clip(residual, -half_width, half_width)
            learned = np.where(outside, clipped, x)
            shifted = excursion >= self.rebaseline_after
            if shifted.any():
                moved = rows[shifted]
                delta = excursion_sum[shifted] / excursion[shifted]
                self.forecaster.shift_level(moved, delta)
                self.values.state.mean_[moved] += delta
                self.long_run.state.mean_[moved] += delta
                self.window.state.reset(moved)
                excursion[shifted] = 0
                excursion_sum[shifted] = 0.0
            s.excursion[rows] = excursion
            s.excursion_sum[rows] = excursion_sum
        self.forecaster.update(rows, learned)
        spread = has_forecast & ~in_excursion
        if spread.any():
            bounded = np.clip(residual, -half_width, half_width)
            self.residuals.update(rows[spread], bounded[spread])
        self.values.update(rows, learned)
        self.window.update(rows, learned)

    # Checkpoints --------------------------------------------------------------------------------

    def export_streams(
        self, rows: np.ndarray, into: Mapping[str, np.ndarray] | None = None
    ) -> StreamSnapshot:
        """Copies of everything learned about the streams in ``rows`` (live rows).

        The inverse is :meth:`import_streams`; the arrays are plain numpy (no objects),
        so they can be saved with ``np.savez`` and loaded without pickle. With ``into``
        (from :meth:`export_buffers`, at least ``len(rows)`` rows) the arrays are views of
        its first rows, valid until ``into`` is used again.
        """
        rows = np.asarray(rows, dtype=np.int64)
        table = self.streams
        arrays = {
            f"{component}.{name}": values
            for component, state in self.components().items()
            for name, values in state.snapshot(
                rows, None if into is None else _section(into, component)
            ).items()
        }
        arrays["streams.last_ts"] = (
            table.state.last_ts[rows]  # a copy (index array)
            if into is None
            else np.take(
                table.state.last_ts, rows, out=into["streams.last_ts"][: len(rows)], mode="clip"
            )
        )
        return StreamSnapshot(
            keys=[table.keys[r] for r in rows.tolist()],
            names=[table.names[r] for r in rows.tolist()],
            labels=[table.labels[r] for r in rows.tolist()],
            arrays=arrays,
        )

    def export_buffers(self, rows: int) -> dict[str, np.ndarray]:
        """Arrays for :meth:`export_streams` of up to ``rows`` streams, to be reused."""
        buffers = {
            f"{component}.{name}": values
            for component, state in self.components().items()
            for name, values in state.buffers(rows).items()
        }
        buffers["streams.last_ts"] = np.empty(rows, dtype=np.float64)
        return buffers

    def import_streams(self, snapshot: StreamSnapshot, owner: int = -1) -> np.ndarray:
        """Install streams exported by :meth:`export_streams`; return their rows.

        Settings (seasonality, sensitivity, warm-up) come from the current
        configuration; learned state and the last timestamp come from the snapshot.
        A stream already live is overwritten. Streams beyond ``streams.max_streams``
        get no row (``-1`` in the result). Raises ``ValueError``, changing nothing,
        when the arrays do not match this detector's models (names, shapes, dtypes).
        """
        expected = {
            f"{component}.{name}": (state.specs[name], state.capacity)
            for component, state in self.components().items()
            for name in state
        }
        expected_names = set(expected) | {"streams.last_ts"}
        if set(snapshot.arrays) != expected_names:
            missing = sorted(expected_names - set(snapshot.arrays))
            extra = sorted(set(snapshot.arrays) - expected_names)
            raise ValueError(f"state arrays differ: missing {missing}, unexpected {extra}")
        count = len(snapshot.keys)
        for name, values in snapshot.arrays.items():
            spec = expected[name][0] if name in expected else ArraySpec((), np.float64)
            want = (count, *spec.shape)
            if values.shape != want or values.dtype != np.dtype(spec.dtype):
                raise ValueError(
                    f"state array {name!r}: expected shape {want} dtype {np.dtype(spec.dtype)}, "
                    f"got shape {values.shape} dtype {values.dtype}"
                )
        table = self.streams
        rows = np.array(
            [
                table.insert(key, name, labels)
                for key, name, labels in zip(
                    snapshot.keys, snapshot.names, snapshot.labels, strict=True
                )
            ],
            dtype=np.int64,
        )
        placed = rows >= 0
        target = rows[placed]
        if len(target):
            self._admit(target)
            for component, state in self.components().items():
                state.restore(
                    target,
                    {name: snapshot.arrays[f"{component}.{name}"][placed] for name in state},
                )
            table.state.last_ts[target] = snapshot.arrays["streams.last_ts"][placed]
            table.state.last_seen[target] = table.clock()
            table.state.owner[target] = owner
        return rows

    def drop_streams(self, rows: np.ndarray) -> None:
        """Forget the streams in ``rows`` (e.g. of a partition moved to another daemon)."""
        self.release(self.streams.remove(rows))

    def nbytes(self) -> int:
        """Bytes of per-stream state held in arrays (all rows, allocated capacity)."""
        return sum(state.nbytes() for state in self._components()) + self.streams.state.nbytes()


class _Identities:
    """(name, labels) of each point, built only for the points asked for (new streams)."""

    def __init__(self, points: list[Point]) -> None:
        self.points = points

    def __getitem__(self, i: int, /) -> tuple[str, Labels]:
        point = self.points[i]
        return point.name, point.labels


def _concat(parts: list[Scored]) -> Scored:
    if not parts:
        empty_f = np.zeros(0)
        empty_i = np.zeros(0, dtype=np.int64)
        empty_b = np.zeros(0, dtype=bool)
        return Scored(
            empty_i,
            empty_i,
            empty_f,
            empty_f,
            empty_f,
            empty_f,
            empty_f,
            empty_f,
            empty_f,
            empty_b,
            empty_b,
            np.zeros((0, len(DETECTORS))),
        )
    if len(parts) == 1:
        return parts[0]
    fields = Scored.__dataclass_fields__
    return Scored(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in fields})
