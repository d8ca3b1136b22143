"""Throughput and memory of the detection core at 10,000 streams.

Prints, for S streams (default 10,000) fed in batches like the daemon's polls:

* decode + detect: native JSON records decoded and scored, records/s;
* detect only: points already decoded, points/s;
* bytes per stream: the model arrays, and the resident memory growth of the
  process per stream (arrays plus the name->row map and Python objects).

Run: ``.venv/bin/python benchmarks/detector_throughput.py [--streams N] [--points N]``
"""

from __future__ import annotations

import argparse
import gc
import resource
import time

import numpy as np
from bench_data import native_payload

from monitor.config import MonitorConfig
from monitor.detection import Detector
from monitor.records import Point, get_decoder


def rss_bytes() -> int:
    """Current resident set size, from /proc (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def make_points(n_streams: int, n_points: int, seed: int = 0) -> list[list[Point]]:
    """Batches of points: each batch holds the next points of every stream, like a poll."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(10, 1000, n_streams)
    season = np.sin(2 * np.pi * np.arange(n_points) / 144)
    names = [f"bench.metric_{i % 7}" for i in range(n_streams)]
    labels = [(("host", f"h-{i:05d}"),) for i in range(n_streams)]
    batches = []
    for t in range(n_points):
        values = level * (1 + 0.1 * season[t]) + rng.normal(0, 0.01, n_streams) * level
        spikes = rng.random(n_streams) < 0.001
        values[spikes] *= 3
        ts = 1_700_000_000.0 + 60.0 * t
        batches.append([Point(names[i], labels[i], ts, float(values[i])) for i in range(n_streams)])
    return batches


def encode(batch: list[Point]) -> list[bytes]:
    return [native_payload(p.name, p.ts, p.value, dict(p.labels)) for p in batch]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=60, help="points per stream")
    parser.add_argument("--warm", type=int, default=10, help="untimed points per stream first")
    args = parser.parse_args()

    config = MonitorConfig()
    batches = make_points(args.streams, args.warm + args.points)
    payloads = [encode(b) for b in batches[args.warm :]]
    gc.collect()
    before = rss_bytes()
    detector = Detector(config, capacity=args.streams)
    for batch in batches[: args.warm]:
        detector.process(batch)
    gc.collect()
    grown = rss_bytes() - before

    decode = get_decoder("native")
    started = time.perf_counter()
    records = 0
    for batch in payloads[: len(payloads) // 2]:
        points = [p for payload in batch for p in decode(payload)]
        detector.process(points)
        records += len(batch)
    decode_rate = records / (time.perf_counter() - started)

    started = time.perf_counter()
    scored = 0
    for batch in batches[args.warm + len(payloads) // 2 :]:
        scored += len(detector.process(batch).scored.index)
    detect_rate = scored / (time.perf_counter() - started)

    arrays = detector.nbytes() / args.streams
    print(f"streams={args.streams} batch={args.streams} records")
    print(f"decode+detect: {decode_rate:,.0f} records/s")
    print(f"detect only:   {detect_rate:,.0f} points/s")
    print(f"bytes per stream: arrays={arrays:,.0f} rss_growth={grown / args.streams:,.0f}")
    print(
        f"detector_bench: streams={args.streams} events_per_s={decode_rate:.0f} "
        f"detect_per_s={detect_rate:.0f} bytes_per_stream={max(arrays, grown / args.streams):.0f}"
    )


if __name__ == "__main__":
    main()
