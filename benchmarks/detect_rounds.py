"""Detection as the daemon runs it: rounds of one partition's streams, best of several runs.

The daemon scores a poll's points with :meth:`Detector.process_arrays` (stream rows
already known), and a poll mostly holds one partition's records, so a round holds
that partition's streams: rows spread over the whole table. This feeds ``--streams``
warm streams split over ``--partitions`` partitions (row ``i`` in partition
``i % partitions``) one partition at a time, ``--points`` points a stream a run, and
prints the best of ``--repeat`` runs in points/s and milliseconds a round. Each run
continues the streams' series (later timestamps), so nothing is dropped as late.
Streams start at staggered times (stream ``i`` gets ``i % --stagger`` points more
first, default 250, the half-space trees' window), so their windows complete spread
over the runs, as in a fleet whose streams did not all start at once.

Meant for comparing two checkouts of the detection code on a noisy machine: run it
from each in turn, a few times, and compare the best figures. ``--line-profile`` with
functions by dotted name (``monitor.anomaly.hst.HalfSpaceTrees.score_learn``) prints
their time line by line over the runs (needs ``pip install line_profiler``).

Run: ``.venv/bin/python benchmarks/detect_rounds.py [--streams 10000] [--partitions 4]``
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from typing import Any

import numpy as np

from monitor.config import MonitorConfig
from monitor.detection import Detector

T0 = 1_700_000_000.0
STEP = 60.0
DAY_POINTS = 1_440


class Fleet:
    """Streams with a daily cycle, noise and rare spikes; ``values(t)`` is step ``t``."""

    def __init__(self, streams: int, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.level = self.rng.uniform(10, 1000, streams)

    def values(self, t: int) -> np.ndarray:
        cycle = 1 + 0.1 * np.sin(2 * np.pi * t / DAY_POINTS)
        values = self.level * cycle + self.rng.normal(0, 0.01, len(self.level)) * self.level
        values[self.rng.random(len(values)) < 0.001] *= 3
        return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--points", type=int, default=25, help="points a stream in a run")
    parser.add_argument("--warm", type=int, default=30, help="untimed points a stream first")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--stagger", type=int, default=250, help="0: every stream starts at once")
    parser.add_argument("--line-profile", nargs="*", default=[], metavar="MODULE.FUNCTION")
    args = parser.parse_args()
    profiler = line_profiler(args.line_profile)

    detector = Detector(MonitorConfig.model_validate({"detector": {"warmup": 20}}), args.streams)
    keys = [f"bench{{s={s}}}" for s in range(args.streams)]
    identities = [("bench", (("s", str(s)),)) for s in range(args.streams)]
    rows, created = detector.streams.lookup(keys, identities)
    detector._admit(created)
    members = [
        np.flatnonzero(np.arange(args.streams) % args.partitions == p)
        for p in range(args.partitions)
    ]
    fleet = Fleet(args.streams)
    total = args.stagger + args.warm + args.points * args.repeat
    steps = [(np.full(args.streams, T0 + STEP * t), fleet.values(t)) for t in range(total)]
    ahead = np.arange(args.streams) % max(args.stagger, 1)

    def feed(first: int, last: int) -> None:
        for t, (ts, values) in enumerate(steps[first:last], first):
            for member in members:
                if t < args.stagger:  # only the streams that started before this step
                    member = member[ahead[member] >= args.stagger - t]
                detector.process_arrays(rows[member], ts[member], values[member])

    feed(0, args.stagger + args.warm)
    best = np.inf
    if profiler is not None:
        profiler.enable()
    for run in range(args.repeat):
        first = args.stagger + args.warm + run * args.points
        started = time.perf_counter()
        feed(first, first + args.points)
        best = min(best, time.perf_counter() - started)
    if profiler is not None:
        profiler.disable()
        profiler.print_stats(stripzeros=True)
    rounds = args.points * args.partitions
    print(
        f"{args.streams * args.points / best:,.0f} points/s, {best / rounds * 1000:.3f} ms a "
        f"round of {args.streams // args.partitions:,} streams (best of {args.repeat} runs of "
        f"{args.points} points a stream)"
    )


def line_profiler(names: list[str]) -> Any:
    """A line profiler of the functions named ``package.module.Class.function``, or None."""
    if not names:
        return None
    try:
        from line_profiler import LineProfiler
    except ImportError:
        sys.exit("--line-profile needs line_profiler: .venv/bin/pip install line_profiler")
    profiler = LineProfiler()
    for name in names:
        parts = name.split(".")
        for split in range(len(parts) - 1, 0, -1):  # the longest importable module prefix
            try:
                target: Any = importlib.import_module(".".join(parts[:split]))
            except ImportError:
                continue
            for attribute in parts[split:]:
                target = getattr(target, attribute)
            profiler.add_function(target)
            break
        else:
            sys.exit(f"cannot find {name}")
    return profiler


if __name__ == "__main__":
    main()
