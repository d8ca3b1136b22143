"""Resident memory per stream with every default detector, measured in this (fresh) process.

Builds a detector with the default configuration (its arrays start at 1,024 rows and
double as streams arrive, as in the daemon), then feeds ``--points`` points of each of
``--streams`` streams of :class:`bench_data.Fleet` in batches of ``--batch`` decoded points,
as the daemon's polls do. The figure is the growth of the resident set size from just before
the detector is built to the end (after a garbage collection), divided by the stream count:
the model arrays, the stream table (name -> row map, keys, labels) and allocator overhead.
The figure reported (``bytes_per_stream``) is that or the model arrays allocated per stream,
whichever is larger: zero-filled arrays are mapped on first write, so pages no stream has
written yet (the half-space trees' window totals are written when a stream's first window
of 250 points completes) are not resident after a few points, but will be in a daemon
that has run a while.
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
        f"memory: {args.streams:,} streams: {max(per_stream, arrays):,.0f} bytes per stream "
        f"(resident memory growth {per_stream:,.0f}, {grown / 2**20:,.0f} MiB; model arrays "
        f"{arrays:,.0f} bytes per stream allocated, {len(detector.streams):,} streams tracked)"
    )
    print(
        json.dumps(
            {
                "streams": args.streams,
                "bytes_per_stream": max(per_stream, arrays),
                "rss_bytes_per_stream": per_stream,
                "rss_growth_bytes": grown,
                "array_bytes_per_stream": arrays,
            }
        )
    )


if __name__ == "__main__":
    main()
