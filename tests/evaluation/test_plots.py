"""Figures of replayed series: real NAB series render to valid, readable PNGs."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from monitor.config import MonitorConfig
from monitor.evaluation import nab
from monitor.evaluation.plots import (
    ALERT_GID,
    PROBATION_GID,
    WINDOW_GID,
    draw_replayed,
    plot_all,
    plot_replayed,
    robust_limits,
)
from monitor.evaluation.replay import Replayed, Series, find_series, replay

NAB_DIR = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "nab"
TAXI = "realKnownCause/nyc_taxi.csv"
NOISY = "artificialNoAnomaly/art_noisy.csv"
JUMPS = "artificialWithAnomaly/art_daily_jumpsup.csv"
ALERT_RGB = np.array(to_rgb("#d62728"))


@pytest.fixture(scope="module")
def windows() -> dict[str, list[nab.Window]]:
    path = NAB_DIR / "labels" / "combined_windows.json"
    if not path.exists():
        pytest.skip("NAB data not found in /work/shared/datasets/nab")
    return nab.load_windows(path)


@pytest.fixture(scope="module")
def real(windows: dict[str, list[nab.Window]]) -> dict[str, Replayed]:
    wanted = {TAXI, NOISY, JUMPS}
    series = [s for s in find_series(NAB_DIR / "data") if s.name in wanted]
    assert {s.name for s in series} == wanted
    return {r.series.name: r for r in replay(MonitorConfig(), series)}


def synthetic(n: int = 200, name: str = "synthetic/sine.csv", tz: str | None = None) -> Replayed:
    """A sine with one planted spike at row ``n // 2``, alerted."""
    stamps = pd.date_range("2024-01-01", periods=n, freq="5min", tz=tz)
    values = np.sin(np.arange(n) / 8.0)
    values[n // 2] = 50.0
    alert = np.zeros(n, dtype=bool)
    alert[n // 2] = True
    return Replayed(
        series=Series(name, pd.Series(stamps.astype(str)), values),
        score=np.where(alert, 0.9, 0.2),
        alert=alert,
        expected=np.sin(np.arange(n) / 8.0),
        lower=np.sin(np.arange(n) / 8.0) - 0.5,
        upper=np.sin(np.arange(n) / 8.0) + 0.5,
        threshold=np.full(n, 0.5),
    )


def alert_pixels(image: np.ndarray) -> int:
    """Alert-red pixels below the title and legend (the top 12 %), i.e. on the data."""
    below = image[int(0.12 * image.shape[0]) :, :, :3]
    return int((np.abs(below - ALERT_RGB).max(axis=-1) < 0.06).sum())


@pytest.mark.parametrize("name", [TAXI, NOISY])
def test_real_series_render_to_valid_pngs(
    name: str, real: dict[str, Replayed], windows: dict[str, list[nab.Window]], tmp_path: Path
) -> None:
    replayed = real[name]
    path = plot_replayed(
        replayed,
        windows[name],
        tmp_path / "sub" / "figure.png",
        probation_rows=nab.probation_length(len(replayed.score)),
    )
    assert path == tmp_path / "sub" / "figure.png"
    image = mpimg.imread(path)
    height, width = image.shape[:2]
    assert abs(height - 660) <= 4 and abs(width - 1540) <= 4
    rgb = image[..., :3].reshape(-1, 3)
    assert np.ptp(rgb, axis=0).max() > 0.5  # not all one colour
    assert len(np.unique(rgb.round(2), axis=0)) > 50
    if replayed.alert.any():
        assert alert_pixels(image) > 20  # the red alert points are visible
    else:
        assert alert_pixels(image) == 0


def test_windows_alerts_and_probation_are_drawn(
    real: dict[str, Replayed], windows: dict[str, list[nab.Window]]
) -> None:
    replayed = real[TAXI]
    assert len(windows[TAXI]) == 5 and replayed.alert.sum() > 0
    fig = draw_replayed(replayed, windows[TAXI], probation_rows=750)
    top, bottom = fig.axes
    for axes in (top, bottom):
        shaded = [p for p in axes.patches if p.get_gid() == WINDOW_GID]
        assert len(shaded) == len(windows[TAXI])
        assert [p for p in axes.patches if p.get_gid() == PROBATION_GID]
        alerts = [c for c in axes.collections if c.get_gid() == ALERT_GID]
        assert len(alerts) == 1 and isinstance(alerts[0], PathCollection)
        assert len(alerts[0].get_offsets()) == replayed.alert.sum()
        assert np.allclose(alerts[0].get_facecolors()[0][:3], ALERT_RGB)
    # the alert points sit on the values, in the top panel's visible range
    points = next(c for c in top.collections if c.get_gid() == ALERT_GID).get_offsets()
    assert np.allclose(np.asarray(points)[:, 1], replayed.series.values[replayed.alert])
    y_lo, y_hi = top.get_ylim()
    assert (replayed.series.values[replayed.alert] >= y_lo).all()
    assert (replayed.series.values[replayed.alert] <= y_hi).all()
    assert bottom.get_ylim() == (0.0, 1.0)
    legend = [t.get_text() for t in top.get_legend().get_texts()]
    for entry in ("value", "expected", "prediction band", "labelled window", "alert", "score"):
        assert entry in legend
    assert any(text.startswith("probation") for text in legend)
    assert fig._suptitle is not None
    title = fig._suptitle.get_text()
    assert title.startswith(TAXI) and "5 labelled windows" in title


def test_window_shading_is_visible_in_the_png(
    real: dict[str, Replayed], windows: dict[str, list[nab.Window]], tmp_path: Path
) -> None:
    path = plot_replayed(real[JUMPS], windows[JUMPS], tmp_path / "jumps.png")
    image = mpimg.imread(path)[..., :3]
    shade = 1 - 0.35 * (1 - np.array(to_rgb("#f6d55c")))  # window colour over white
    assert (np.abs(image - shade).max(axis=-1) < 0.03).sum() > 5000


def test_huge_spikes_do_not_flatten_the_band() -> None:
    replayed = synthetic()
    quiet = Replayed(**{**replayed.__dict__, "alert": np.zeros(200, dtype=bool)})
    top = draw_replayed(quiet, []).axes[0]
    assert top.get_ylim()[1] < 5  # the unalerted spike at 50 is clipped
    top = draw_replayed(replayed, []).axes[0]
    assert top.get_ylim()[1] > 50  # an alerted spike is always shown


def test_robust_limits() -> None:
    values = np.r_[np.linspace(0, 10, 999), 1e9]
    none = np.zeros(1000, dtype=bool)
    bottom, top = robust_limits(values, values - 1, values + 1, none)
    assert -2 < bottom < 0 and 10 < top < 13
    # a band far wider than the data widens the range by half of it at most (+ margin)
    bottom, top = robust_limits(values, values - 1e6, values + 1e6, none)
    assert -7 < bottom < -5 and 15 < top < 17
    # constant values inside a hair-thin band: a readable range around the value
    flat = np.full(100, 45.0)
    bottom, top = robust_limits(flat, flat - 1e-4, flat + 1e-4, np.zeros(100, dtype=bool))
    assert bottom < 44.5 and top > 45.5
    assert robust_limits(np.full(3, np.nan), np.zeros(3), np.ones(3), np.zeros(3, bool)) == (0, 1)


def test_zoned_timestamps_and_bad_input(tmp_path: Path) -> None:
    zoned = synthetic(tz="UTC")
    window = [(pd.Timestamp("2024-01-01 08:00"), pd.Timestamp("2024-01-01 09:00"))]
    fig = draw_replayed(zoned, window)
    assert len([p for p in fig.axes[0].patches if p.get_gid() == WINDOW_GID]) == 1
    empty = Replayed(
        Series("x/empty.csv", pd.Series([], dtype=str), np.zeros(0)),
        *(np.zeros(0) for _ in range(6)),
    )
    with pytest.raises(ValueError, match="no rows"):
        plot_replayed(empty, [], tmp_path / "empty.png")
    short = Replayed(**{**zoned.__dict__, "score": np.zeros(3)})
    with pytest.raises(ValueError, match="score has 3 rows"):
        draw_replayed(short, [])


def test_plot_all_writes_category_folders(
    real: dict[str, Replayed], windows: dict[str, list[nab.Window]], tmp_path: Path
) -> None:
    replayed = [real[NOISY], synthetic(name="made_up/unlabelled.csv")]
    paths = plot_all(replayed, windows, tmp_path)
    assert paths == [
        tmp_path / "artificialNoAnomaly" / "art_noisy.png",
        tmp_path / "made_up" / "unlabelled.png",
    ]
    assert all(p.stat().st_size > 10_000 for p in paths)


def test_pyplot_is_never_used() -> None:
    code = (
        "import sys, tempfile, pathlib\n"
        "sys.path.insert(0, 'tests/evaluation')\n"
        "from test_plots import synthetic\n"
        "from monitor.evaluation.plots import plot_replayed\n"
        "with tempfile.TemporaryDirectory() as tmp:\n"
        "    plot_replayed(synthetic(), [], pathlib.Path(tmp) / 'a.png')\n"
        "print('matplotlib.pyplot' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
    if "matplotlib.pyplot" in sys.modules:  # imported by something else in this session
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def test_35_plots_do_not_leak(tmp_path: Path) -> None:
    def live_figures() -> int:
        gc.collect()
        return sum(isinstance(o, Figure) for o in gc.get_objects())

    fig = draw_replayed(synthetic(), [])
    ref = weakref.ref(fig)
    del fig
    gc.collect()
    assert ref() is None  # nothing (no pyplot registry) keeps a drawn figure alive

    before = live_figures()
    replayed = synthetic(n=120)
    for k in range(35):
        plot_replayed(replayed, [], tmp_path / f"{k}.png")
    assert live_figures() <= before
    assert len(list(tmp_path.glob("*.png"))) == 35
