"""Memory under a flood of new stream names: bounded by ``max_streams`` and idle eviction.

Feeds N distinct stream names (default 1,000,000), one point each, in batches
(default 10,000) through the detection core, with ``streams.max_streams``
(default 10,000). A simulated wall clock advances ``--step`` seconds per batch,
and after each batch the streams idle for ``--ttl`` seconds are evicted and
released, as the daemon's sweep does. Prints the live streams, the rows ever
used, the arrays' capacity (rows) and bytes, the points dropped for want of
room, and the peak resident memory of the process.

Run: ``.venv/bin/python benchmarks/stream_flood.py [--names N] [--batch N] [--max-streams N]``
"""

from __future__ import annotations

import argparse
import json
import resource
import time

from monitor.config import MonitorConfig
from monitor.detection import Detector
from monitor.records import Point


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--max-streams", type=int, default=10_000)
    parser.add_argument("--ttl", type=float, default=1.0, help="idle TTL, seconds")
    parser.add_argument("--step", type=float, default=1.0, help="clock advance per batch, s")
    args = parser.parse_args()

    config = MonitorConfig.model_validate_json(
        json.dumps({"streams": {"max_streams": args.max_streams, "idle_ttl_seconds": args.ttl}})
    )
    clock = [1_700_000_000.0]
    detector = Detector(config)
    detector.streams.clock = lambda: clock[0]
    table = detector.streams
    rss_start = peak_rss_bytes()
    started = time.perf_counter()
    dropped = evicted = most_live = most_capacity = 0
    for start in range(0, args.names, args.batch):
        stop = min(start + args.batch, args.names)
        points = [Point(f"flood_{i}", (("id", str(i)),), clock[0], 1.0) for i in range(start, stop)]
        outcome = detector.process(points)
        dropped += len(outcome.over_capacity)
        most_live = max(most_live, len(table))
        most_capacity = max(
            most_capacity, table.state.capacity, *(c.capacity for c in detector._components())
        )
        clock[0] += args.step
        rows = table.evict_idle(clock[0], args.ttl)
        detector.release(rows)
        evicted += len(rows)
    elapsed = time.perf_counter() - started
    print(
        f"names={args.names:,} batch={args.batch:,} max_streams={args.max_streams:,} "
        f"ttl={args.ttl:g}s step={args.step:g}s: {elapsed:.1f}s"
    )
    print(
        f"live now={len(table):,} most live={most_live:,} rows used={table.extent:,} "
        f"evicted={evicted:,} dropped(too_many_streams)={dropped:,}"
    )
    print(
        f"capacity: most={most_capacity:,} rows now={table.state.capacity:,} "
        f"arrays={detector.nbytes() / 2**20:.1f} MiB map entries={len(table.rows):,}"
    )
    print(
        f"peak RSS={peak_rss_bytes() / 2**20:.0f} MiB "
        f"(at start {rss_start / 2**20:.0f} MiB, after imports)"
    )


if __name__ == "__main__":
    main()
