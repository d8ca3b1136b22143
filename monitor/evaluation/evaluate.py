"""``monitor evaluate``: replay labelled history, score it with NAB's rules, report.

Two NAB figures per profile: with the score threshold optimised over the corpus (how
the public NAB scoreboard is made) and with the daemon's own adaptive decisions (what
a user gets in production). Also window-level precision/recall/F1, detection delay
and false alerts per day on series without anomalies, overall and per category.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from monitor.config.schema import MonitorConfig
from monitor.evaluation import nab
from monitor.evaluation.replay import Replayed, Series, find_series, replay

PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
SHORT = {"standard": "standard", "reward_low_FP_rate": "low_fp", "reward_low_FN_rate": "low_fn"}


@dataclass
class Report:
    """Everything an evaluation measured; ``metrics`` is flat, ready for tracking."""

    files: int
    rows: int
    runtime_seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    categories: list[str] = field(default_factory=list)

    def render(self) -> str:
        """A readable summary table."""
        m = self.metrics
        lines = [
            f"NAB evaluation: {self.files} files, {self.rows:,} rows, "
            f"replayed and scored in {self.runtime_seconds:.1f} s",
            "",
            f"{'profile':<20} {'optimised threshold':>20} {'(threshold)':>12} "
            f"{'daemon decisions':>17}",
        ]
        for profile in PROFILES:
            key = SHORT[profile]
            lines.append(
                f"{profile:<20} {m[f'nab.{key}.optimized']:>20.1f} "
                f"{self.thresholds[profile]:>12.4f} {m[f'nab.{key}.daemon']:>17.1f}"
            )
        lines += [
            "",
            "daemon decisions, window level: "
            f"precision {m['window.precision']:.3f}  recall {m['window.recall']:.3f}  "
            f"F1 {m['window.f1']:.3f}",
            f"detection delay: mean {m['delay.mean_rows']:.1f} rows "
            f"({m['delay.mean_minutes']:.0f} min), median {m['delay.median_rows']:.1f} rows",
            f"false alerts per day on series without anomalies: "
            f"{m['false_alerts_per_day.no_anomaly']:.3f}",
            "",
            f"{'category':<24} {'files':>5} "
            + " ".join(f"{SHORT[p] + ' opt/daemon':>20}" for p in PROFILES),
        ]
        for category in self.categories:
            quiet = m.get(f"{category}/false_alerts_per_day")
            if quiet is not None:
                lines.append(
                    f"{category:<24} {int(m[f'{category}/files']):>5}   no labelled anomalies: "
                    f"{quiet:.3f} false alerts per day"
                )
                continue
            cells = []
            for profile in PROFILES:
                key = SHORT[profile]
                opt = m.get(f"{category}/nab.{key}.optimized", float("nan"))
                own = m.get(f"{category}/nab.{key}.daemon", float("nan"))
                cells.append(f"{opt:>10.1f} /{own:>8.1f}")
            lines.append(f"{category:<24} {int(m[f'{category}/files']):>5} " + " ".join(cells))
        return "\n".join(lines)


def results_frame(replayed: Replayed, windows: Sequence[nab.Window]) -> pd.DataFrame:
    """NAB's results layout for one series, one row per data row, plus the daemon's decision."""
    moments = pd.to_datetime(replayed.series.timestamps)
    label = np.zeros(len(moments), dtype=np.int64)
    for start, end in windows:
        label[((moments >= start) & (moments <= end)).to_numpy()] = 1
    return pd.DataFrame(
        {
            "timestamp": replayed.series.timestamps.to_numpy(),
            "value": replayed.series.values,
            "anomaly_score": replayed.score,
            "label": label,
            "alert": replayed.alert.astype(np.int64),
        }
    )


def write_results(
    replayed: Sequence[Replayed], windows: dict[str, list[nab.Window]], out_dir: Path
) -> list[Path]:
    """``<out>/<category>/monitor_<file>.csv`` for every series (NAB's results layout)."""
    paths = []
    for item in replayed:
        category, filename = item.series.name.split("/", 1)
        path = out_dir / category / f"monitor_{filename}"
        path.parent.mkdir(parents=True, exist_ok=True)
        results_frame(item, windows.get(item.series.name, [])).to_csv(path, index=False)
        paths.append(path)
    return paths


def score(
    replayed: Sequence[Replayed],
    windows: dict[str, list[nab.Window]],
    profiles: dict[str, nab.NabProfile],
) -> tuple[dict[str, float], dict[str, float], list[str]]:
    """Every metric of the report (flat names), the optimised thresholds, the categories."""
    metrics: dict[str, float] = {}
    thresholds: dict[str, float] = {}

    def files_of(items: Sequence[Replayed]) -> list[nab.NabFile]:
        return [(r.series.timestamps, r.score, windows.get(r.series.name, [])) for r in items]

    everything = files_of(replayed)
    for name in PROFILES:
        profile = profiles[name]
        threshold, _ = nab.optimise_threshold(everything, profile)
        thresholds[name] = threshold
        key = SHORT[name]
        metrics[f"nab.{key}.optimized"] = nab.corpus_score(
            everything, threshold, profile
        ).normalised
        metrics[f"nab.{key}.daemon"] = nab.corpus_score(
            everything, [r.alert for r in replayed], profile
        ).normalised
        metrics[f"threshold.{key}"] = threshold
    pooled = nab.corpus_window_metrics(everything, [r.alert for r in replayed])
    metrics["window.precision"] = pooled.precision
    metrics["window.recall"] = pooled.recall
    metrics["window.f1"] = pooled.f1
    metrics["window.detected"] = pooled.detected_windows
    metrics["window.total"] = pooled.windows
    metrics["window.false_groups"] = pooled.fp_groups
    metrics["delay.mean_rows"] = pooled.mean_delay_rows
    metrics["delay.median_rows"] = pooled.median_delay_rows
    mean_delay = pooled.mean_delay_time
    metrics["delay.mean_minutes"] = (
        mean_delay / pd.Timedelta(minutes=1) if mean_delay is not None else float("nan")
    )
    quiet = [r for r in replayed if not windows.get(r.series.name)]
    metrics["false_alerts_per_day.no_anomaly"] = (
        nab.pooled_false_alerts_per_day([(r.series.timestamps, r.alert) for r in quiet])
        if quiet
        else float("nan")
    )
    categories = sorted({r.series.name.split("/", 1)[0] for r in replayed})
    for category in categories:
        members = [r for r in replayed if r.series.name.startswith(category + "/")]
        subset = files_of(members)
        metrics[f"{category}/files"] = len(members)
        if not any(windows.get(r.series.name) for r in members):
            metrics[f"{category}/false_alerts_per_day"] = nab.pooled_false_alerts_per_day(
                [(r.series.timestamps, r.alert) for r in members]
            )
            continue
        for name in PROFILES:
            key = SHORT[name]
            profile = profiles[name]
            metrics[f"{category}/nab.{key}.optimized"] = nab.corpus_score(
                subset, thresholds[name], profile
            ).normalised
            metrics[f"{category}/nab.{key}.daemon"] = nab.corpus_score(
                subset, [r.alert for r in members], profile
            ).normalised
    return metrics, thresholds, categories


def evaluate(
    config: MonitorConfig,
    data_dir: Path,
    labels: Path,
    out_dir: Path | None = None,
    profiles_path: Path | None = None,
    progress: bool = True,
) -> tuple[Report, list[Replayed], dict[str, list[nab.Window]]]:
    """Replay every labelled CSV under ``data_dir`` and score it; write results when asked."""
    started = time.perf_counter()
    series: list[Series] = find_series(data_dir)
    if not series:
        raise FileNotFoundError(f"no <category>/<file>.csv under {data_dir}")
    windows = nab.load_windows(labels)
    if profiles_path is None:
        candidate = labels.parent.parent / "config" / "profiles.json"
        profiles_path = candidate if candidate.exists() else None
    profiles = nab.load_profiles(profiles_path) if profiles_path else dict(nab.NAB_PROFILES)
    total = sum(len(s.values) for s in series)
    bar = _ProgressBar(total, f"replaying {len(series)} series") if progress else None
    replayed = replay(config, series, progress=bar.advance if bar else None)
    if bar:
        bar.close()
    metrics, thresholds, categories = score(replayed, windows, profiles)
    if out_dir is not None:
        write_results(replayed, windows, out_dir)
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    runtime = time.perf_counter() - started
    metrics["runtime_seconds"] = runtime
    report = Report(len(series), total, runtime, metrics, thresholds, categories)
    return report, replayed, windows


class _ProgressBar:
    """A one-line progress bar on stderr (rows replayed)."""

    def __init__(self, total: int, label: str, write: Callable[[str], object] | None = None):
        self.total = max(total, 1)
        self.done = 0
        self.label = label
        self.write = write or sys.stderr.write
        self.started = time.perf_counter()

    def advance(self, rows: int) -> None:
        self.done += rows
        share = self.done / self.total
        filled = int(share * 30)
        elapsed = time.perf_counter() - self.started
        self.write(
            f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] "
            f"{share:6.1%} {self.done:,}/{self.total:,} rows {elapsed:5.1f}s"
        )

    def close(self) -> None:
        self.write("\n")
