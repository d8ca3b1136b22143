"""Resident memory per stream with every default detector, measured in this (fresh) process.

Builds a detector with the default configuration (its arrays start at 1,024 rows and
double as streams arrive, as in the daemon), then feeds ``--points`` points of each of
``--streams`` streams of :class:`bench_data.Fleet` in batches of ``--batch`` decoded points,
as the daemon's polls do. The figure is the growth of the resident set size from just before
the detector is built to the end (after a garbage collection), divided by the stream count:
the model arrays, the stream table (name -> row map, keys, labels) and allocator overhead.
Prints one line, then the figures as JSON on the last line. Run it in a fresh process per
stream count (``pipeline.py`` does), since freed memory is not always returned to the system.

Run: ``.venv/bin/python benchmarks/memory_per_stream.py --streams 100000``
"""

from __future__ import annotations

import argparse
import gc
import json

from bench_data import Fleet, rss_bytes

from monitor.config import MonitorConfig
from monitor.detection import Detector
from monitor.records import Point


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=5, help="points per stream")
    parser.add_argument("--batch", type=int, default=5_000, help="points per batch (a poll)")
    args = parser.parse_args()

    config = MonitorConfig.model_validate(
        {"streams": {"max_streams": max(args.streams, MonitorConfig().streams.max_streams)}}
    )
    fleet = Fleet(args.streams)
    gc.collect()
    before = rss_bytes()
    detector = Detector(config)
    for t in range(args.points):
        values = fleet.values(t)[0].tolist()
        ts = fleet.ts(t)
        for start in range(0, args.streams, args.batch):
            stop = min(start + args.batch, args.streams)
            points = [
                Point(fleet.names[i], fleet.labels[i], ts, values[i]) for i in range(start, stop)
            ]
            detector.process(points)
    del points
    gc.collect()
    grown = rss_bytes() - before
    per_stream = grown / args.streams
    arrays = detector.nbytes() / args.streams
    print(
        f"memory: {args.streams:,} streams: {per_stream:,.0f} bytes per stream of resident memory "
        f"({grown / 2**20:,.0f} MiB; model arrays {arrays:,.0f} bytes per stream allocated, "
        f"{len(detector.streams):,} streams tracked)"
    )
    print(
        json.dumps(
            {
                "streams": args.streams,
                "rss_bytes_per_stream": per_stream,
                "rss_growth_bytes": grown,
                "array_bytes_per_stream": arrays,
            }
        )
    )


if __name__ == "__main__":
    main()
