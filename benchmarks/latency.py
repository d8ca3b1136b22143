"""Spike-to-event latency of a live daemon at a fixed rate, second by second.

Stage (6) of ``pipeline.py`` alone, at a rate you choose: one embedded broker, a topic
filled with the same synthetic fleet (``--streams`` x ``--points``), ``monitor run`` in a
child process catches up on it, then records arrive at ``--rate`` for ``--seconds`` with
a planted spike every ``--spike-every`` records. Prints p50/p90/p99/max of the time from
producing a spike to the arrival of its anomaly event, then the median/max of the spikes
produced in each second: a pause of the daemon (a checkpoint round, say) shows as one
slow second. ``--set section.key=value`` changes the daemon's configuration (YAML value).

    .venv/bin/python benchmarks/latency.py --transport confluent --rate 100000
    .venv/bin/python benchmarks/latency.py --set state.checkpoint_interval_seconds=5
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np
from bench_data import Fleet, load_average
from bench_kafka import TRANSPORTS, Loader, Run, fill, overrides
from live import by_second, live, show_seconds

from monitor.kafka.admin import ensure_topics
from monitor.kafka.broker import EmbeddedBroker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=TRANSPORTS, default="kafka-python")
    parser.add_argument("--rate", type=float, default=95_000, help="records/s")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--spike-every", type=int, default=1_000)
    parser.add_argument("--linger-ms", type=int, default=20, help="the load generator's linger")
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=300, help="points per stream to catch up")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=20, help="detector.warmup of the daemon")
    parser.add_argument("--reader", choices=("inline", "process"), default=None)
    parser.add_argument("--set", nargs="*", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="monitor-latency-") as tmp:
        workdir = Path(tmp)
        with EmbeddedBroker(log_path=workdir / "tansu.log") as broker:
            topic = "bench-metrics"
            ensure_topics(broker.bootstrap_servers, {topic: args.partitions})
            fleet = Fleet(args.streams, seed=args.seed, quiet=max(args.points - 50, 0))
            keys, payloads, _ = fleet.records(0, args.points)
            fill(Loader(broker.bootstrap_servers), topic, keys, payloads)
            run = Run(broker, topic, fleet, args.points, len(payloads), args.warmup, workdir)
            run.partitions = args.partitions
            run.reader = args.reader
            run.overrides = overrides(args.set)
            del keys, payloads
            result = live(
                run,
                args.transport,
                args.rate,
                args.seconds,
                args.spike_every,
                0,
                own_topic=False,
                linger_ms=args.linger_ms,
            )
    lat = np.asarray(result.latencies_ms)
    if not len(lat):
        raise SystemExit("no planted spike was detected")
    p50, p90, p99 = np.percentile(lat, [50, 90, 99])
    changed = " ".join(args.set) or "defaults"
    print(
        f"latency {args.transport} at {args.rate:,.0f} records/s ({changed}): p50 {p50:.0f} ms "
        f"p90 {p90:.0f} ms p99 {p99:.0f} ms max {lat.max():.0f} ms "
        f"({len(lat)} of {result.planted} spikes detected; load average before {load_before})"
    )
    print(f"by second, median/max ms: {show_seconds(by_second(result))}")


if __name__ == "__main__":
    main()
