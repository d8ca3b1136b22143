"""Tests of the NAB scorer: hand-computed cases, a sequential NAB reference, the real corpus.

Arithmetic notes used throughout: NAB's scaled sigmoid is
``S(x) = 2 * sigmoid(-5x) - 1 = tanh(-2.5 x)`` (and ``-1`` for ``x > 3``), so
``S(-1) = tanh(2.5) = 0.986614``, ``S(-0.6) = tanh(1.5) = 0.905148``,
``S(-0.2) = tanh(0.5) = 0.462117``, ``S(0.25) = -tanh(0.625) = -0.554600``,
``S(0.5) = -tanh(1.25) = -0.848284``, ``S(1) = -0.986614``.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from monitor.evaluation import nab
from monitor.evaluation.nab import (
    NAB_PROFILES,
    NabProfile,
    combine_window_metrics,
    corpus_score,
    corpus_window_metrics,
    false_alerts_per_day,
    load_profiles,
    load_windows,
    normalised,
    null_score,
    optimise_threshold,
    perfect_score,
    pooled_false_alerts_per_day,
    probation_length,
    scaled_sigmoid,
    score_file,
    sweep_thresholds,
    window_metrics,
)

NAB_DIR = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "nab"
STANDARD = NAB_PROFILES["standard"]
LOW_FP = NAB_PROFILES["reward_low_FP_rate"]
LOW_FN = NAB_PROFILES["reward_low_FN_rate"]
S_MINUS_1 = math.tanh(2.5)  # scaledSigmoid(-1.0) = NAB's maxTP

# The 20-row file of the hand-computed cases: 5-minute rows, probation =
# floor(0.15 * 20) = 3 rows (0, 1, 2), one window on rows 8..12 (width 5).
TS20 = pd.date_range("2024-01-01", periods=20, freq="5min")
WINDOW20 = [(TS20[8], TS20[12])]


def detections(n: int, *rows: int) -> np.ndarray:
    det = np.zeros(n, dtype=bool)
    det[list(rows)] = True
    return det


def raw20(*rows: int, profile: NabProfile = STANDARD, windows: Any = WINDOW20) -> float:
    return score_file(TS20, detections(20, *rows), windows, profile).raw


# ------------------------------------------------------------------ basic functions


def test_scaled_sigmoid_reference_values() -> None:
    # NAB's docstring: S(-1) = 0.98661, S(-0.5) = 0.84828, S(0) = 0, S(1) = -0.98661.
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    # Equals tanh(-2.5 x) up to rounding.
    for x in np.linspace(-1, 3, 41):
        assert scaled_sigmoid(x) == pytest.approx(math.tanh(-2.5 * x), abs=1e-15)
    # Capped only strictly above 3 (NAB v1.1 `> 3.0`): S(3) = 2/(1+e^15) - 1 = -0.99999939.
    assert scaled_sigmoid(3.0) == pytest.approx(-0.99999939, abs=1e-8)
    assert scaled_sigmoid(3.0) != -1.0
    assert scaled_sigmoid(3.0000001) == -1.0
    assert scaled_sigmoid(1e6) == -1.0


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, 0),
        (6, 0),  # 0.9 -> 0
        (7, 1),  # 1.05 -> 1
        (20, 3),  # 3.0000000000000004 -> 3
        (4032, 604),  # 604.8 -> 604
        (5000, 750),
        (5001, 750),  # capped at 0.15 * 5000 = 750
        (22695, 750),
    ],
)
def test_probation_length(n: int, expected: int) -> None:
    assert probation_length(n) == expected


def test_probation_length_custom_percent() -> None:
    assert probation_length(100, 0.0) == 0
    assert probation_length(100, 0.1) == 10
    assert probation_length(100_000, 0.1) == 500  # cap 0.1 * 5000


def test_normalised() -> None:
    # null -55, perfect 55: raw 0 is halfway.
    assert normalised(0.0, -55.0, 55.0) == 50.0
    assert normalised(-55.0, -55.0, 55.0) == 0.0
    assert normalised(55.0, -55.0, 55.0) == 100.0
    with pytest.raises(ValueError):
        normalised(1.0, 0.0, 0.0)


def test_profile_validation() -> None:
    with pytest.raises(ValueError):
        NabProfile("bad", -1.0, 0.1, 1.0)
    with pytest.raises(ValueError):
        NabProfile("bad", 1.0, math.nan, 1.0)


# ------------------------------------------------------ the 20-row file, one window


def test_detection_at_window_start_scores_tp_weight() -> None:
    # Row 8: x = -(12 - 8 + 1) / 5 = -1 -> S(-1) * A_tp / S(-1) = A_tp = 1.0 exactly.
    assert raw20(8) == 1.0
    fs = score_file(TS20, detections(20, 8), WINDOW20, STANDARD)
    assert (fs.tp, fs.fp, fs.fn, fs.tn) == (1, 0, 4, 12)  # 17 scored rows, 5 in window
    assert (fs.windows, fs.detected_windows, fs.missed_windows) == (1, 1, 0)
    assert (fs.tp_score, fs.fn_score, fs.fp_score) == (1.0, 0.0, 0.0)
    assert fs.probation == 3


def test_detection_in_middle_of_window() -> None:
    # Row 10: x = -(12 - 10 + 1) / 5 = -0.6 -> tanh(1.5) / tanh(2.5) = 0.905148 / 0.986614
    # = 0.917429.
    assert raw20(10) == pytest.approx(math.tanh(1.5) / S_MINUS_1, rel=1e-14)
    assert raw20(10) == pytest.approx(0.917429, abs=1e-6)


def test_detection_at_window_end() -> None:
    # Row 12 (last row): x = -(12 - 12 + 1) / 5 = -0.2 (never 0) -> tanh(0.5) / tanh(2.5)
    # = 0.462117 / 0.986614 = 0.468387.
    assert raw20(12) == pytest.approx(math.tanh(0.5) / S_MINUS_1, rel=1e-14)
    assert raw20(12) == pytest.approx(0.468387, abs=1e-6)


def test_detection_just_after_window_is_fp_and_window_missed() -> None:
    # Row 13: FP, x = (13 - 12) / (5 - 1) = 0.25 -> 0.11 * S(0.25) = 0.11 * -0.554600
    # = -0.061006; the window is missed: -1.  Total -1.061006.
    assert raw20(13) == pytest.approx(-1.0 - 0.11 * math.tanh(0.625), rel=1e-14)
    assert raw20(13) == pytest.approx(-1.061006, abs=1e-6)
    fs = score_file(TS20, detections(20, 13), WINDOW20, STANDARD)
    assert (fs.tp, fs.fp, fs.fn, fs.tn) == (0, 1, 5, 11)
    assert fs.fn_score == -1.0


@pytest.mark.parametrize(
    ("row", "x"),
    [
        (13, 0.25),  # (13 - 12) / 4
        (14, 0.5),  # (14 - 12) / 4
        (16, 1.0),  # (16 - 12) / 4
        (19, 1.75),  # (19 - 12) / 4
    ],
)
def test_fp_after_window_at_several_distances(row: int, x: float) -> None:
    # FP weight = A_fp * S(x) with x = (row - 12) / (width - 1); plus -A_fn for the miss.
    for profile in (STANDARD, LOW_FP, LOW_FN):
        expected = -profile.fn_weight + profile.fp_weight * math.tanh(-2.5 * x)
        assert raw20(row, profile=profile) == pytest.approx(expected, rel=1e-14)
    # Later FPs cost more: 0.11 * (S(0.25), S(0.5), S(1), S(1.75)) =
    # (-0.0610, -0.0933, -0.1085, -0.1100).
    assert raw20(row) == pytest.approx(
        {13: -1.061006, 14: -1.093311, 16: -1.108528, 19: -1.109965}[row], abs=1e-6
    )


def test_fp_far_after_a_short_window_is_capped() -> None:
    # Window on rows 4..5 (width 2): x = (i - 5) / (2 - 1).  Row 8: x = 3, S(3) =
    # 2 / (1 + e^15) - 1 = -0.99999939 (not capped); row 9: x = 4 > 3 -> exactly -1.
    windows = [(TS20[4], TS20[5])]
    s3 = 2.0 / (1.0 + math.exp(15.0)) - 1.0
    assert raw20(8, windows=windows) == pytest.approx(-1.0 + 0.11 * s3, rel=1e-15)
    assert raw20(9, windows=windows) == -1.0 - 0.11
    # Row 6: x = 1 -> 0.11 * -0.986614.
    assert raw20(6, windows=windows) == pytest.approx(-1.0 - 0.11 * S_MINUS_1, rel=1e-14)


def test_detection_in_probation_is_ignored() -> None:
    # Rows 0, 1, 2 are probation: the window is missed (-1), nothing else counts.
    assert raw20(0, 1, 2) == -1.0
    fs = score_file(TS20, detections(20, 0, 1, 2), WINDOW20, STANDARD)
    assert (fs.tp, fs.fp, fs.fn, fs.tn) == (0, 0, 5, 12)  # probation rows in no count
    # The first scored row is row 3: a detection there is an FP before any window.
    assert raw20(3) == pytest.approx(-1.11)


def test_no_detection_scores_minus_fn_weight() -> None:
    assert raw20() == -1.0
    assert raw20(profile=LOW_FN) == -2.0


def test_fp_before_any_window_costs_fp_weight() -> None:
    # Rows 3..7 precede the window: each FP there is -A_fp (= S(large) * A_fp = -A_fp).
    assert raw20(5) == pytest.approx(-1.0 - 0.11)
    assert raw20(5, profile=LOW_FP) == pytest.approx(-1.0 - 0.22)
    assert raw20(3, 4, 5, 6, 7) == pytest.approx(-1.0 - 5 * 0.11)
    # With a hit at the window start: 1.0 - 0.11 = 0.89.
    assert raw20(5, 8) == pytest.approx(0.89)


def test_only_first_detection_in_a_window_counts() -> None:
    # Rows 8 and 10: the earliest (row 8, 1.0) counts; row 10 adds nothing.
    assert raw20(8, 10) == 1.0
    assert raw20(8, 9, 10, 11, 12) == 1.0
    # Rows 10 and 11: row 10's weight, 0.917429.
    assert raw20(10, 11) == raw20(10)
    fs = score_file(TS20, detections(20, 8, 9, 10, 11, 12), WINDOW20, STANDARD)
    assert (fs.tp, fs.fn, fs.detected_windows) == (5, 0, 1)


def test_file_without_windows() -> None:
    # art_*NoAnomaly-like file: every scored detection is -A_fp; null score 0.
    assert score_file(TS20, detections(20, 1, 5, 19), [], STANDARD).raw == pytest.approx(-0.22)
    assert score_file(TS20, detections(20), [], STANDARD).raw == 0.0


def test_two_windows_fp_between_uses_preceding_window() -> None:
    # Windows rows 4..6 (width 3) and 12..13 (width 2).  FP at row 9: x = (9 - 6) / 2 =
    # 1.5 -> 0.11 * S(1.5) = 0.11 * -tanh(3.75); FP at row 16: x = (16 - 13) / 1 = 3 ->
    # 0.11 * S(3); hits at rows 5 (x = -(6-5+1)/3 = -2/3) and 12 (x = -1 -> 1.0).
    windows = [(TS20[12], TS20[13]), (TS20[4], TS20[6])]  # unordered on purpose
    s3 = 2.0 / (1.0 + math.exp(15.0)) - 1.0
    expected = math.tanh(2.5 * 2 / 3) / S_MINUS_1 + 1.0 - 0.11 * math.tanh(3.75) + 0.11 * s3
    assert raw20(5, 9, 12, 16, windows=windows) == pytest.approx(expected, rel=1e-14)


def test_window_limits_between_rows_are_inclusive_ranges() -> None:
    # Limits that are not timestamps of the file: rows with start <= t <= end.
    windows = [(TS20[8] - pd.Timedelta("1min"), TS20[12] + pd.Timedelta("2min"))]
    assert raw20(8, windows=windows) == 1.0
    assert raw20(12, windows=windows) == raw20(12)


def test_window_partly_in_probation_keeps_its_full_width() -> None:
    # Window rows 1..5 (width 5), probation rows 0..2: row 3 is its first scorable row,
    # x = -(5 - 3 + 1) / 5 = -0.6 -> 0.917429 (the full width still counts).
    windows = [(TS20[1], TS20[5])]
    assert raw20(3, windows=windows) == pytest.approx(math.tanh(1.5) / S_MINUS_1, rel=1e-14)
    assert raw20(windows=windows) == -1.0


def test_window_inside_probation_is_not_scored() -> None:
    # Window rows 0..2 lies entirely in probation: no FN, and not in the null score.
    windows = [(TS20[0], TS20[2])]
    fs = score_file(TS20, detections(20), windows, STANDARD)
    assert (fs.raw, fs.windows) == (0.0, 0)
    assert null_score([(TS20, windows)], STANDARD) == 0.0
    # A later FP still measures its distance from that window: x = (4 - 2) / 2 = 1.
    assert raw20(4, windows=windows) == pytest.approx(-0.11 * S_MINUS_1, rel=1e-14)


def test_one_row_window() -> None:
    # Width 1: x = -(1) / 1 = -1 at its only row -> A_tp; an FP after it would divide by
    # zero in NAB (w - 1 = 0); here it counts as infinitely far: -A_fp.
    windows = [(TS20[8], TS20[8])]
    assert raw20(8, windows=windows) == 1.0
    assert raw20(9, windows=windows) == pytest.approx(-1.0 - 0.11)


def test_tz_aware_timestamps() -> None:
    ts = TS20.tz_localize("UTC")
    windows = [(ts[8], ts[12])]
    assert score_file(ts, detections(20, 8), windows, STANDARD).raw == 1.0
    with pytest.raises(TypeError):
        score_file(ts, detections(20, 8), WINDOW20, STANDARD)


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError, match="overlap"):
        score_file(TS20, detections(20), [(TS20[5], TS20[9]), (TS20[9], TS20[12])], STANDARD)
    with pytest.raises(ValueError, match="ends before"):
        score_file(TS20, detections(20), [(TS20[9], TS20[5])], STANDARD)
    with pytest.raises(ValueError, match="20 per-row"):
        score_file(TS20, detections(19), WINDOW20, STANDARD)
    shuffled = TS20[[0, 1, 2, 3, 4, 5, 6, 7, 8, 15, 10, 11, 12, 13, 14, 9, 16, 17, 18, 19]]
    with pytest.raises(ValueError, match="not consecutive"):
        score_file(shuffled, detections(20), WINDOW20, STANDARD)
    with pytest.raises(ValueError, match="inf"):
        sweep_thresholds([(TS20, np.full(20, np.inf), WINDOW20)], STANDARD)


# ------------------------------------------------------------- corpus and thresholds


def test_null_and_perfect_scores_toy() -> None:
    ts = pd.date_range("2024-01-01", periods=40, freq="h")  # probation 6 rows
    files = [(TS20, WINDOW20), (ts, [(ts[10], ts[12]), (ts[30], ts[35])]), (ts, [])]
    for profile in (STANDARD, LOW_FP, LOW_FN):
        assert null_score(files, profile) == -3 * profile.fn_weight
        assert perfect_score(files, profile) == 3 * profile.tp_weight
    perfect = [detections(20, 8), detections(40, 10, 30), detections(40)]
    result = corpus_score(files, perfect, LOW_FN)
    assert (result.raw, result.null, result.perfect, result.normalised) == (3.0, -6.0, 3.0, 100.0)
    assert result.threshold is None
    assert [f.raw for f in result.files] == [1.0, 2.0, 0.0]


def test_corpus_score_with_threshold() -> None:
    scores = np.zeros(20)
    scores[[5, 10]] = [0.9, 0.7]
    files = [(TS20, scores, WINDOW20)]
    # Threshold 0.8: only the FP at row 5 -> -1.11; normalised 100 * (-1.11 + 1) / 2.
    result = corpus_score(files, 0.8, STANDARD)
    assert result.raw == pytest.approx(-1.11)
    assert result.normalised == pytest.approx(-5.5)
    assert result.threshold == 0.8
    # Threshold exactly 0.7 includes row 10 (score >= threshold).
    assert corpus_score(files, 0.7, STANDARD).raw == pytest.approx(
        -0.11 + math.tanh(1.5) / S_MINUS_1
    )
    # NaN scores never detect.
    nan_scores = np.full(20, np.nan)
    assert corpus_score([(TS20, nan_scores, WINDOW20)], -np.inf, STANDARD).raw == -1.0
    # A corpus without windows cannot be normalised.
    assert math.isnan(corpus_score([(TS20, scores, [])], 0.5, STANDARD).normalised)


def nab_reference_sweep(
    files: list[tuple[Any, np.ndarray, list[Any]]],
    profile: NabProfile,
    probation_percent: float = 0.15,
) -> list[tuple[float, float]]:
    """Row-by-row restatement of NAB's Sweeper.calcSweepScore + calcScoreByThreshold.

    Returns ``[(threshold, raw)]`` for ``inf`` then every distinct score, descending.
    """
    points: list[tuple[float, float, Any]] = []  # (anomaly score, sweep score, window)
    max_tp = scaled_sigmoid(-1.0)
    for f, (timestamps, scores, windows) in enumerate(files):
        ts = list(pd.DatetimeIndex(timestamps))
        pending = sorted((pd.Timestamp(a), pd.Timestamp(b)) for a, b in windows)
        probation = min(math.floor(probation_percent * len(ts)), probation_percent * 5000)
        current: Any = None
        prev_right: int | None = None
        prev_width = 0.0
        right, width, limits = 0, 0.0, (None, None)
        for i, (t, score) in enumerate(zip(ts, scores, strict=True)):
            if pending and t == pending[0][0]:
                limits = pending.pop(0)
                current = (f, limits[0])
                right = ts.index(limits[1])
                width = float(right - ts.index(limits[0]) + 1)
            if current is not None:
                sweep = scaled_sigmoid(-(right - i + 1) / width) * profile.tp_weight / max_tp
            elif prev_right is None:
                sweep = -1.0 * profile.fp_weight
            elif prev_width == 1:  # NAB divides by zero here; the module says "far away"
                sweep = -1.0 * profile.fp_weight
            else:
                sweep = scaled_sigmoid(abs(prev_right - i) / (prev_width - 1)) * profile.fp_weight
            points.append((float(score), sweep, current if i >= probation else "probation"))
            if current is not None and t == limits[1]:
                prev_right, prev_width, current = i, width, None
    scorable = sorted((p for p in points if p[2] != "probation"), key=lambda p: -p[0])
    parts: dict[Any, float] = {"fp": 0.0}
    for _, _, window in scorable:
        if window is not None:
            parts[window] = -profile.fn_weight
    out = []
    threshold = math.inf
    for score, sweep, window in scorable:
        if score != threshold:
            out.append((threshold, sum(parts.values())))
            threshold = score
        if window is None:
            parts["fp"] += sweep
        else:
            parts[window] = max(parts[window], sweep)
    out.append((threshold, sum(parts.values())))
    return out


def random_corpus(seed: int, n_files: int = 4) -> list[tuple[Any, np.ndarray, list[Any]]]:
    rng = np.random.default_rng(seed)
    files = []
    for _ in range(n_files):
        n = int(rng.integers(20, 160))
        ts = pd.date_range("2024-01-01", periods=n, freq="5min")
        n_windows = int(rng.integers(0, 4))
        cuts = np.sort(rng.choice(np.arange(1, n), size=2 * n_windows, replace=False))
        windows = [(ts[cuts[2 * k]], ts[cuts[2 * k + 1]]) for k in range(n_windows)]
        if rng.random() < 0.3 and n_windows:  # a one-row window now and then
            windows[0] = (ts[cuts[0]], ts[cuts[0]])
        scores = np.round(rng.random(n), 1)  # heavy ties
        files.append((ts, scores, windows))
    return files


@pytest.mark.parametrize("seed", range(12))
def test_sweep_matches_nab_reference_and_brute_force(seed: int) -> None:
    files = random_corpus(seed)
    for profile in (STANDARD, LOW_FP, LOW_FN):
        thresholds, raw = sweep_thresholds(files, profile)
        reference = nab_reference_sweep(files, profile)
        assert thresholds.tolist() == [t for t, _ in reference]
        assert raw == pytest.approx([r for _, r in reference], abs=1e-12)
        # Brute force: score the corpus at every candidate threshold.
        brute = [corpus_score(files, float(t), profile).raw for t in thresholds]
        assert raw == pytest.approx(brute, abs=1e-12)
        threshold, best = optimise_threshold(files, profile)
        assert best == pytest.approx(max(brute), abs=1e-12)
        # Ties go to the highest threshold.
        first_best = thresholds[np.flatnonzero(np.isclose(brute, max(brute), atol=1e-9))[0]]
        assert threshold == first_best


@pytest.mark.parametrize("seed", range(6))
def test_score_file_matches_nab_reference(seed: int) -> None:
    for timestamps, scores, windows in random_corpus(100 + seed, n_files=3):
        for profile in (STANDARD, LOW_FN):
            reference = dict(nab_reference_sweep([(timestamps, scores, windows)], profile))
            for threshold, expected in reference.items():
                det = scores >= threshold
                got = score_file(timestamps, det, windows, profile).raw
                assert got == pytest.approx(expected, abs=1e-12)


def test_optimise_threshold_toy_by_hand() -> None:
    # Scores: row 5 (FP before window) 0.9, row 10 (mid-window) 0.7, others 0.
    # Candidates: inf -> -1; 0.9 -> -1.11; 0.7 -> -0.11 + 0.917429 = 0.807429;
    # 0.0 -> everything after probation fires, the hit is row 8 (1.0) and 12 FPs:
    # 5 before the window (-0.55) + 0.11 * sum of S(d / 4), d = 1..7 (-0.697209) = -0.247209.
    scores = np.zeros(20)
    scores[[5, 10]] = [0.9, 0.7]
    files = [(TS20, scores, WINDOW20)]
    thresholds, raw = sweep_thresholds(files, STANDARD)
    assert thresholds.tolist() == [math.inf, 0.9, 0.7, 0.0]
    fp_tail = 0.11 * sum(-math.tanh(2.5 * d / 4) for d in range(1, 8))
    expected = [-1.0, -1.11, -0.11 + math.tanh(1.5) / S_MINUS_1, 1.0 - 0.55 + fp_tail]
    assert raw == pytest.approx(expected, abs=1e-12)
    assert optimise_threshold(files, STANDARD) == (0.7, pytest.approx(expected[2]))


def test_optimise_threshold_prefers_never_firing_when_everything_hurts() -> None:
    scores = np.full(20, np.nan)  # NaN never fires
    scores[[4, 5]] = 1.0  # only FPs: -1 - 0.22 at threshold 1.0, -1 never firing
    assert optimise_threshold([(TS20, scores, WINDOW20)], STANDARD) == (math.inf, -1.0)


def test_empty_sweep() -> None:
    thresholds, raw = sweep_thresholds([], STANDARD)
    assert thresholds.tolist() == [math.inf]
    assert raw.tolist() == [0.0]


# ------------------------------------------------------------- window metrics, alerts


def test_window_metrics_toy() -> None:
    # Windows rows 4..6 and 12..14 on the 20-row file.  Detections: 1 (probation,
    # ignored), 7-8 (FP group), 13-14 (hit, delay 1 row = 5 min), 15 (FP group: run
    # continuing past the window end).  Window 4..6 is missed.
    windows = [(TS20[4], TS20[6]), (TS20[12], TS20[14])]
    m = window_metrics(TS20, detections(20, 1, 7, 8, 13, 14, 15), windows)
    assert (m.windows, m.detected_windows, m.missed_windows, m.fp_groups) == (2, 1, 1, 2)
    assert m.precision == pytest.approx(1 / 3)  # 1 / (1 + 2)
    assert m.recall == 0.5
    assert m.f1 == pytest.approx(2 * (1 / 3) * 0.5 / (1 / 3 + 0.5))  # 0.4
    assert m.delays_rows == (1,)
    assert m.delays_time == (pd.Timedelta("5min"),)
    assert m.mean_delay_rows == 1.0
    assert m.median_delay_time == pd.Timedelta("5min")


def test_window_metrics_delays_and_pooling() -> None:
    # Two files: hits 0 rows and 3 rows (15 min) after their windows' starts, and a
    # third delay of 2 rows (2 h) in an hourly file.
    a = window_metrics(TS20, detections(20, 8), WINDOW20)
    b = window_metrics(TS20, detections(20, 11), WINDOW20)
    ts = pd.date_range("2024-01-01", periods=40, freq="h")
    c = window_metrics(ts, detections(40, 22, 23), [(ts[20], ts[25])])
    pooled = combine_window_metrics([a, b, c])
    assert pooled.delays_rows == (0, 3, 2)
    assert pooled.mean_delay_rows == pytest.approx(5 / 3)
    assert pooled.median_delay_rows == 2.0
    assert pooled.delays_time == (
        pd.Timedelta(0),
        pd.Timedelta("15min"),
        pd.Timedelta("2h"),
    )
    assert pooled.mean_delay_time == pd.Timedelta("45min")  # (0 + 15 + 120) / 3
    assert pooled.median_delay_time == pd.Timedelta("15min")
    assert (pooled.precision, pooled.recall, pooled.f1) == (1.0, 1.0, 1.0)


def test_window_metrics_undefined_cases() -> None:
    m = window_metrics(TS20, detections(20), WINDOW20)
    assert math.isnan(m.precision)  # no detections at all
    assert m.recall == 0.0
    assert math.isnan(m.f1)
    assert math.isnan(m.mean_delay_rows)
    assert m.mean_delay_time is None
    fp_only = window_metrics(TS20, detections(20, 4), WINDOW20)
    assert (fp_only.precision, fp_only.recall, fp_only.f1) == (0.0, 0.0, 0.0)
    no_windows = window_metrics(TS20, detections(20, 4), [])
    assert math.isnan(no_windows.recall)


def test_corpus_window_metrics() -> None:
    scores = np.zeros(20)
    scores[[5, 6, 10]] = [0.9, 0.9, 0.7]
    files = [(TS20, scores, WINDOW20), (TS20, scores, [])]
    high = corpus_window_metrics(files, 0.8)
    assert (high.windows, high.detected_windows, high.fp_groups) == (1, 0, 2)
    low = corpus_window_metrics(files, 0.7)
    # The second file has no window, so its row 10 is one more FP group.
    assert (low.detected_windows, low.fp_groups, low.delays_rows) == (1, 3, (2,))
    by_decision = corpus_window_metrics(files, [scores >= 0.7, scores >= 0.7])
    assert by_decision == low


def test_false_alerts_per_day() -> None:
    # 97 rows at 15 min = 24 h; probation floor(0.15 * 97) = 14 rows, so the scored rows
    # 14..96 span 82 * 15 min = 20.5 h.  Detections: 3 (probation), 20-22 (one group),
    # 40, 41 (one group), 60, 96 -> 4 groups / (20.5 / 24) days = 4.682927.
    ts = pd.date_range("2024-01-01", periods=97, freq="15min")
    det = detections(97, 3, 20, 21, 22, 40, 41, 60, 96)
    assert false_alerts_per_day(ts, det) == pytest.approx(4 / (20.5 / 24))
    # Without probation: 5 groups over 24 h.
    assert false_alerts_per_day(ts, det, probation_percent=0.0) == pytest.approx(5.0)
    # Detections inside a window are not false alerts: window on rows 39..42.
    assert false_alerts_per_day(ts, det, [(ts[39], ts[42])]) == pytest.approx(3 / (20.5 / 24))
    assert false_alerts_per_day(ts, detections(97)) == 0.0
    with pytest.raises(ValueError):
        false_alerts_per_day(ts[:1], detections(1))


def test_pooled_false_alerts_per_day() -> None:
    # File 1: 2 groups over 20.5 h (as above); file 2: 25 hourly rows, probation 3,
    # scored rows 3..24 span 21 h, 1 group.  Pooled: 3 / (41.5 / 24) per day.
    ts1 = pd.date_range("2024-01-01", periods=97, freq="15min")
    ts2 = pd.date_range("2024-01-01", periods=25, freq="h")
    files: list[tuple[Any, ...]] = [
        (ts1, detections(97, 20, 40)),
        (ts2, detections(25, 10, 11), []),
    ]
    assert pooled_false_alerts_per_day(files) == pytest.approx(3 / (41.5 / 24))


# ------------------------------------------------------------------- the NAB corpus


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, pd.Series, pd.Series, list[Any]]]:
    if not (NAB_DIR / "labels" / "combined_windows.json").exists():
        pytest.skip("NAB corpus not available")
    windows = load_windows(NAB_DIR / "labels" / "combined_windows.json")
    files = []
    for name, limits in sorted(windows.items()):
        frame = pd.read_csv(NAB_DIR / "data" / name)
        files.append((name, pd.to_datetime(frame["timestamp"]), frame["value"], limits))
    return files


def test_profiles_from_real_profiles_json() -> None:
    path = NAB_DIR / "config" / "profiles.json"
    if not path.exists():
        pytest.skip("NAB corpus not available")
    profiles = load_profiles(path)
    assert profiles == NAB_PROFILES
    assert set(profiles) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}
    assert (profiles["standard"].tp_weight, profiles["standard"].fp_weight) == (1.0, 0.11)
    assert profiles["reward_low_FN_rate"].fn_weight == 2.0
    assert profiles["reward_low_FP_rate"].fp_weight == 0.22


def test_real_windows_loaded(corpus: list[Any]) -> None:
    assert len(corpus) == 35
    assert sum(len(w) for *_, w in corpus) == 55
    for _, ts, _, windows in corpus:
        for start, end in windows:
            # NAB's labels are timestamps of the file, and no window touches probation.
            assert (ts == start).sum() == 1 and (ts == end).sum() == 1
            assert int(np.flatnonzero(ts == start)[0]) >= probation_length(len(ts))


@pytest.mark.parametrize("profile", list(NAB_PROFILES.values()), ids=list(NAB_PROFILES))
def test_null_and_perfect_detectors_on_real_corpus(corpus: list[Any], profile: NabProfile) -> None:
    files = [(ts, windows) for _, ts, _, windows in corpus]
    null = [np.zeros(len(ts), dtype=bool) for _, ts, _, _ in corpus]
    perfect = []
    for _, ts, _, windows in corpus:
        det = np.zeros(len(ts), dtype=bool)
        for start, _ in windows:
            det[np.flatnonzero(ts == start)[0]] = True  # first row of every window
        perfect.append(det)
    assert null_score(files, profile) == -55 * profile.fn_weight
    assert perfect_score(files, profile) == 55 * profile.tp_weight
    null_result = corpus_score(files, null, profile)
    perfect_result = corpus_score(files, perfect, profile)
    assert null_result.raw == -55 * profile.fn_weight
    assert null_result.normalised == 0.0
    assert perfect_result.raw == 55 * profile.tp_weight
    assert perfect_result.normalised == 100.0


def zscore_detector(values: pd.Series) -> np.ndarray:
    """A simple online detector for the corpus tests: |z| against trailing statistics."""
    past = values.shift(1).rolling(288, min_periods=20)
    z = (values - past.mean()) / (past.std() + 1e-9)
    scores = 1.0 - np.exp(-np.abs(z.to_numpy()) / 4.0)
    return np.round(np.nan_to_num(scores, nan=0.0), 3)


def test_real_corpus_sweep_matches_reference_and_brute_force(corpus: list[Any]) -> None:
    files = [(ts, zscore_detector(values), windows) for _, ts, values, windows in corpus]
    thresholds, raw = sweep_thresholds(files, STANDARD)
    # Row-by-row NAB restatement over the whole corpus (duplicate timestamps and the
    # out-of-order stretch of machine_temperature_system_failure included).
    reference = nab_reference_sweep(files, STANDARD)
    assert thresholds.tolist() == [t for t, _ in reference]
    # (The restatement accumulates FP weights one by one, like NAB: ~1e-12 relative drift.)
    assert raw == pytest.approx([r for _, r in reference], rel=1e-11, abs=1e-9)
    # Brute force at a sample of candidate thresholds, and at the optimum.
    threshold, best = optimise_threshold(files, STANDARD)
    for t in [*thresholds[:: max(1, len(thresholds) // 25)], threshold]:
        expected = raw[thresholds == t][0]
        got = corpus_score(files, float(t), STANDARD).raw
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-9)
    assert best == pytest.approx(raw.max(), abs=1e-9)


def test_real_corpus_scores_fast(corpus: list[Any]) -> None:
    files = [(ts, zscore_detector(values), windows) for _, ts, values, windows in corpus]
    started = time.perf_counter()
    for profile in NAB_PROFILES.values():
        threshold, raw = optimise_threshold(files, profile)
        result = corpus_score(files, threshold, profile)
        assert result.raw == pytest.approx(raw, abs=1e-9)
        assert result.normalised <= 100.0
        window_metrics_result = corpus_window_metrics(files, threshold)
        assert window_metrics_result.windows == 55
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0, f"scoring the corpus took {elapsed:.2f} s"


def test_module_exports() -> None:
    import monitor.evaluation as evaluation

    assert set(evaluation.__all__) == set(nab.__all__)
