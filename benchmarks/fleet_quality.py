"""Detection quality on the demo's synthetic fleet (planted spikes, level shifts, dropouts).

Feeds S synthetic streams through the detector exactly as the daemon would (batches
as rounds, config from a YAML file) and prints how many planted anomalies got an
event within 5 points of their start, and the false alerts on everything else.

Run: ``.venv/bin/python benchmarks/fleet_quality.py [--config configs/demo.yaml]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

from monitor.config import load_config
from monitor.demo.feed import feed_order
from monitor.demo.synthetic import make_fleet
from monitor.detection import Detector
from monitor.records import Point

DETECTION_DELAY = 5
"""Points after an anomaly's start within which an event counts as detecting it."""
TAIL = 30
"""Points after an anomaly's end still counted as part of it (recovery)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/demo.yaml"))
    parser.add_argument("--streams", type=int, default=300)
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--season", type=int, default=144)
    parser.add_argument("--batch", type=int, default=10_000)
    args = parser.parse_args()

    config = load_config(args.config)
    fleet = make_fleet(args.streams, args.points, seed=7, season_length=args.season)
    detector = Detector(config)
    series_index, point_index = feed_order(fleet)
    points = [
        Point(fleet[s].name, fleet[s].labels, float(fleet[s].ts[p]), float(fleet[s].values[p]))
        for s, p in zip(series_index.tolist(), point_index.tolist(), strict=True)
    ]
    flagged: list[tuple[int, int]] = []
    for start in range(0, len(points), args.batch):
        scored = detector.process(points[start : start + args.batch]).scored
        for i in scored.index[scored.anomalous] + start:
            flagged.append((int(series_index[i]), int(point_index[i])))

    inside: dict[int, set[int]] = {}
    outside = 0
    for s, p in flagged:
        if any(a.start <= p < a.end + TAIL for a in fleet[s].anomalies):
            inside.setdefault(s, set()).add(p)
        else:
            outside += 1
    by_kind: dict[str, list[int]] = {}
    for s, item in enumerate(fleet):
        for anomaly in item.anomalies:
            hit = any(
                anomaly.start <= p < anomaly.start + DETECTION_DELAY for p in inside.get(s, ())
            )
            counts = by_kind.setdefault(anomaly.kind, [0, 0])
            counts[0] += hit
            counts[1] += 1
    detected = sum(c[0] for c in by_kind.values())
    planted = sum(c[1] for c in by_kind.values())
    scored_points = args.streams * (args.points - config.detector.warmup)
    print(f"streams={args.streams} points={args.points} events={len(flagged)}")
    for kind, (hit, total) in sorted(by_kind.items()):
        print(f"  {kind}: {hit}/{total} detected within {DETECTION_DELAY} points")
    print(
        f"fleet_quality: detected={detected}/{planted} false_alerts={outside} "
        f"false_alerts_per_10k_points={outside / scored_points * 1e4:.2f}"
    )


if __name__ == "__main__":
    main()
