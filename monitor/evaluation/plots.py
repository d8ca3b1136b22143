"""Figures of replayed series: values, prediction band, labelled windows and alerts.

One PNG per series, drawn the way analysts draw anomaly-detection results:

* **top panel** (70 % of the height): the values as a thin dark line, the detector's
  expected value, its prediction band ``lower..upper`` shaded, the labelled anomaly
  windows shaded in a light colour across the panel, the detected anomalies
  (``alert``) as red points on the values, and the probation period (if given) hatched
  grey;
* **bottom panel** (same time axis): the anomaly score against its threshold (dashed),
  alerts as red markers on the score, y from 0 to 1.

One legend for both panels sits above the top panel, outside the data. Figures are
:class:`matplotlib.figure.Figure` objects rendered by the Agg canvas directly: pyplot
is never imported, so no global figure registry holds them and nothing needs a display.

Top-panel y-limits (see :func:`robust_limits`) are robust, so a few huge spikes do not
flatten the band into a line: they start from the 0.5..99.5 percentiles of the values,
may widen to the 0.5..99.5 percentiles of the band by at most half of that value
range on either side (early, untrained bands can be very wide), always include the
values at alerts, and get a 5 % margin. Values outside the limits are drawn as short
grey ticks on the panel's edge (legend "beyond y-range (N)"), so clipping is visible.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter, FuncFormatter, ScalarFormatter

from monitor.evaluation.nab import probation_length
from monitor.evaluation.replay import Replayed

__all__ = [
    "ALERT_GID",
    "PROBATION_GID",
    "WINDOW_GID",
    "draw_replayed",
    "plot_all",
    "plot_replayed",
    "robust_limits",
]

FIGSIZE = (14.0, 6.0)
"""Figure size in inches."""
DPI = 110
"""Resolution of the PNGs (14 x 6 in at 110 dpi = 1540 x 660 px)."""
VALUE_PERCENTILES = (0.5, 99.5)
"""Percentiles of values and band that bound the top panel's y-range."""
BAND_REACH = 0.5
"""How far the band may widen the y-range beyond the values', as a share of their range."""
MARGIN = 0.05
"""Margin added on both sides of the top panel's y-range, as a share of the range."""

WINDOW_GID = "labelled-window"
"""``gid`` of the shaded labelled-window patches (one per window and panel)."""
ALERT_GID = "alerts"
"""``gid`` of the red alert scatter (one per panel, one offset per alert)."""
PROBATION_GID = "probation"
"""``gid`` of the probation patch (one per panel)."""

_VALUE_COLOUR = "#2b2b2b"
_EXPECTED_COLOUR = "#1b9e77"
_BAND_COLOUR = "#6fa8dc"
_WINDOW_COLOUR = "#f6d55c"
_ALERT_COLOUR = "#d62728"
_SCORE_COLOUR = "#4b4b8f"
_CLIPPED_COLOUR = "#808080"


def _naive_utc(moments: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Timezone-aware moments as naive UTC; naive ones unchanged."""
    if moments.tz is not None:
        return moments.tz_convert("UTC").tz_localize(None)
    return moments


def _moments(timestamps: pd.Series | Sequence[pd.Timestamp]) -> pd.DatetimeIndex:
    """Parsed timestamps, naive (zoned ones converted to UTC)."""
    return _naive_utc(pd.DatetimeIndex(pd.to_datetime(timestamps)))


def _date_numbers(timestamps: pd.Series | Sequence[pd.Timestamp]) -> np.ndarray:
    """Matplotlib date numbers (days since the epoch) of parsed timestamps."""
    moments = _moments(timestamps).to_numpy(dtype="datetime64[ns]")
    return np.asarray(mdates.date2num(moments), dtype=float)


def robust_limits(
    values: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    alert: np.ndarray,
) -> tuple[float, float]:
    """Y-limits of the top panel that keep the band readable despite spikes.

    Parameters
    ----------
    values, lower, upper
        The series and its prediction band, row by row (NaN ignored).
    alert
        Boolean per row; the values at alerts are always inside the limits.

    Returns
    -------
    tuple of float
        ``(bottom, top)``, ``bottom < top``.

    Notes
    -----
    Start from the ``VALUE_PERCENTILES`` of the values; widen to the same percentiles
    of the band, but by at most ``BAND_REACH`` times the values' range on either side
    (an untrained detector's band can be far wider than the data); widen to include
    every alerted value; finally add ``MARGIN`` of the range on both sides. A constant
    series gets a range of 5 % of its magnitude (or 1); the range is never narrower than
    the values' own percentile range (a hair-thin band is not blown up to fill the panel).

    Examples
    --------
    >>> v = np.r_[np.zeros(999), 1e6]
    >>> bottom, top = robust_limits(v, v - 1, v + 1, np.zeros(1000, dtype=bool))
    >>> top < 10
    True
    >>> robust_limits(v, v - 1, v + 1, v > 0)[1] > 1e6
    True
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    v_lo, v_hi = (float(x) for x in np.percentile(finite, VALUE_PERCENTILES))
    span = v_hi - v_lo
    if span <= 0:
        span = 0.05 * abs(v_hi) or 1.0
    bottom, top = v_lo, v_hi
    low_band = lower[np.isfinite(lower)]
    high_band = upper[np.isfinite(upper)]
    if low_band.size:
        b_lo = float(np.percentile(low_band, VALUE_PERCENTILES[0]))
        bottom = min(bottom, max(b_lo, v_lo - BAND_REACH * span))
    if high_band.size:
        b_hi = float(np.percentile(high_band, VALUE_PERCENTILES[1]))
        top = max(top, min(b_hi, v_hi + BAND_REACH * span))
    flagged = values[alert.astype(bool) & np.isfinite(values)]
    if flagged.size:
        bottom = min(bottom, float(flagged.min()))
        top = max(top, float(flagged.max()))
    if top - bottom < span:  # e.g. a constant series inside a hair-thin band
        middle = (top + bottom) / 2
        bottom, top = middle - span / 2, middle + span / 2
    margin = MARGIN * (top - bottom)
    return bottom - margin, top + margin


def _value_formatter(magnitude: float) -> Formatter:
    """Tick labels without an offset or multiplier text (which would hit the legend).

    Plain numbers below a million, else scaled with an SI suffix (``"250M"``).
    """
    for power, suffix in ((12, "T"), (9, "G"), (6, "M")):
        if magnitude >= 10.0**power:
            scale = 10.0**power
            return FuncFormatter(lambda x, _pos, s=scale, u=suffix: f"{x / s:g}{u}")
    plain = ScalarFormatter(useOffset=False)
    plain.set_scientific(False)
    return plain


def _default_title(replayed: Replayed, windows: Sequence[tuple[pd.Timestamp, pd.Timestamp]]) -> str:
    """``name: N rows, A alerts (I in windows), W labelled windows (D detected)``."""
    t = _date_numbers(replayed.series.timestamps)
    alerted = t[replayed.alert.astype(bool)]
    in_windows = 0
    detected = 0
    for start, end in windows:
        lo, hi = _date_numbers([start, end])
        inside = int(np.count_nonzero((alerted >= lo) & (alerted <= hi)))
        in_windows += inside
        detected += inside > 0
    return (
        f"{replayed.series.name}: {len(t):,} rows, {_count(alerted.size, 'alert')} "
        f"({in_windows} in windows), {_count(len(windows), 'labelled window')} "
        f"({detected} detected)"
    )


def _count(n: int, noun: str) -> str:
    """``"1 alert"``, ``"2 alerts"``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _shade_windows(
    axes: Axes, windows: Sequence[tuple[pd.Timestamp, pd.Timestamp]], label: bool
) -> None:
    """One light span per labelled window, behind the data."""
    for k, (start, end) in enumerate(windows):
        lo, hi = _date_numbers([start, end])
        axes.axvspan(
            lo,
            hi,
            facecolor=_WINDOW_COLOUR,
            alpha=0.35,
            linewidth=0,
            zorder=0,
            gid=WINDOW_GID,
            label="labelled window" if label and k == 0 else "_nolegend_",
        )


def _shade_probation(axes: Axes, t: np.ndarray, rows: int, label: bool) -> None:
    """Hatched grey span over the first ``rows`` rows."""
    end = t[min(rows, len(t) - 1)]
    axes.axvspan(
        t[0],
        end,
        facecolor="#d9d9d9",
        edgecolor="#a6a6a6",
        hatch="//",
        alpha=0.45,
        linewidth=0,
        zorder=0,
        gid=PROBATION_GID,
        label=f"probation ({rows:,} rows)" if label else "_nolegend_",
    )


def draw_replayed(
    replayed: Replayed,
    windows: Sequence[tuple[pd.Timestamp, pd.Timestamp]],
    title: str | None = None,
    probation_rows: int | None = None,
) -> Figure:
    """Draw one replayed series on a new Agg-backed figure (not saved, not registered).

    Parameters
    ----------
    replayed
        The per-row outcome of one series.
    windows
        Its labelled anomaly windows ``(start, end)``, inclusive; may be empty.
    title
        Figure title; default: the series name with row, alert and window counts.
    probation_rows
        Leading rows to mark as probation (e.g. :func:`~monitor.evaluation.nab.probation_length`);
        ``None`` or 0 marks none.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes, ``fig.axes[0]`` (values) and ``fig.axes[1]`` (score). Labelled
        windows are patches with ``gid == WINDOW_GID``, alerts a scatter with
        ``gid == ALERT_GID``. Nothing refers to the figure once the caller drops it.

    Raises
    ------
    ValueError
        If the series has no rows or its arrays disagree in length.
    """
    series = replayed.series
    n = len(series.values)
    if n == 0:
        raise ValueError(f"{series.name}: nothing to plot, the series has no rows")
    for label in ("score", "alert", "expected", "lower", "upper", "threshold"):
        if len(getattr(replayed, label)) != n:
            raise ValueError(
                f"{series.name}: {label} has {len(getattr(replayed, label))} rows, not {n}"
            )
    t = _date_numbers(series.timestamps)
    values = np.asarray(series.values, dtype=float)
    alert = np.asarray(replayed.alert, dtype=bool)
    lower = np.asarray(replayed.lower, dtype=float)
    upper = np.asarray(replayed.upper, dtype=float)

    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 1, height_ratios=(7, 3))
    top: Axes = fig.add_subplot(grid[0])
    bottom: Axes = fig.add_subplot(grid[1], sharex=top)

    # --- top panel: values, expected, band, windows, alerts, probation
    _shade_windows(top, windows, label=True)
    if probation_rows:
        _shade_probation(top, t, probation_rows, label=True)
    top.fill_between(
        t,
        lower,
        upper,
        facecolor=_BAND_COLOUR,
        alpha=0.45,
        linewidth=0,
        zorder=1,
        label="prediction band",
    )
    top.plot(t, values, color=_VALUE_COLOUR, linewidth=0.6, zorder=2, label="value")
    top.plot(
        t,
        replayed.expected,
        color=_EXPECTED_COLOUR,
        linewidth=0.8,
        alpha=0.9,
        zorder=3,
        label="expected",
    )
    top.scatter(
        t[alert],
        values[alert],
        s=22,
        color=_ALERT_COLOUR,
        edgecolors="white",
        linewidths=0.5,
        zorder=5,
        clip_on=False,
        gid=ALERT_GID,
        label="alert",
    )
    y_lo, y_hi = robust_limits(values, lower, upper, alert)
    top.set_ylim(y_lo, y_hi)
    above = values > y_hi
    below = values < y_lo
    if above.any() or below.any():
        top.scatter(
            np.r_[t[above], t[below]],
            np.r_[np.full(above.sum(), y_hi), np.full(below.sum(), y_lo)],
            marker="|",
            s=40,
            color=_CLIPPED_COLOUR,
            clip_on=False,
            zorder=4,
            label=f"beyond y-range ({int(above.sum() + below.sum())})",
        )
    top.yaxis.set_major_formatter(_value_formatter(max(abs(y_lo), abs(y_hi))))
    top.set_ylabel("value")
    top.grid(True, color="#e6e6e6", linewidth=0.6, zorder=-1)
    top.tick_params(labelbottom=False)

    # --- bottom panel: score against threshold
    _shade_windows(bottom, windows, label=False)
    if probation_rows:
        _shade_probation(bottom, t, probation_rows, label=False)
    bottom.plot(t, replayed.score, color=_SCORE_COLOUR, linewidth=0.7, zorder=2, label="score")
    bottom.plot(
        t,
        replayed.threshold,
        color="black",
        linestyle="--",
        linewidth=0.9,
        drawstyle="steps-post",
        zorder=3,
        label="threshold",
    )
    bottom.scatter(
        t[alert],
        np.asarray(replayed.score, dtype=float)[alert],
        s=22,
        marker="v",
        color=_ALERT_COLOUR,
        zorder=5,
        clip_on=False,
        gid=ALERT_GID,
        label="_nolegend_",
    )
    bottom.set_ylim(0.0, 1.0)
    bottom.set_ylabel("score")
    bottom.grid(True, color="#e6e6e6", linewidth=0.6, zorder=-1)
    span = t[-1] - t[0] if t[-1] > t[0] else 1.0
    bottom.set_xlim(t[0] - 0.004 * span, t[-1] + 0.004 * span)  # edge markers stay whole

    moments = _moments(series.timestamps)
    first, last = (moments[i].strftime("%Y-%m-%d %H:%M") for i in (0, -1))
    bottom.set_xlabel(f"time: {first} to {last}", fontsize=8.5, color="#555555")
    locator = mdates.AutoDateLocator(minticks=5, maxticks=12)
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))

    # --- one legend above the top panel, outside the data
    handles, labels = top.get_legend_handles_labels()
    more, more_labels = bottom.get_legend_handles_labels()
    order = ["value", "expected", "prediction band", "labelled window", "alert"]
    ranked = sorted(
        zip(handles + more, labels + more_labels, strict=True),
        key=lambda hl: order.index(hl[1]) if hl[1] in order else len(order),
    )
    top.legend(
        [h for h, _ in ranked],
        [lab for _, lab in ranked],
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        ncol=len(ranked),
        frameon=False,
        fontsize=8.5,
        handlelength=1.8,
        columnspacing=1.4,
        borderaxespad=0.2,
    )
    fig.suptitle(title if title is not None else _default_title(replayed, windows), fontsize=11)
    fig.tight_layout(h_pad=0.3)
    return fig


def plot_replayed(
    replayed: Replayed,
    windows: Sequence[tuple[pd.Timestamp, pd.Timestamp]],
    path: Path,
    title: str | None = None,
    probation_rows: int | None = None,
) -> Path:
    """Render one replayed series to a PNG (about 1540 x 660 px).

    Parameters
    ----------
    replayed
        The per-row outcome of one series (:func:`monitor.evaluation.replay.replay`).
    windows
        Its labelled anomaly windows ``(start, end)``, inclusive; may be empty.
    path
        Where to write the PNG; parent directories are created.
    title
        Figure title; default: the series name with row, alert and window counts.
    probation_rows
        Leading rows to mark as probation; ``None`` or 0 marks none.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import tempfile
    >>> from monitor.evaluation.replay import Replayed, Series
    >>> stamps = pd.Series(pd.date_range("2024-01-01", periods=50, freq="5min").astype(str))
    >>> values = np.sin(np.arange(50) / 4.0)
    >>> values[30] = 5.0
    >>> alert = np.zeros(50, dtype=bool)
    >>> alert[30] = True
    >>> score = np.where(alert, 0.9, 0.2)
    >>> r = Replayed(Series("synthetic/sine.csv", stamps, values), score, alert,
    ...              values * 0 + 0.0, values * 0 - 1.0, values * 0 + 1.0, np.full(50, 0.5))
    >>> window = [(pd.Timestamp("2024-01-01 02:20"), pd.Timestamp("2024-01-01 02:40"))]
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = plot_replayed(r, window, Path(tmp) / "sine.png", probation_rows=7)
    ...     (out.name, out.stat().st_size > 10_000)
    ('sine.png', True)
    """
    fig = draw_replayed(replayed, windows, title=title, probation_rows=probation_rows)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=DPI, format="png")
    finally:
        fig.clear()
    return path


def plot_all(
    replayed_list: Sequence[Replayed],
    windows_by_name: Mapping[str, Sequence[tuple[pd.Timestamp, pd.Timestamp]]],
    out_dir: Path,
    *,
    probation: bool = True,
) -> list[Path]:
    """Render every replayed series to ``<out_dir>/<category>/<file stem>.png``.

    Parameters
    ----------
    replayed_list
        Replayed series named ``<category>/<file>.csv``.
    windows_by_name
        Labelled windows by series name (:func:`monitor.evaluation.nab.load_windows`);
        a series missing from it is drawn with no windows.
    out_dir
        Root directory of the PNGs.
    probation
        Mark NAB's probation period (:func:`~monitor.evaluation.nab.probation_length`).

    Returns
    -------
    list of pathlib.Path
        The PNGs written, in the order of ``replayed_list``.
    """
    paths = []
    for replayed in replayed_list:
        name = Path(replayed.series.name)
        category = name.parent.name or "uncategorised"
        rows = probation_length(len(replayed.series.values)) if probation else None
        paths.append(
            plot_replayed(
                replayed,
                windows_by_name.get(replayed.series.name, []),
                Path(out_dir) / category / f"{name.stem}.png",
                probation_rows=rows,
            )
        )
    return paths
