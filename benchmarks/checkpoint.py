"""Checkpoint cost: write and restore the state of S streams split over P partitions.

Builds a detector with S warm streams (each fed ``--points`` points), then times
``--rounds`` checkpoint rounds as the daemon does them, one point learned between two:
the copy of each partition's rows (the only part that pauses the loop, one partition per
loop iteration, into arrays reused from copy to copy; with the page faults of the round,
which cost far more in a busy daemon than here) and ``CheckpointStore.save`` with fsync
(on the daemon's background thread); then one restore into a fresh detector
(``load_latest`` + ``import_streams``), and prints bytes on disk per stream.

    .venv/bin/python benchmarks/checkpoint.py --streams 10000 --partitions 12
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from monitor.config import MonitorConfig
from monitor.daemon.partitions import model_signature
from monitor.detection import Detector
from monitor.state.checkpoints import CheckpointStore


def warm_detector(config: MonitorConfig, streams: int, partitions: int, points: int) -> Detector:
    detector = Detector(config, capacity=streams)
    rows, _ = detector.streams.lookup(
        [f"bench{{s={s}}}" for s in range(streams)],
        [("bench", (("s", str(s)),)) for s in range(streams)],
    )
    detector._admit(rows)
    detector.streams.state.owner[rows] = rows % partitions
    rng = np.random.default_rng(0)
    for t in range(points):
        values = 50 + 10 * np.sin(t / 10 + rows) + rng.normal(0, 1, streams)
        detector.process_arrays(rows, np.full(streams, 60.0 * t), values)
    return detector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--points", type=int, default=50)
    parser.add_argument(
        "--rounds", type=int, default=5, help="checkpoint rounds, one point learned between two"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    config = MonitorConfig()
    detector = warm_detector(config, args.streams, args.partitions, args.points)
    models = model_signature(config)
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as directory:
        store = CheckpointStore(directory, "bench")
        rounds = []  # (copy seconds, longest pause, page faults, write seconds) per round
        rows = detector.streams.owned_by(range(args.partitions))
        buffers = None
        for r in range(args.rounds):
            pauses, written, write_s = [], [], 0.0
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for p in range(args.partitions):
                # As the daemon: each copy goes into the same arrays once the last is written.
                started = time.perf_counter()
                part = detector.streams.owned_by([p])
                if buffers is None or len(buffers["streams.last_ts"]) < len(part):
                    buffers = detector.export_buffers(len(part) * 5 // 4 + 1)
                snapshot = detector.export_streams(part, buffers)
                pauses.append(time.perf_counter() - started)
                started = time.perf_counter()
                written.append(store.save("metrics", p, 1000 + r, snapshot, models))
                write_s += time.perf_counter() - started
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
            rounds.append((sum(pauses), max(pauses), faults, write_s))
            # The loop learns on between two rounds (the writes are done, as in the daemon).
            values = 50 + 10 * np.sin((args.points + r) / 10 + rows) + rng.normal(0, 1, len(rows))
            detector.process_arrays(rows, np.full(len(rows), 60.0 * (args.points + r)), values)
        export_s = statistics.median(x[0] for x in rounds)
        longest_pause_s = max(x[1] for x in rounds)
        faults_per_round = statistics.median(x[2] for x in rounds)
        write_s = statistics.median(x[3] for x in rounds)
        on_disk = sum(path.stat().st_size for path in written)  # the last round's files

        fresh = Detector(config, capacity=args.streams)
        started = time.perf_counter()
        restored = 0
        for p in range(args.partitions):
            checkpoint = store.load_latest("metrics", p, models)
            assert checkpoint is not None
            restored += int((fresh.import_streams(checkpoint.snapshot, owner=p) >= 0).sum())
        restore_s = time.perf_counter() - started
    assert restored == args.streams
    figures = {
        "streams": args.streams,
        "partitions": args.partitions,
        "checkpoint_export_s": round(export_s, 3),
        "longest_pause_s": round(longest_pause_s, 3),
        "rounds": args.rounds,
        "page_faults_per_round": faults_per_round,
        "checkpoint_write_s": round(write_s, 3),
        "restore_s": round(restore_s, 3),
        "bytes_per_stream_on_disk": round(on_disk / args.streams),
    }
    print(
        f"checkpoint: {args.streams} streams in {args.partitions} partitions: "
        f"copy {export_s:.2f} s a round (one partition per loop iteration: longest pause "
        f"{longest_pause_s:.3f} s in {args.rounds} rounds; {faults_per_round:,.0f} page faults "
        f"a round), write+fsync {write_s:.2f} s (background), "
        f"restore {restore_s:.2f} s, "
        f"{on_disk / args.streams:,.0f} B per stream on disk"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
