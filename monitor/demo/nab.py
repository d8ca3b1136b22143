"""Loading series of the Numenta Anomaly Benchmark (NAB) with their labelled windows.

A NAB root holds ``data/<category>/<file>.csv`` (``timestamp,value``) and
``labels/combined_windows.json``, which maps ``"<category>/<file>.csv"`` to a list of
``[start, end]`` timestamp windows. Series load as
:class:`~monitor.demo.synthetic.SyntheticSeries` named ``nab.<file stem>``, each window
becoming an ``Anomaly("window", start, end)`` over the point indices it covers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from monitor.demo.synthetic import Anomaly, SyntheticSeries
from monitor.replay import read_series_csv

ENV_NAB_ROOT = "MONITOR_NAB_ROOT"
WINDOWS_FILE = PurePosixPath("labels", "combined_windows.json")


def is_nab_root(path: Path) -> bool:
    """Whether ``path`` looks like a NAB checkout (``data/`` and the combined windows).

    >>> is_nab_root(Path("/nonexistent"))
    False
    """
    return (path / "data").is_dir() and (path / WINDOWS_FILE).is_file()


def default_nab_root() -> Path | None:
    """Find the NAB data: ``$MONITOR_NAB_ROOT``, else ``<repo>/../shared/datasets/nab``.

    The repository root is the nearest directory above this package holding
    ``pyproject.toml``. When ``MONITOR_NAB_ROOT`` is set it is the only place looked
    at. Returns ``None`` when no NAB data is found.

    >>> root = default_nab_root()
    >>> root is None or is_nab_root(root)
    True
    """
    override = os.environ.get(ENV_NAB_ROOT)
    if override:
        candidate = Path(override).expanduser()
        return candidate if is_nab_root(candidate) else None
    here = Path(__file__).resolve().parent
    for directory in (here, *here.parents):
        if (directory / "pyproject.toml").is_file():
            candidate = directory.parent / "shared" / "datasets" / "nab"
            return candidate if is_nab_root(candidate) else None
    return None


def load_nab_windows(nab_root: Path) -> dict[str, list[tuple[str, str]]]:
    """Read ``labels/combined_windows.json``: file name -> ``[(start, end), ...]``."""
    path = Path(nab_root) / WINDOWS_FILE
    with open(path, encoding="utf-8") as fh:
        raw = json.load(fh)
    return {name: [(str(w[0]), str(w[1])) for w in windows] for name, windows in raw.items()}


def available_nab_files(nab_root: Path) -> list[str]:
    """The labelled data files present under ``nab_root``, as ``category/file.csv``."""
    root = Path(nab_root)
    windows = load_nab_windows(root)
    return sorted(name for name in windows if (root / "data" / name).is_file())


def windows_to_anomalies(ts: np.ndarray, windows: Sequence[tuple[str, str]]) -> tuple[Anomaly, ...]:
    """Turn timestamp windows (inclusive, UTC) into index ranges over ``ts`` (epoch s).

    Windows that cover no point are dropped.

    >>> ts = np.array([0.0, 300.0, 600.0, 900.0])
    >>> windows_to_anomalies(ts, [("1970-01-01 00:05:00", "1970-01-01 00:10:00.000000")])
    (Anomaly(kind='window', start=1, end=3),)
    """
    anomalies: list[Anomaly] = []
    for start_text, end_text in windows:
        start = pd.Timestamp(start_text, tz="UTC").timestamp()
        end = pd.Timestamp(end_text, tz="UTC").timestamp()
        inside = np.flatnonzero((ts >= start) & (ts <= end))
        if inside.size:
            anomalies.append(Anomaly("window", int(inside[0]), int(inside[-1]) + 1))
    return tuple(anomalies)


def load_nab_series(nab_root: Path, files: Sequence[str]) -> list[SyntheticSeries]:
    """Load NAB files (e.g. ``"realKnownCause/nyc_taxi.csv"``) with their anomaly windows.

    Points keep the file's order (NAB's ``machine_temperature_system_failure`` steps
    back 55 minutes once). Raises ``FileNotFoundError`` for a file that is not under ``data/`` and
    ``ValueError`` for one that has no entry in the combined windows.

    >>> root = default_nab_root()
    >>> if root is not None:
    ...     [s] = load_nab_series(root, ["realKnownCause/nyc_taxi.csv"])
    ...     assert s.name == "nab.nyc_taxi" and len(s) == len(s.ts) > 0
    """
    root = Path(nab_root)
    windows = load_nab_windows(root)
    series: list[SyntheticSeries] = []
    for file in files:
        name = PurePosixPath(str(file).replace("\\", "/"))
        if name.parts and name.parts[0] == "data":
            name = PurePosixPath(*name.parts[1:])
        path = root / "data" / name
        if not path.is_file():
            raise FileNotFoundError(f"NAB file {str(name)!r} not found at {path}")
        if str(name) not in windows:
            raise ValueError(f"NAB file {str(name)!r} has no entry in {root / WINDOWS_FILE}")
        ts, values = read_series_csv(path)
        ts.flags.writeable = False
        values.flags.writeable = False
        series.append(
            SyntheticSeries(
                name=f"nab.{name.stem}",
                labels=(),
                ts=ts,
                values=values,
                anomalies=windows_to_anomalies(ts, windows[str(name)]),
            )
        )
    return series
