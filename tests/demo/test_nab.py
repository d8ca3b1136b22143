"""The NAB loader: the real corpus when present, plus a tiny hand-made one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monitor.demo.nab import (
    ENV_NAB_ROOT,
    available_nab_files,
    default_nab_root,
    is_nab_root,
    load_nab_series,
)
from monitor.demo.synthetic import Anomaly, SyntheticSeries

MACHINE = "realKnownCause/machine_temperature_system_failure.csv"
TAXI = "realKnownCause/nyc_taxi.csv"
FLATLINE = "artificialNoAnomaly/art_flatline.csv"


@pytest.fixture(scope="module")
def nab_root() -> Path:
    root = default_nab_root()
    if root is None:
        pytest.skip("NAB data not found (set MONITOR_NAB_ROOT or put it in shared/datasets/nab)")
    return root


def _epoch(text: str) -> float:
    return pd.Timestamp(text, tz="UTC").timestamp()


def test_real_series_match_their_csv_and_windows(nab_root: Path) -> None:
    windows = json.loads((nab_root / "labels" / "combined_windows.json").read_text())
    series = load_nab_series(nab_root, [MACHINE, TAXI, FLATLINE])
    assert [s.name for s in series] == [
        "nab.machine_temperature_system_failure",
        "nab.nyc_taxi",
        "nab.art_flatline",
    ]
    for s, file in zip(series, [MACHINE, TAXI, FLATLINE], strict=True):
        assert isinstance(s, SyntheticSeries) and s.labels == ()
        frame = pd.read_csv(nab_root / "data" / file)
        assert len(s) == len(frame)
        assert np.allclose(s.values, frame["value"].to_numpy())
        assert s.ts[0] == _epoch(frame["timestamp"].iloc[0])
        # File order is kept: machine_temperature has one backwards jump of 55 minutes.
        assert np.mean(np.diff(s.ts) > 0) > 0.999
        assert len(s.anomalies) == len(windows[file])
        for anomaly, (start, end) in zip(s.anomalies, windows[file], strict=True):
            assert anomaly.kind == "window"
            assert s.ts[anomaly.start] >= _epoch(start)
            assert anomaly.start == 0 or s.ts[anomaly.start - 1] < _epoch(start)
            assert s.ts[anomaly.end - 1] <= _epoch(end)
            assert anomaly.end == len(s) or s.ts[anomaly.end] > _epoch(end)
    machine = series[0]
    assert machine.anomalies[0] == Anomaly("window", 2126, 2693)
    assert series[2].anomalies == ()


def test_available_files_include_the_known_ones(nab_root: Path) -> None:
    files = available_nab_files(nab_root)
    assert {MACHINE, TAXI, FLATLINE} <= set(files)


def test_errors_for_unknown_files(nab_root: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        load_nab_series(nab_root, ["realKnownCause/absent.csv"])


def test_data_prefix_is_accepted(nab_root: Path) -> None:
    [series] = load_nab_series(nab_root, [f"data/{FLATLINE}"])
    assert series.name == "nab.art_flatline"


@pytest.fixture
def tiny_root(tmp_path: Path) -> Path:
    root = tmp_path / "nab"
    (root / "data" / "cat").mkdir(parents=True)
    (root / "labels").mkdir()
    stamps = pd.date_range("2014-04-01", periods=20, freq="5min")
    frame = pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S"), "value": range(20)})
    frame.to_csv(root / "data" / "cat" / "tiny.csv", index=False)
    frame.to_csv(root / "data" / "cat" / "unlabelled.csv", index=False)
    windows = {
        "cat/tiny.csv": [
            ["2014-04-01 00:10:00.000000", "2014-04-01 00:20:00.000000"],
            ["2014-04-01 01:32:30.000000", "2014-04-01 03:00:00.000000"],
            ["2014-04-02 00:00:00.000000", "2014-04-02 01:00:00.000000"],
        ],
        "cat/missing.csv": [],
    }
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    return root


def test_tiny_root_windows_become_index_ranges(tiny_root: Path) -> None:
    assert is_nab_root(tiny_root)
    [series] = load_nab_series(tiny_root, ["cat/tiny.csv"])
    assert series.name == "nab.tiny"
    assert series.values.tolist() == [float(v) for v in range(20)]
    # 00:10..00:20 inclusive -> points 2, 3, 4; 01:32:30.. -> points 19..; the third
    # window lies after the data and is dropped.
    assert series.anomalies == (Anomaly("window", 2, 5), Anomaly("window", 19, 20))
    assert available_nab_files(tiny_root) == ["cat/tiny.csv"]


def test_unlabelled_file_is_refused(tiny_root: Path) -> None:
    with pytest.raises(ValueError, match="no entry"):
        load_nab_series(tiny_root, ["cat/unlabelled.csv"])


def test_env_override(tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_NAB_ROOT, str(tiny_root))
    assert default_nab_root() == tiny_root
    monkeypatch.setenv(ENV_NAB_ROOT, str(tmp_path / "nowhere"))
    assert default_nab_root() is None
