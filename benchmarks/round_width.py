"""Detection's cost against the width of its rounds (distinct streams scored at once).

A batch is scored in rounds of distinct streams, one array operation per model step
each; a round costs a fixed part (its numpy calls) plus a part per point. The daemon's
rounds are as wide as the streams of the partitions a poll holds. This feeds a detector
of ``--streams`` warm streams the same points in batches of each ``--widths`` distinct
streams and prints points/s and milliseconds a round, then the fixed and per-point
parts fitted to them (least squares).

Run: ``.venv/bin/python benchmarks/round_width.py [--widths 10000 5000 2500 1250]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from detector_throughput import make_points

from monitor.config import MonitorConfig
from monitor.detection import Detector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--widths", type=int, nargs="+", default=[10_000, 5_000, 2_500, 1_250])
    parser.add_argument("--points", type=int, default=12, help="timed points a stream a width")
    parser.add_argument("--warm", type=int, default=10, help="untimed points a stream first")
    args = parser.parse_args()

    batches = make_points(args.streams, args.warm + args.points * len(args.widths))
    detector = Detector(MonitorConfig(), capacity=args.streams)
    for batch in batches[: args.warm]:
        detector.process(batch)
    timed = iter(batches[args.warm :])
    widths, per_round = [], []
    for width in args.widths:
        rounds = 0
        started = time.perf_counter()
        for _ in range(args.points):
            batch = next(timed)
            for start in range(0, len(batch), width):
                detector.process(batch[start : start + width])
                rounds += 1
        elapsed = time.perf_counter() - started
        widths.append(len(batch) * args.points / rounds)
        per_round.append(elapsed / rounds)
        print(
            f"width {width:>6,}: {args.streams * args.points / elapsed:>9,.0f} points/s, "
            f"{elapsed / rounds * 1000:.2f} ms a round"
        )
    per_point, fixed = np.polyfit(widths, per_round, 1)
    print(f"fit: {fixed * 1000:.2f} ms a round + {per_point * 1e6:.2f} us a point")


if __name__ == "__main__":
    main()
