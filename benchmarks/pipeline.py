"""End to end against one embedded broker: client, daemon, river, memory, scrape, latency.

One run starts an embedded broker (tansu) on a free loopback port, creates one topic
(``--partitions``, default 4) and fills it with the same data for every figure:
``--streams`` (default 10,000) synthetic streams of ``--points`` (default 300) points each,
with seasonality, noise and planted spikes in the last 50 points, when the detectors can
alert (:class:`bench_data.Fleet`), as native records keyed by stream, in the order the demo
feed writes them. Then, for each transport (kafka-python, and ``confluent`` when
confluent-kafka and ``monitor.kafka.transport`` are there), it prints one line per figure:

1. ``client``: the bare client, consume + decode only (the daemon's decoder,
   :class:`~monitor.records.batch.BatchDecoder`, a polled batch at a time), records/s;
2. ``daemon``: the full daemon, built like ``monitor run`` builds it (``build_daemon``,
   default detectors, the consumer in a child process unless ``--reader inline``),
   records/s from its first batch until it has scored every record, produced the events
   and written its final checkpoints and committed its offsets (the consumer's close,
   leaving the group, is not counted, as the client's is not in (1));
3. ``river``: the naive per-event river pipeline on the same records, in a fresh process
   (``river_pipeline.py``; a subset of the streams, which the line says);
4. ``memory``: resident memory growth per stream at 10,000 and 100,000 streams with the
   default detectors, each in a fresh process (``memory_per_stream.py``);
5. ``scrape``: a real HTTP GET of the running daemon's ``/metrics`` (``monitor run`` in a
   child process, live data arriving), median of ``--scrapes`` and the body size;
6. ``latency``: records produced at half of (2)'s rate, with a planted spike every
   ``--spike-every`` records, to the daemon child process, on a topic of its own that holds
   the same history first (``live.on_own_topic``: tansu slows down as records are produced
   into a partition at a live rate, so a second run would start where the first left
   it); the time from producing each spike
   to the arrival of its anomaly event on the events topic (a separate consumer), p50/p99,
   and the three slowest seconds (median/max of the spikes produced in each).

(1) and (2) also print CPU time (user + system) per record: the client's, and the daemon's
with its reader child's (best run); other processes on the machine change it less than
records/s. (1) and (2) are repeated ``--repeat`` times (default 1, ``make bench`` 3; each
with a fresh group; the transports take turns) and the best is reported with the spread.
Every daemon here uses the default configuration except: a warm-up of ``--warmup`` points
(default 20: with the default 300 no stream could alert within the data, and the calibrated
score needs about 250 points anyway), the session timeouts of a test
(``session_timeout_ms=6000``, ``heartbeat_interval_ms=1000``), no event log lines, and its
checkpoints in a temporary directory. The figures go to ``results/bench/pipeline.json``.

Run: ``.venv/bin/python benchmarks/pipeline.py [--streams 10000] [--points 300] [--repeat 1]``
(about 8 minutes on 2 cores; ``--transports kafka-python --skip river memory live`` for (1)
and (2) alone)
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import logging
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from bench_data import Fleet, load_average, run_python, write_result
from bench_kafka import TRANSPORTS, Loader, Run, fast_transport_ready, fill, overrides
from kafka import KafkaConsumer
from live import by_second, live, show_seconds
from prometheus_client import CollectorRegistry

from monitor.config import MonitorConfig
from monitor.daemon.runner import build_daemon
from monitor.kafka.admin import ensure_topics
from monitor.kafka.broker import EmbeddedBroker
from monitor.kafka.client import consumer_settings
from monitor.records.batch import BatchDecoder

# (1) the bare client -----------------------------------------------------------------------


def bare_client(run: Run, transport: str) -> tuple[float, float]:
    """Consume and decode every record of the topic with a new group, a polled batch at a
    time with the daemon's decoder; records/s and CPU seconds per record."""
    config = MonitorConfig.model_validate_json(json.dumps(run.config(transport, "unused")))
    decode = BatchDecoder.for_config(config)
    n = run.produced
    cpu_before = cpu_seconds()
    if transport == "kafka-python":
        consumer = KafkaConsumer(**consumer_settings(config.kafka))
        consumer.subscribe(topics=[run.topic])
        count = 0
        started = None
        try:
            while count < n:
                batch = consumer.poll(timeout_ms=config.kafka.poll_timeout_ms)
                if batch and started is None:
                    started = time.perf_counter()
                decode((p.topic, [r.value for r in records]) for p, records in batch.items())
                count += sum(len(records) for records in batch.values())
            elapsed = time.perf_counter() - (started or 0.0)
        finally:
            consumer.close(autocommit=False)
        return n / elapsed, (cpu_seconds() - cpu_before) / n
    import confluent_kafka

    from monitor.kafka.confluent import consumer_settings as fast_settings

    kafka = config.kafka
    fast = confluent_kafka.Consumer(fast_settings(kafka))
    fast.subscribe([run.topic])
    count = 0
    started = None
    try:
        while count < n:
            messages = fast.consume(num_messages=kafka.max_poll_records, timeout=0.5)
            if messages and started is None:
                started = time.perf_counter()
            values = [m.value() for m in messages if m.error() is None]
            decode([(run.topic, values)])
            count += len(values)
        elapsed = time.perf_counter() - (started or 0.0)
    finally:
        fast.close()
    return n / elapsed, (cpu_seconds() - cpu_before) / n


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its children that have exited
    (the daemon's reader child, joined when the daemon closes; not the broker)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# (2) the daemon ------------------------------------------------------------------------------


def daemon_rate(run: Run, transport: str) -> tuple[float, int, float]:
    """Run the daemon in this process until it has processed every record; records/s,
    events, and CPU seconds per record (the daemon's process and its reader child)."""
    config = MonitorConfig.model_validate_json(
        json.dumps(run.config(transport, f"{run.topic}-events"))
    )
    cpu_before = cpu_seconds()
    registry = CollectorRegistry()
    daemon, _streams = build_daemon(config, registry)
    n = run.produced
    seen = [0]
    started: list[float] = []
    process_batch = daemon.process_batch

    def timed(batch: Any) -> None:
        # Instrumentation only: the daemon's own method does the work.
        if not started:
            started.append(time.perf_counter())
        process_batch(batch)
        seen[0] += sum(len(records) for records in batch.values())
        if seen[0] >= n:
            daemon.stop.set()

    daemon.process_batch = timed  # type: ignore[method-assign]
    commit = daemon.partitions.commit
    committed: list[float] = []

    def timed_commit(*args: Any, **kwargs: Any) -> None:
        # Instrumentation only: when the last (final) commit returned.
        commit(*args, **kwargs)
        committed.append(time.perf_counter())

    daemon.partitions.commit = timed_commit  # type: ignore[method-assign]
    code: list[int] = []
    thread = threading.Thread(target=lambda: code.append(daemon.run()), name="bench-daemon")
    thread.start()
    thread.join(timeout=600)
    # The clock stops when the final checkpoint and offset commit are done: the
    # consumer's close (leaving the group) is not counted, as the client's is not in (1).
    finished = committed[-1] if committed else time.perf_counter()
    if thread.is_alive():
        daemon.stop.set()
        thread.join()
        raise RuntimeError(f"the daemon processed {seen[0]} of {n} records in 600 s")
    with contextlib.suppress(Exception):
        daemon.producer.close()  # type: ignore[attr-defined]
    if code != [0] or not started:
        raise RuntimeError(f"the daemon exited with {code}")
    events = registry.get_sample_value("monitor_events_emitted_total") or 0.0
    cpu = (cpu_seconds() - cpu_before) / seen[0]
    return seen[0] / (finished - started[0]), int(events), cpu


# Driver ----------------------------------------------------------------------------------


def spread(values: list[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in values)


@contextlib.contextmanager
def running_broker(workdir: Path) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_path=workdir / "tansu.log") as broker:
        yield broker


def timed(label: str, fn: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = fn()
    print(f"  ({label}: {time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=300, help="points per stream in the topic")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1, help="runs of (1) and (2) each")
    parser.add_argument(
        "--gc-threshold",
        type=int,
        default=50_000,
        help="gc.set_threshold(N, 50, 100) and gc.freeze() in this process before (1) and "
        "(2), as `monitor run` does (monitor/daemon/runner.py); 0: Python's defaults",
    )
    parser.add_argument("--warmup", type=int, default=20, help="detector.warmup of the daemons")
    parser.add_argument("--river-subset", type=int, default=200)
    parser.add_argument("--memory-streams", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument("--spike-every", type=int, default=1_000)
    parser.add_argument(
        "--rate-fraction", type=float, default=0.5, help="latency run's rate, of (2)'s best"
    )
    parser.add_argument("--scrapes", type=int, default=10)
    parser.add_argument("--transports", nargs="+", choices=TRANSPORTS, default=list(TRANSPORTS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--reader",
        choices=("inline", "process"),
        default=None,
        help="kafka.reader of the daemons (default: the configuration's default, process)",
    )
    parser.add_argument(
        "--skip", nargs="*", choices=("river", "memory", "live"), default=[], help="stages left out"
    )
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="settings of the daemons' configuration (YAML values): kafka.max_poll_records=2000",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    transports = [t for t in args.transports if t == "kafka-python" or fast_transport_ready()]
    for missing in set(args.transports) - set(transports):
        print(f"skipped: transport {missing} (confluent-kafka or its adapter is missing)")
    if args.gc_threshold:
        gc.set_threshold(args.gc_threshold, 50, 100)
    load_before = load_average()
    figures: dict[str, Any] = {
        "gc_threshold": args.gc_threshold,
        "streams": args.streams,
        "points": args.points,
        "partitions": args.partitions,
        "warmup": args.warmup,
        "settings": args.set,
        "load_before": load_before,
    }
    with tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp:
        workdir = Path(tmp)
        with running_broker(workdir) as broker:
            topic = "bench-metrics"
            ensure_topics(broker.bootstrap_servers, {topic: args.partitions})
            fleet = Fleet(args.streams, seed=args.seed, quiet=max(args.points - 50, 0))
            keys, payloads, spikes = timed("data", lambda: fleet.records(0, args.points))
            loader = Loader(broker.bootstrap_servers)

            timed("fill", functools.partial(fill, loader, topic, keys, payloads))
            run = Run(broker, topic, fleet, args.points, len(payloads), args.warmup, workdir)
            run.overrides = overrides(args.set)
            run.partitions = args.partitions
            run.reader = args.reader
            print(
                f"data: {args.streams:,} streams x {args.points} points = {len(payloads):,} "
                f"records ({sum(map(len, payloads)) / len(payloads):.0f} bytes each, {spikes:,} "
                f"planted spikes) in topic {topic} ({args.partitions} partitions) of tansu at "
                f"{broker.bootstrap_servers}; load average {load_before}"
            )
            del keys, payloads
            if args.gc_threshold:
                gc.collect()
                gc.freeze()
            client: dict[str, list[float]] = {t: [] for t in transports}
            daemon: dict[str, list[float]] = {t: [] for t in transports}
            client_cpu: dict[str, list[float]] = {t: [] for t in transports}
            daemon_cpu: dict[str, list[float]] = {t: [] for t in transports}
            events: dict[str, int] = {}
            for _ in range(args.repeat):
                for transport in transports:
                    rate, cpu = timed(
                        f"client {transport}", lambda t=transport: bare_client(run, t)
                    )
                    client[transport].append(rate)
                    client_cpu[transport].append(cpu)
                    rate, events[transport], cpu = timed(
                        f"daemon {transport}", lambda t=transport: daemon_rate(run, t)
                    )
                    daemon[transport].append(rate)
                    daemon_cpu[transport].append(cpu)
            for transport in transports:
                best_client, best_daemon = max(client[transport]), max(daemon[transport])
                cpu_client = min(client_cpu[transport]) * 1e6
                cpu_daemon = min(daemon_cpu[transport]) * 1e6
                print(
                    f"(1) client   {transport:<12} {best_client:>9,.0f} records/s "
                    f"(consume + decode; runs: {spread(client[transport])}; "
                    f"CPU {cpu_client:.2f} us/record)"
                )
                print(
                    f"(2) daemon   {transport:<12} {best_daemon:>9,.0f} records/s "
                    f"(end to end, {events[transport]} events; runs: "
                    f"{spread(daemon[transport])}; CPU {cpu_daemon:.2f} us/record with its "
                    f"reader) = {best_daemon / best_client:.2f} x client"
                )
                figures[transport] = {
                    "client_rps": best_client,
                    "client_runs": client[transport],
                    "daemon_rps": best_daemon,
                    "daemon_runs": daemon[transport],
                    "events": events[transport],
                    "vs_client": best_daemon / best_client,
                    "client_cpu_us_per_record": cpu_client,
                    "daemon_cpu_us_per_record": cpu_daemon,
                }

            if "river" in args.skip:
                river = {
                    "records_per_s": float("nan"),
                    "streams_measured": 0,
                    "rss_bytes_per_stream": 0.0,
                }
            else:
                river = run_python(
                    "river_pipeline.py",
                    "--streams",
                    str(args.streams),
                    "--subset",
                    str(args.river_subset),
                    "--points",
                    str(args.points),
                    "--seed",
                    str(args.seed),
                )
            figures["river"] = river
            # (2)/(3) is taken with the default transport (nan when it was not run).
            best = figures.get("kafka-python", {}).get("daemon_rps", float("nan"))
            print(
                f"(3) river    per-event    {river['records_per_s']:>9,.0f} records/s "
                f"(decode + score + learn, on the first {river['streams_measured']:,} streams; "
                f"{river.get('steady_records_per_s', float('nan')):,.0f} records/s once its "
                "trees score: "
                f"river keeps {river['rss_bytes_per_stream'] / 1e6:.2f} MB per stream) "
                f"-> daemon is {best / river['records_per_s']:.0f} x river"
            )

            memory = {}
            for n in [] if "memory" in args.skip else args.memory_streams:
                memory[str(n)] = run_python("memory_per_stream.py", "--streams", str(n))
                m = memory[str(n)]
                print(
                    f"(4) memory   {n:>9,} streams {m['bytes_per_stream']:>9,.0f} bytes per "
                    f"stream (the larger of: RSS growth {m['rss_bytes_per_stream']:,.0f}, fresh "
                    f"process; model arrays allocated {m['array_bytes_per_stream']:,.0f})"
                )
            figures["memory"] = memory

            for transport in [] if "live" in args.skip else transports:
                rate = figures[transport]["daemon_rps"] * args.rate_fraction
                result = timed(
                    f"live {transport}",
                    lambda t=transport, r=rate: live(
                        run, t, r, args.latency_seconds, args.spike_every, args.scrapes
                    ),
                )
                lat = result.latencies_ms
                p50, p99 = (
                    (float(np.percentile(lat, 50)), float(np.percentile(lat, 99)))
                    if lat
                    else (float("nan"), float("nan"))
                )
                median_scrape = statistics.median(result.scrape_ms) if result.scrape_ms else 0.0
                print(
                    f"(5) scrape   {transport:<12} {median_scrape:>9.1f} ms median of "
                    f"{len(result.scrape_ms)} (runs: "
                    f"{', '.join(f'{s:.0f}' for s in result.scrape_ms)} ms), body "
                    f"{result.scrape_bytes:,} bytes, {args.streams:,} streams, live daemon"
                )
                slowest = sorted(by_second(result), key=lambda row: -row[2])[:3]
                print(
                    f"(6) latency  {transport:<12} p50 {p50:.1f} ms p99 {p99:.1f} ms at "
                    f"{rate:,.0f} records/s ({len(lat)} of {result.planted} planted spikes "
                    f"detected, {result.produced:,} records; slowest seconds, median/max ms: "
                    f"{show_seconds(slowest)})"
                )
                figures[transport].update(
                    {
                        "scrape_ms": result.scrape_ms,
                        "scrape_median_ms": median_scrape,
                        "scrape_bytes": result.scrape_bytes,
                        "latency_rate": rate,
                        "latency_p50_ms": p50,
                        "latency_p99_ms": p99,
                        "latency_detected": len(lat),
                        "latency_planted": result.planted,
                    }
                )
    figures["load_after"] = load_average()
    path = write_result("pipeline", figures)
    print(f"load average before {load_before}, after {figures['load_after']}; figures in {path}")


if __name__ == "__main__":
    main()
