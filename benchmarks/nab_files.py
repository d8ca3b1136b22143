"""Where a detector gains and loses on NAB: one line per file and per labelled window.

Reads a results folder written by ``monitor evaluate`` (NAB's layout,
``<out>/<category>/monitor_<file>.csv``), finds the corpus-wide optimised threshold
of the profile (as ``evaluate`` does) unless ``--threshold`` is given, and prints

* per file, worst first: raw NAB score, windows detected of scored, the reward of
  the detected windows, the cost and count of the detections outside windows;
* with ``--windows``, per window: its rows, its highest score and where, and the
  row of its first detection (``-`` when missed).

Run: ``.venv/bin/python benchmarks/nab_files.py results [--profile standard] [--windows]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from monitor.evaluation import nab

NAB = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nab"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="folder written by monitor evaluate --out")
    parser.add_argument("--labels", type=Path, default=NAB / "labels" / "combined_windows.json")
    parser.add_argument("--profile", choices=sorted(nab.NAB_PROFILES), default="standard")
    parser.add_argument("--threshold", type=float, help="default: the optimised one")
    parser.add_argument("--windows", action="store_true", help="one line per window too")
    args = parser.parse_args()

    windows = nab.load_windows(args.labels)
    profile = nab.NAB_PROFILES[args.profile]
    files = {}
    for path in sorted(args.results.glob("*/monitor_*.csv")):
        name = f"{path.parent.name}/{path.name.removeprefix('monitor_')}"
        files[name] = pd.read_csv(path)
    if not files:
        parser.error(f"no <category>/monitor_<file>.csv under {args.results}")
    threshold = args.threshold
    if threshold is None:
        corpus = [
            (f.timestamp, f.anomaly_score.to_numpy(), windows.get(n, [])) for n, f in files.items()
        ]
        threshold, _ = nab.optimise_threshold(corpus, profile)
    print(f"profile {args.profile}, threshold {threshold:.4f}")

    rows = []
    for name, frame in files.items():
        detections = frame.anomaly_score.to_numpy() >= threshold
        score = nab.score_file(frame.timestamp, detections, windows.get(name, []), profile)
        rows.append((score.raw, name, score))
    print(f"{'raw':>7}  {'windows':>7}  {'reward':>6}  {'FP cost':>7}  {'FPs':>4}  file")
    for raw, name, s in sorted(rows, key=lambda r: r[0]):
        print(
            f"{raw:7.2f}  {s.detected_windows:>3}/{s.windows:<3}  {s.tp_score:6.2f}  "
            f"{s.fp_score:7.2f}  {s.fp:>4}  {name}"
        )
    scores = [s for _, _, s in rows]
    print(
        f"total: raw {sum(s.raw for s in scores):.2f}, windows "
        f"{sum(s.detected_windows for s in scores)}/{sum(s.windows for s in scores)}, reward "
        f"{sum(s.tp_score for s in scores):.2f}, FP cost {sum(s.fp_score for s in scores):.2f} "
        f"({sum(s.fp for s in scores)} detections outside windows)"
    )
    if args.windows:
        print(f"\n{'rows':>13}  {'max':>5}  {'at':>6}  {'first':>6}  file")
        for name, frame in files.items():
            moments = pd.to_datetime(frame.timestamp)
            anomaly_scores = frame.anomaly_score.to_numpy()
            for start, end in windows.get(name, []):
                inside = np.flatnonzero(
                    (moments >= pd.Timestamp(start)) & (moments <= pd.Timestamp(end))
                )
                if not len(inside):
                    continue
                top = inside[np.argmax(anomaly_scores[inside])]
                hits = inside[anomaly_scores[inside] >= threshold]
                first = str(hits[0]) if len(hits) else "-"
                print(
                    f"{inside[0]:>6}-{inside[-1]:<6}  {anomaly_scores[top]:5.3f}  {top:>6}  "
                    f"{first:>6}  {name}"
                )


if __name__ == "__main__":
    main()
