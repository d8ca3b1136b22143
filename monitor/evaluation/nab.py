"""NAB scoring rules (Numenta Anomaly Benchmark v1.1), as pure vectorised functions.

The rules follow Lavin & Ahmad (2015), "Evaluating Real-time Anomaly Detection
Algorithms - the Numenta Anomaly Benchmark", and Ahmad et al. (2017). They were
checked line by line against NAB's own code (github.com/numenta/NAB): ``nab/sweeper.py``
(``scaledSigmoid``, ``Sweeper._getProbationaryLength``, ``Sweeper.calcSweepScore``,
``Sweeper.calcScoreByThreshold``, ``Sweeper.scoreDataSet``), ``nab/util.py``
(``getProbationPeriod``, ``convertAnomalyScoresToDetections``), ``nab/optimizer.py``
(``optimizeThreshold``) and ``nab/runner.py`` (``Runner.normalize``). This code is an
independent re-implementation, not a copy.

Definitions (file of ``n`` rows, row index ``i`` from 0, profile weights
``A_tp, A_fp, A_fn``):

* **Probation.** ``P = min(floor(0.15 * n), 0.15 * 5000)`` (``getProbationPeriod``);
  rows ``i < P`` are dropped from scoring entirely: their detections count for
  nothing, and their rows are in none of the tp/fp/fn/tn counts. A window is scored
  only if at least one of its rows is past probation (true of every NAB window).
* **Windows.** A row is in a window if ``start <= timestamp <= end`` (inclusive). The
  rows of a window must be consecutive; window ``k`` covers rows ``l_k..r_k`` and has
  width ``w_k = r_k - l_k + 1``. Windows must not overlap.
* **Scaled sigmoid.** ``S(x) = -1`` if ``x > 3`` else ``2 / (1 + exp(5 x)) - 1``
  (``= 2 * sigmoid(-5 x) - 1 = tanh(-2.5 x)``). ``S(-1) = 0.98661``, ``S(0) = 0``,
  ``S(1) = -0.98661``.
* **Per-row weight** (``calcSweepScore``). In window ``k``:
  ``x = -(r_k - i + 1) / w_k`` (so ``x = -1`` on the window's first row and ``-1/w_k``
  on its last, never 0) and the weight is ``S(x) * A_tp / S(-1)``: a detection on
  the first row of a window is worth exactly ``A_tp``. Outside every window, after the
  last window ``k`` that ended before ``i``: ``x = (i - r_k) / (w_k - 1)`` and the
  weight is ``S(x) * A_fp`` (negative); with no earlier window the weight is
  ``-A_fp``.
* **File score** (``calcScoreByThreshold``). Each scored window contributes
  ``max(-A_fn, max of the weights of its detected rows)``, i.e. ``-A_fn`` if missed and
  otherwise the weight of its earliest detection (weights fall along the window, so
  only the first detection counts). Each detected row outside windows adds its
  (negative) weight. True negatives add 0 (``tnWeight`` is never used).
* **Detections.** ``score >= threshold`` (``convertAnomalyScoresToDetections``).
* **Corpus.** Raw score = sum of file scores. ``null = -A_fn * (windows scored)`` is
  the raw score of a detector that never fires; ``perfect = A_tp * (windows)``
  (``Runner.normalize``: number of labelled windows times ``tpWeight``, which is also
  the raw score of a detector firing exactly on each window's first row, because of
  the ``/ S(-1)`` above). Normalised score ``= 100 * (raw - null) / (perfect - null)``.
* **Threshold.** NAB v1.1's ``optimizeThreshold`` runs ``calcScoreByThreshold`` on the
  rows of the whole corpus: every distinct anomaly score is a candidate threshold and
  the best raw score wins, ties going to the highest threshold. (Older NAB releases
  used a local hill-climb, ``twiddle``.) :func:`sweep_thresholds` does the same exact
  sweep with one sort of the corpus.

Where this module differs from NAB's code (none of it matters on the NAB corpus):

* the false-positive position after a one-row window divides by zero in NAB
  (``w_k - 1 = 0``); here it counts as infinitely far, weight ``-A_fp``;
* NAB enters a window only on a row whose timestamp equals the window start, and
  leaves it at the first row equal to the end; here membership is
  ``start <= t <= end`` (identical when the window limits are timestamps of the file,
  as in NAB's labels, and unique inside the window);
* NaN scores never detect (so they are no candidate thresholds), and the
  "never fire" candidate threshold is ``+inf`` (NAB uses 1.1, with scores in [0, 1]);
* sums are taken in a different order, so totals can differ from NAB's in the last
  bits; near-ties (within ``1e-9``) of the sweep go to the highest threshold. The
  per-row weights themselves are bit-for-bit NAB's (same formula, ``math.exp``).

Extra metrics, not part of NAB: window-level precision/recall/F1 with detection
delays (:func:`window_metrics`) and false alerts per day (:func:`false_alerts_per_day`).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "NAB_PROFILES",
    "PROBATION_PERCENT",
    "CorpusScore",
    "FileScore",
    "NabProfile",
    "WindowMetrics",
    "combine_window_metrics",
    "corpus_score",
    "corpus_window_metrics",
    "false_alerts_per_day",
    "load_profiles",
    "load_windows",
    "normalised",
    "null_score",
    "optimise_threshold",
    "perfect_score",
    "pooled_false_alerts_per_day",
    "probation_length",
    "scaled_sigmoid",
    "score_file",
    "sweep_thresholds",
    "window_metrics",
]

PROBATION_PERCENT = 0.15
"""NAB's ``probationPercent``: share of each file (capped at 750 rows) left unscored."""

Window = tuple[pd.Timestamp, pd.Timestamp]
"""An anomaly window ``(start, end)``, both ends inclusive."""

NabFile = tuple[Any, ...]
"""A file of the corpus: ``(timestamps, scores, windows)``; where scores are not
needed, ``(timestamps, windows)`` is accepted too (windows always last)."""

_TIE_TOLERANCE = 1e-9
_REAL = (int, float, np.integer, np.floating)  # a threshold, as opposed to detections


@dataclass(frozen=True)
class NabProfile:
    """A NAB application profile: the weights of its cost matrix.

    Parameters
    ----------
    name
        Profile name, e.g. ``"standard"``.
    tp_weight, fp_weight, fn_weight
        NAB's ``tpWeight``, ``fpWeight``, ``fnWeight``; must be >= 0.
    tn_weight
        NAB's ``tnWeight``; kept for completeness, NAB never uses it.

    Examples
    --------
    >>> NAB_PROFILES["reward_low_FP_rate"].fp_weight
    0.22
    """

    name: str
    tp_weight: float
    fp_weight: float
    fn_weight: float
    tn_weight: float = 1.0

    def __post_init__(self) -> None:
        for label in ("tp_weight", "fp_weight", "fn_weight", "tn_weight"):
            value = getattr(self, label)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{label} must be finite and >= 0, got {value!r}")


NAB_PROFILES: dict[str, NabProfile] = {
    "standard": NabProfile("standard", 1.0, 0.11, 1.0, 1.0),
    "reward_low_FP_rate": NabProfile("reward_low_FP_rate", 1.0, 0.22, 1.0, 1.0),
    "reward_low_FN_rate": NabProfile("reward_low_FN_rate", 1.0, 0.11, 2.0, 1.0),
}
"""The three profiles of NAB v1.1's ``config/profiles.json``."""


@dataclass(frozen=True)
class FileScore:
    """NAB score of one file for one profile and one set of detections.

    ``tp``, ``fp``, ``fn``, ``tn`` are row counts over the scored (post-probation) rows,
    as NAB reports them (``ThresholdScore``): ``tp`` detected rows inside windows, ``fn``
    undetected rows inside windows, ``fp`` detected rows outside, ``tn`` the rest.
    ``raw = tp_score + fn_score + fp_score``.
    """

    raw: float
    tp: int
    fp: int
    fn: int
    tn: int
    windows: int
    """Windows scored (those with at least one row after probation)."""
    detected_windows: int
    tp_score: float
    """Sum over detected windows of the weight of their first detection."""
    fn_score: float
    """``-fn_weight`` per missed window."""
    fp_score: float
    """Sum of the (negative) weights of the detections outside windows."""
    probation: int
    """Rows in the probationary period."""

    @property
    def missed_windows(self) -> int:
        """Scored windows without any detection."""
        return self.windows - self.detected_windows


@dataclass(frozen=True)
class CorpusScore:
    """NAB score of a corpus: raw, its null and perfect baselines, and normalised."""

    raw: float
    null: float
    perfect: float
    normalised: float
    """``100 * (raw - null) / (perfect - null)``; NaN if the corpus has no window."""
    threshold: float | None
    """Threshold used, or None when per-row decisions were given."""
    files: tuple[FileScore, ...]


# --------------------------------------------------------------------------- basics


def probation_length(n_rows: int, probation_percent: float = PROBATION_PERCENT) -> int:
    """Number of leading rows in NAB's probationary period.

    NAB's ``getProbationPeriod`` returns ``min(floor(p * n), p * 5000)`` (possibly a
    float) and scores the rows with ``i >= `` that value; this returns the same count
    as an int (the ceiling). Computed in floating point exactly as NAB does.

    Examples
    --------
    >>> probation_length(20), probation_length(4032), probation_length(22695)
    (3, 604, 750)
    """
    if n_rows < 0:
        raise ValueError(f"n_rows must be >= 0, got {n_rows}")
    limit = min(math.floor(probation_percent * n_rows), probation_percent * 5000)
    return max(0, math.ceil(limit))


def scaled_sigmoid(x: float) -> float:
    """NAB's ``scaledSigmoid``: ``-1`` if ``x > 3``, else ``2 * sigmoid(-5 x) - 1``.

    ``x`` is a relative position: -1 at a window's first row, 0 at its right edge,
    positive past it.

    Examples
    --------
    >>> round(scaled_sigmoid(-1.0), 5), round(scaled_sigmoid(-0.5), 5), scaled_sigmoid(0.0)
    (0.98661, 0.84828, 0.0)
    >>> round(scaled_sigmoid(1.0), 5), scaled_sigmoid(3.5)
    (-0.98661, -1.0)
    """
    x = float(x)
    if x > 3.0:
        return -1.0
    # Bit-identical to NAB: 2 * (1 / (1 + exp(-(-5 x)))) - 1.
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


_MAX_TP = scaled_sigmoid(-1.0)


def normalised(raw: float, null: float, perfect: float) -> float:
    """NAB's normalised score ``100 * (raw - null) / (perfect - null)``.

    Examples
    --------
    >>> normalised(-55.0, null=-55.0, perfect=55.0), normalised(55.0, -55.0, 55.0)
    (0.0, 100.0)
    """
    if perfect == null:
        raise ValueError("perfect and null scores are equal: nothing to normalise against")
    return 100.0 * (raw - null) / (perfect - null)


# ------------------------------------------------------------------------ loading


def load_profiles(path: str | Path) -> dict[str, NabProfile]:
    """Read NAB's ``config/profiles.json`` (``{name: {"CostMatrix": {...}}}``)."""
    with open(path, encoding="utf-8") as handle:
        raw = json.load(handle)
    profiles = {}
    for name, entry in raw.items():
        costs = entry["CostMatrix"]
        profiles[name] = NabProfile(
            name=name,
            tp_weight=float(costs["tpWeight"]),
            fp_weight=float(costs["fpWeight"]),
            fn_weight=float(costs["fnWeight"]),
            tn_weight=float(costs.get("tnWeight", 1.0)),
        )
    return profiles


def load_windows(path: str | Path) -> dict[str, list[Window]]:
    """Read NAB's ``labels/combined_windows.json``.

    Returns ``{"<category>/<file>.csv": [(start, end), ...]}`` with ``pd.Timestamp`` limits.
    """
    with open(path, encoding="utf-8") as handle:
        raw = json.load(handle)
    return {
        name: [(pd.Timestamp(start), pd.Timestamp(end)) for start, end in limits]
        for name, limits in raw.items()
    }


# ----------------------------------------------------------------------- geometry


@functools.lru_cache(maxsize=512)
def _inside_table(width: int) -> np.ndarray:
    """``S(x)`` for the rows ``j = 0..width-1`` of a window: ``x = -(width - j) / width``."""
    table = np.array([scaled_sigmoid(-(width - j) / float(width)) for j in range(width)])
    table.flags.writeable = False  # shared by the cache
    return table


@functools.lru_cache(maxsize=512)
def _past_table(width: int) -> np.ndarray:
    """``S(d / (width - 1))`` for ``d = 0..3(width-1)``, then one final ``-1.0``.

    Beyond ``d = 3 (width - 1)`` the position exceeds 3 and ``S`` is -1, so a
    distance ``d`` is looked up at ``min(d, len - 1)``.
    """
    if width <= 1:
        values = [-1.0]
    else:
        values = [scaled_sigmoid(d / float(width - 1)) for d in range(3 * (width - 1) + 1)]
        values.append(-1.0)
    table = np.array(values)
    table.flags.writeable = False  # shared by the cache
    return table


@dataclass(frozen=True)
class _Geometry:
    """What a file's timestamps and windows imply, independent of detections/profile."""

    n: int
    probation: int
    starts: np.ndarray  # first row of each window with rows, in row order
    ends: np.ndarray  # last row of each such window
    window_id: np.ndarray  # per row: index into starts/ends, or -1 outside windows
    unit: np.ndarray  # per row: S(position) in or past a window, -1.0 before any window
    ts_ns: np.ndarray  # timestamps as int64 nanoseconds (UTC if tz-aware)

    @property
    def scored_windows(self) -> int:
        return int(np.count_nonzero(self.ends >= self.probation))

    def weights(self, profile: NabProfile) -> np.ndarray:
        """NAB's per-row ``sweepScore`` (``calcSweepScore``) for ``profile``."""
        inside = self.window_id >= 0
        # Same operation order as NAB: unweighted * tpWeight / maxTP.
        return np.where(
            inside, self.unit * profile.tp_weight / _MAX_TP, self.unit * profile.fp_weight
        )


def _to_ns(timestamps: Any) -> tuple[np.ndarray, bool]:
    index = pd.DatetimeIndex(timestamps)
    return index.as_unit("ns").asi8, index.tz is not None


def _limit_ns(value: Any, aware: bool) -> int:
    stamp = pd.Timestamp(value)
    if (stamp.tz is not None) != aware:
        raise TypeError("window limits and timestamps must both be tz-aware or both naive")
    return int(stamp.as_unit("ns").value)


def _geometry(
    timestamps: Any, windows: Iterable[Any], probation_percent: float = PROBATION_PERCENT
) -> _Geometry:
    ts, aware = _to_ns(timestamps)
    n = len(ts)
    spans: list[tuple[int, int]] = []
    for start, end in windows:
        lo, hi = _limit_ns(start, aware), _limit_ns(end, aware)
        if hi < lo:
            raise ValueError(f"window ends before it starts: {(start, end)}")
        rows = np.flatnonzero((ts >= lo) & (ts <= hi))
        if rows.size == 0:
            continue
        first, last = int(rows[0]), int(rows[-1])
        if last - first + 1 != rows.size:
            raise ValueError(f"rows of window {(start, end)} are not consecutive")
        spans.append((first, last))
    spans.sort()
    for (_, prev_end), (next_start, _) in zip(spans, spans[1:], strict=False):
        if next_start <= prev_end:
            raise ValueError("anomaly windows overlap")

    window_id = np.full(n, -1, dtype=np.int64)
    unit = np.full(n, -1.0)
    for k, (first, last) in enumerate(spans):
        width = last - first + 1
        window_id[first : last + 1] = k
        unit[first : last + 1] = _inside_table(width)
        stop = spans[k + 1][0] if k + 1 < len(spans) else n
        if stop > last + 1:
            table = _past_table(width)
            distance = np.arange(1, stop - last, dtype=np.int64)
            unit[last + 1 : stop] = table[np.minimum(distance, len(table) - 1)]
    starts = np.array([s for s, _ in spans], dtype=np.int64)
    ends = np.array([e for _, e in spans], dtype=np.int64)
    return _Geometry(
        n=n,
        probation=probation_length(n, probation_percent),
        starts=starts,
        ends=ends,
        window_id=window_id,
        unit=unit,
        ts_ns=ts,
    )


def _detections(detections: Any, n: int) -> np.ndarray:
    det = np.asarray(detections)
    if det.ndim != 1 or len(det) != n:
        raise ValueError(f"expected {n} per-row detections, got shape {det.shape}")
    return det.astype(bool)


def _scores(scores: Any, n: int) -> np.ndarray:
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1 or len(values) != n:
        raise ValueError(f"expected {n} per-row scores, got shape {values.shape}")
    if np.any(values == np.inf):
        raise ValueError("scores must not be +inf (+inf is the 'never fire' threshold)")
    return values


def _scored_detections(geom: _Geometry, detections: Any) -> np.ndarray:
    det = _detections(detections, geom.n).copy()
    det[: geom.probation] = False
    return det


# ------------------------------------------------------------------------ scoring


def _score(geom: _Geometry, det: np.ndarray, profile: NabProfile) -> FileScore:
    """Score post-probation detections ``det`` (already masked) on ``geom``."""
    weights = geom.weights(profile)
    inside = geom.window_id >= 0
    hits = det & inside
    false_pos = det & ~inside

    hit_rows = np.flatnonzero(hits)
    detected, first_index = np.unique(geom.window_id[hit_rows], return_index=True)
    # Weights fall along a window (A_tp >= 0), so NAB's running max over the detected
    # rows of a window is the weight of its first detection.
    tp_score = float(np.maximum(-profile.fn_weight, weights[hit_rows[first_index]]).sum())
    n_windows = geom.scored_windows
    fn_score = -profile.fn_weight * (n_windows - len(detected))
    fp_score = float(weights[false_pos].sum())

    scored_inside = int(np.count_nonzero(inside[geom.probation :]))
    n_scored = geom.n - geom.probation
    tp = int(np.count_nonzero(hits))
    fp = int(np.count_nonzero(false_pos))
    return FileScore(
        raw=tp_score + fn_score + fp_score,
        tp=tp,
        fp=fp,
        fn=scored_inside - tp,
        tn=n_scored - scored_inside - fp,
        windows=n_windows,
        detected_windows=len(detected),
        tp_score=tp_score,
        fn_score=fn_score,
        fp_score=fp_score,
        probation=geom.probation,
    )


def score_file(
    timestamps: Any,
    detections: Any,
    windows: Iterable[Any],
    profile: NabProfile,
    *,
    probation_percent: float = PROBATION_PERCENT,
) -> FileScore:
    """NAB score of one file given per-row binary detections.

    Parameters
    ----------
    timestamps
        Row timestamps (anything ``pd.DatetimeIndex`` accepts).
    detections
        One bool per row (``score >= threshold``); detections in probation are ignored.
    windows
        ``(start, end)`` pairs, inclusive.
    profile
        Cost weights.
    probation_percent
        NAB's ``probationPercent``.

    Returns
    -------
    FileScore

    Examples
    --------
    A 20-row file (probation: rows 0-2) with one window on rows 8-12:

    >>> ts = pd.date_range("2024-01-01", periods=20, freq="5min")
    >>> windows = [(ts[8], ts[12])]
    >>> standard = NAB_PROFILES["standard"]
    >>> def fire(*rows):
    ...     det = np.zeros(20, dtype=bool)
    ...     det[list(rows)] = True
    ...     return score_file(ts, det, windows, standard).raw
    >>> fire(8), fire(), fire(2)  # first row of the window: A_tp; none / in probation: -A_fn
    (1.0, -1.0, -1.0)
    >>> round(fire(10), 6), round(fire(8, 14), 6)  # mid-window; plus an FP 2 rows after it
    (0.917429, 0.906689)
    """
    geom = _geometry(timestamps, windows, probation_percent)
    return _score(geom, _scored_detections(geom, detections), profile)


def _timestamps_and_windows(file: NabFile) -> tuple[Any, Any]:
    if len(file) not in (2, 3):
        raise ValueError("a file is (timestamps, windows) or (timestamps, scores, windows)")
    return file[0], file[-1]


def null_score(
    files: Sequence[NabFile],
    profile: NabProfile,
    *,
    probation_percent: float = PROBATION_PERCENT,
) -> float:
    """Raw score of a detector that never fires: ``-fn_weight`` per scored window.

    Examples
    --------
    >>> ts = pd.date_range("2024-01-01", periods=20, freq="h")
    >>> null_score([(ts, [(ts[5], ts[7]), (ts[10], ts[12])])], NAB_PROFILES["reward_low_FN_rate"])
    -4.0
    """
    count = 0
    for file in files:
        timestamps, windows = _timestamps_and_windows(file)
        count += _geometry(timestamps, windows, probation_percent).scored_windows
    return -profile.fn_weight * count


def perfect_score(files: Sequence[NabFile], profile: NabProfile) -> float:
    """NAB's "perfect" raw score: ``tp_weight`` per labelled window (``Runner.normalize``).

    It is also the raw score of a detector firing exactly on the first row of every
    window (each such detection is worth ``S(-1) * A_tp / S(-1) = A_tp``), provided no
    window lies in the probationary period.

    Examples
    --------
    >>> ts = pd.date_range("2024-01-01", periods=20, freq="h")
    >>> perfect_score([(ts, [(ts[5], ts[7]), (ts[10], ts[12])])], NAB_PROFILES["standard"])
    2.0
    """
    return profile.tp_weight * sum(len(list(_timestamps_and_windows(f)[1])) for f in files)


def corpus_score(
    files: Sequence[NabFile],
    decision: float | Sequence[Any],
    profile: NabProfile,
    *,
    probation_percent: float = PROBATION_PERCENT,
) -> CorpusScore:
    """Raw and normalised NAB score of a corpus.

    Parameters
    ----------
    files
        ``(timestamps, scores, windows)`` per file. With per-row decisions the scores
        are not used and ``(timestamps, windows)`` will do.
    decision
        A threshold (a row is a detection if ``score >= threshold``; NaN never is), or
        one bool array of detections per file.
    profile
        Cost weights.

    Examples
    --------
    >>> ts = pd.date_range("2024-01-01", periods=20, freq="5min")
    >>> scores = np.zeros(20)
    >>> scores[8] = 0.9
    >>> result = corpus_score([(ts, scores, [(ts[8], ts[12])])], 0.5, NAB_PROFILES["standard"])
    >>> result.raw, result.null, result.perfect, result.normalised
    (1.0, -1.0, 1.0, 100.0)
    """
    threshold: float | None
    detections: list[Any] = []
    if isinstance(decision, _REAL):
        threshold = float(decision)
        for file in files:
            if len(file) != 3:
                raise ValueError("scoring at a threshold needs (timestamps, scores, windows)")
            detections.append(np.asarray(file[1], dtype=np.float64) >= threshold)
    else:
        threshold = None
        detections = list(decision)
        if len(detections) != len(files):
            raise ValueError(f"{len(files)} files but {len(detections)} detection arrays")
    per_file = []
    for file, det in zip(files, detections, strict=True):
        timestamps, windows = _timestamps_and_windows(file)
        per_file.append(
            score_file(timestamps, det, windows, profile, probation_percent=probation_percent)
        )
    raw = float(sum(f.raw for f in per_file))
    null = -profile.fn_weight * sum(f.windows for f in per_file)
    perfect = perfect_score(files, profile)
    norm = normalised(raw, null, perfect) if perfect != null else math.nan
    return CorpusScore(
        raw=raw,
        null=null,
        perfect=perfect,
        normalised=norm,
        threshold=threshold,
        files=tuple(per_file),
    )


# ---------------------------------------------------------------------- threshold


def sweep_thresholds(
    files: Sequence[NabFile],
    profile: NabProfile,
    *,
    probation_percent: float = PROBATION_PERCENT,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw corpus score at every candidate threshold, in one pass.

    The candidates are ``+inf`` (never fire) and every distinct non-NaN score of a
    post-probation row, in decreasing order. Going down the sorted scores, each newly
    detected row changes the raw score by its own weight if it is outside windows, and
    by the rise of its window's running best (``max(-A_fn, weights detected so far)``)
    if inside; the raw score at a threshold is the base score ``-A_fn * windows`` plus
    the cumulated changes of the rows scoring at least that threshold. This is NAB's
    ``calcScoreByThreshold`` over the whole corpus, vectorised.

    Parameters
    ----------
    files
        ``(timestamps, scores, windows)`` per file.
    profile
        Cost weights.

    Returns
    -------
    thresholds, raw
        Two float arrays of the same length: thresholds (decreasing, the first is
        ``inf``) and the raw corpus score with detections ``score >= threshold``.

    Examples
    --------
    >>> ts = pd.date_range("2024-01-01", periods=20, freq="5min")
    >>> scores = np.zeros(20)
    >>> scores[[5, 10]] = [0.9, 0.7]  # an FP before the window, then a hit mid-window
    >>> files = [(ts, scores, [(ts[8], ts[12])])]
    >>> thresholds, raw = sweep_thresholds(files, NAB_PROFILES["standard"])
    >>> thresholds.tolist(), [round(float(r), 6) for r in raw]
    ([inf, 0.9, 0.7, 0.0], [-1.0, -1.11, 0.807429, -0.247209])
    """
    base = 0.0
    all_weights: list[np.ndarray] = []
    fp_scores: list[np.ndarray] = []
    fp_weights: list[np.ndarray] = []
    in_scores: list[np.ndarray] = []
    in_rows: list[np.ndarray] = []
    in_windows: list[np.ndarray] = []
    row_offset = 0
    window_offset = 0
    for file in files:
        if len(file) != 3:
            raise ValueError("threshold sweeps need (timestamps, scores, windows) per file")
        timestamps, scores, windows = file
        geom = _geometry(timestamps, windows, probation_percent)
        values = _scores(scores, geom.n)
        weights = geom.weights(profile)
        rows = np.arange(geom.probation, geom.n)
        rows = rows[~np.isnan(values[rows])]
        window_id = geom.window_id[rows]
        inside = window_id >= 0
        fp_scores.append(values[rows[~inside]])
        fp_weights.append(weights[rows[~inside]])
        in_scores.append(values[rows[inside]])
        in_rows.append(rows[inside] + row_offset)
        in_windows.append(window_id[inside] + window_offset)
        all_weights.append(weights)
        base -= profile.fn_weight * geom.scored_windows
        row_offset += geom.n
        window_offset += len(geom.starts)

    weights_all = np.concatenate(all_weights) if all_weights else np.empty(0)
    scores_in = np.concatenate(in_scores) if in_scores else np.empty(0)
    rows_in = np.concatenate(in_rows) if in_rows else np.empty(0, dtype=np.int64)
    windows_in = np.concatenate(in_windows) if in_windows else np.empty(0, dtype=np.int64)

    # Window rows grouped by window (last window first), best score first in a group.
    # Global row positions grow with the window id, so a running minimum over the
    # positions never mixes groups: it is the earliest row detected so far in the group.
    order = np.lexsort((-scores_in, -windows_in))
    grouped = windows_in[order]
    earliest = np.minimum.accumulate(rows_in[order]) if len(order) else rows_in
    best = np.maximum(-profile.fn_weight, weights_all[earliest])
    before = np.empty_like(best)
    if len(best):
        before[0] = -profile.fn_weight
        before[1:] = best[:-1]
        before[1:][grouped[1:] != grouped[:-1]] = -profile.fn_weight
    in_delta = best - before

    event_scores = np.concatenate([scores_in[order], *fp_scores])
    event_deltas = np.concatenate([in_delta, *fp_weights])
    by_score = np.argsort(-event_scores, kind="stable")
    sorted_scores = event_scores[by_score]
    # Extended precision keeps the running sum over ~10^5 rows within ~1e-12 of exact.
    totals = np.cumsum(event_deltas[by_score], dtype=np.longdouble).astype(np.float64)
    if len(sorted_scores):
        last_of_value = np.flatnonzero(np.append(sorted_scores[1:] != sorted_scores[:-1], True))
    else:
        last_of_value = np.empty(0, dtype=np.int64)
    thresholds = np.concatenate([[np.inf], sorted_scores[last_of_value]])
    raw = base + np.concatenate([[0.0], totals[last_of_value]])
    return thresholds, raw


def optimise_threshold(
    files: Sequence[NabFile],
    profile: NabProfile,
    *,
    probation_percent: float = PROBATION_PERCENT,
) -> tuple[float, float]:
    """The single corpus-wide threshold maximising the raw score (exact sweep).

    Ties (within 1e-9) go to the highest threshold, as in NAB's ``optimizeThreshold``.
    A threshold of ``inf`` means the detector does best never firing.

    Parameters
    ----------
    files
        ``(timestamps, scores, windows)`` per file.
    profile
        Cost weights.

    Returns
    -------
    threshold, raw

    Examples
    --------
    >>> ts = pd.date_range("2024-01-01", periods=20, freq="5min")
    >>> scores = np.zeros(20)
    >>> scores[[5, 10]] = [0.9, 0.7]
    >>> files = [(ts, scores, [(ts[8], ts[12])])]
    >>> threshold, raw = optimise_threshold(files, NAB_PROFILES["standard"])
    >>> threshold, round(raw, 6)
    (0.7, 0.807429)
    """
    thresholds, raw = sweep_thresholds(files, profile, probation_percent=probation_percent)
    best = int(np.flatnonzero(raw >= raw.max() - _TIE_TOLERANCE)[0])
    return float(thresholds[best]), float(raw[best])


# ------------------------------------------------------------------ extra metrics


def _run_starts(mask: np.ndarray) -> np.ndarray:
    """Rows starting a maximal run of consecutive True values."""
    starts = mask.copy()
    starts[1:] &= ~mask[:-1]
    return np.flatnonzero(starts)


@dataclass(frozen=True)
class WindowMetrics:
    """Window-level detection metrics (not part of NAB's score).

    A window is detected if any post-probation detection falls in it. A false-positive
    group is a maximal run of consecutive post-probation detections outside windows
    (rows adjacent in the file; a run that continues a detection out past a window's
    end counts). Delays run from a window's first row to its first detection.
    """

    windows: int
    """Windows scored (at least one row after probation)."""
    detected_windows: int
    fp_groups: int
    delays_rows: tuple[int, ...]
    delays_time: tuple[pd.Timedelta, ...]

    @property
    def missed_windows(self) -> int:
        return self.windows - self.detected_windows

    @property
    def precision(self) -> float:
        """``detected / (detected + fp_groups)``; NaN without any detection."""
        denominator = self.detected_windows + self.fp_groups
        return self.detected_windows / denominator if denominator else math.nan

    @property
    def recall(self) -> float:
        """``detected / windows``; NaN without any window."""
        return self.detected_windows / self.windows if self.windows else math.nan

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall (0 if both are 0, NaN if either is)."""
        p, r = self.precision, self.recall
        if math.isnan(p) or math.isnan(r):
            return math.nan
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def mean_delay_rows(self) -> float:
        return float(np.mean(self.delays_rows)) if self.delays_rows else math.nan

    @property
    def median_delay_rows(self) -> float:
        return float(np.median(self.delays_rows)) if self.delays_rows else math.nan

    @property
    def mean_delay_time(self) -> pd.Timedelta | None:
        if not self.delays_time:
            return None
        return pd.Timedelta(round(np.mean([d.value for d in self.delays_time])), unit="ns")

    @property
    def median_delay_time(self) -> pd.Timedelta | None:
        if not self.delays_time:
            return None
        return pd.Timedelta(round(np.median([d.value for d in self.delays_time])), unit="ns")


def window_metrics(
    timestamps: Any,
    detections: Any,
    windows: Iterable[Any],
    *,
    probation_percent: float = PROBATION_PERCENT,
) -> WindowMetrics:
    """Window precision/recall/F1 and detection delays of one file.

    Examples
    --------
    >>> ts = pd.date_range("2024-01-01", periods=20, freq="5min")
    >>> det = np.zeros(20, dtype=bool)
    >>> det[[5, 6, 10, 11, 15]] = True  # FP group 5-6, window hit at 10, FP group 15
    >>> m = window_metrics(ts, det, [(ts[8], ts[12])])
    >>> m.detected_windows, m.fp_groups, m.precision, m.recall, m.delays_rows
    (1, 2, 0.3333333333333333, 1.0, (2,))
    >>> str(m.mean_delay_time)
    '0 days 00:10:00'
    """
    geom = _geometry(timestamps, windows, probation_percent)
    det = _scored_detections(geom, detections)
    inside = geom.window_id >= 0
    hit_rows = np.flatnonzero(det & inside)
    detected, first_index = np.unique(geom.window_id[hit_rows], return_index=True)
    first_rows = hit_rows[first_index]
    window_starts = geom.starts[detected]
    delays_ns = geom.ts_ns[first_rows] - geom.ts_ns[window_starts]
    return WindowMetrics(
        windows=geom.scored_windows,
        detected_windows=len(detected),
        fp_groups=len(_run_starts(det & ~inside)),
        delays_rows=tuple(int(d) for d in first_rows - window_starts),
        delays_time=tuple(pd.Timedelta(int(d), unit="ns") for d in delays_ns),
    )


def combine_window_metrics(metrics: Iterable[WindowMetrics]) -> WindowMetrics:
    """Pool per-file window metrics (sums of counts, all delays together)."""
    items = list(metrics)
    return WindowMetrics(
        windows=sum(m.windows for m in items),
        detected_windows=sum(m.detected_windows for m in items),
        fp_groups=sum(m.fp_groups for m in items),
        delays_rows=tuple(d for m in items for d in m.delays_rows),
        delays_time=tuple(d for m in items for d in m.delays_time),
    )


def corpus_window_metrics(
    files: Sequence[NabFile],
    decision: float | Sequence[Any],
    *,
    probation_percent: float = PROBATION_PERCENT,
) -> WindowMetrics:
    """:func:`window_metrics` pooled over a corpus; ``decision`` as in :func:`corpus_score`."""
    results = []
    for k, file in enumerate(files):
        timestamps, windows = _timestamps_and_windows(file)
        if isinstance(decision, _REAL):
            det = np.asarray(file[1], dtype=np.float64) >= float(decision)
        else:
            det = decision[k]
        results.append(
            window_metrics(timestamps, det, windows, probation_percent=probation_percent)
        )
    return combine_window_metrics(results)


def _alert_groups_and_days(
    timestamps: Any, detections: Any, windows: Iterable[Any], probation_percent: float
) -> tuple[int, float]:
    geom = _geometry(timestamps, windows, probation_percent)
    det = _scored_detections(geom, detections)
    groups = len(_run_starts(det & (geom.window_id < 0)))
    scored = geom.ts_ns[geom.probation :]
    span_ns = int(scored.max() - scored.min()) if len(scored) else 0
    return groups, span_ns / 86_400e9


def false_alerts_per_day(
    timestamps: Any,
    detections: Any,
    windows: Iterable[Any] = (),
    *,
    probation_percent: float = PROBATION_PERCENT,
) -> float:
    """Alert groups per day outside windows (meant for files without any window).

    An alert group is a maximal run of consecutive post-probation detections outside
    windows; the duration is the time spanned by the post-probation rows (last minus
    first timestamp).

    Examples
    --------
    >>> ts = pd.date_range("2024-01-01", periods=41, freq="h")  # probation: rows 0-5
    >>> det = np.zeros(41, dtype=bool)
    >>> det[[2, 10, 11, 12, 20, 30]] = True  # row 2 is in probation: 3 groups
    >>> false_alerts_per_day(ts, det)  # rows 6..40 span 34 h
    2.1176470588235294
    """
    groups, days = _alert_groups_and_days(timestamps, detections, windows, probation_percent)
    if days <= 0:
        raise ValueError("the scored rows span no time: false alerts per day is undefined")
    return groups / days


def pooled_false_alerts_per_day(
    files: Sequence[tuple[Any, ...]], *, probation_percent: float = PROBATION_PERCENT
) -> float:
    """Total alert groups over total scored days of ``(timestamps, detections[, windows])``."""
    total_groups, total_days = 0, 0.0
    for file in files:
        if len(file) not in (2, 3):
            raise ValueError("a file is (timestamps, detections) or (..., windows)")
        windows = file[2] if len(file) == 3 else ()
        groups, days = _alert_groups_and_days(file[0], file[1], windows, probation_percent)
        total_groups += groups
        total_days += days
    if total_days <= 0:
        raise ValueError("the scored rows span no time: false alerts per day is undefined")
    return total_groups / total_days
