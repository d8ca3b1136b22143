"""Replay labelled series through the daemon's own detection code, as concurrent streams.

Every file becomes one stream of one :class:`monitor.detection.Detector` built from
the configuration under test, so evaluation runs exactly the classes, settings and
order the daemon runs: each point is scored before it is learned, each stream in time
order. All files are replayed together in batches, as the daemon would see them
interleaved on a topic; batching changes no decision (the detector applies batches
as rounds; numbers agree with one-point-at-a-time to rounding).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from monitor.config.schema import MonitorConfig
from monitor.detection import Detector

BATCH_ROWS_PER_FILE = 2000
"""Rows of each file per replayed batch (a progress step)."""
MIN_STEP_SECONDS = 1e-3
"""A timestamp not after the previous one is nudged this far past it, so every row is scored."""


@dataclass(frozen=True)
class Series:
    """One labelled CSV: its name (``category/file.csv``), raw timestamps and values."""

    name: str
    timestamps: pd.Series
    values: np.ndarray


@dataclass(frozen=True)
class Replayed:
    """Per-row outcome of one series, in file order."""

    series: Series
    score: np.ndarray
    alert: np.ndarray
    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    threshold: np.ndarray


def find_series(data_dir: Path) -> list[Series]:
    """Every ``<category>/<file>.csv`` below ``data_dir`` (header ``timestamp,value``)."""
    out = []
    for path in sorted(data_dir.glob("*/*.csv")):
        frame = pd.read_csv(path)
        if list(frame.columns[:2]) != ["timestamp", "value"]:
            raise ValueError(f"{path}: expected columns timestamp,value, got {list(frame.columns)}")
        name = f"{path.parent.name}/{path.name}"
        out.append(Series(name, frame["timestamp"], frame["value"].to_numpy(np.float64)))
    return out


def epoch_seconds(timestamps: pd.Series) -> np.ndarray:
    """Strictly increasing epoch seconds of the raw timestamps (UTC when naive).

    >>> epoch_seconds(pd.Series(["2014-04-01 00:00:00", "2014-04-01 00:05:00",
    ...                          "2014-04-01 00:05:00"])).tolist()
    [1396310400.0, 1396310700.0, 1396310700.001]
    """
    moments = pd.to_datetime(timestamps, utc=True)
    elapsed = (moments - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    seconds = np.array(elapsed, dtype=np.float64)
    for i in range(1, len(seconds)):
        if seconds[i] <= seconds[i - 1]:
            seconds[i] = seconds[i - 1] + MIN_STEP_SECONDS
    return seconds


def replay(
    config: MonitorConfig,
    series: Sequence[Series],
    progress: Callable[[int], None] | None = None,
) -> list[Replayed]:
    """Score every row of every series with a fresh detector built from ``config``."""
    detector = Detector(config, capacity=max(len(series), 1))
    keys = [s.name for s in series]
    rows, _ = detector.streams.lookup(keys, [(k, ()) for k in keys])
    detector._admit(rows)  # noqa: SLF001 - the evaluator owns this detector
    lengths = [len(s.values) for s in series]
    seconds = [epoch_seconds(s.timestamps) for s in series]
    outputs = {
        name: [np.zeros(n) for n in lengths]
        for name in ("score", "expected", "lower", "upper", "threshold")
    }
    alerts = [np.zeros(n, dtype=bool) for n in lengths]
    longest = max(lengths, default=0)
    for start in range(0, longest, BATCH_ROWS_PER_FILE):
        stop = start + BATCH_ROWS_PER_FILE
        parts = [(i, np.arange(start, min(stop, n))) for i, n in enumerate(lengths) if start < n]
        file_index = np.concatenate([np.full(len(r), i) for i, r in parts])
        row_index = np.concatenate([r for _, r in parts])
        ts = np.concatenate([seconds[i][r] for i, r in parts])
        values = np.concatenate([series[i].values[r] for i, r in parts])
        outcome = detector.process_arrays(rows[file_index], ts, values)
        scored = outcome.scored
        if len(scored.index) != len(file_index):
            raise RuntimeError("every row must be scored: timestamps were not increasing")
        f, r = file_index[scored.index], row_index[scored.index]
        for name, array in outputs.items():
            values_out = getattr(scored, name)
            for i in np.unique(f):
                mask = f == i
                array[i][r[mask]] = values_out[mask]
        for i in np.unique(f):
            mask = f == i
            alerts[i][r[mask]] = scored.anomalous[mask]
        if progress is not None:
            progress(len(file_index))
    return [
        Replayed(
            series=s,
            score=outputs["score"][i],
            alert=alerts[i],
            expected=outputs["expected"][i],
            lower=outputs["lower"][i],
            upper=outputs["upper"][i],
            threshold=outputs["threshold"][i],
        )
        for i, s in enumerate(series)
    ]
