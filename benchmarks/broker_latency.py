"""The embedded broker alone: produce-to-consume latency of a plain consumer, over time.

No daemon: a confluent-kafka producer writes ``--rate`` records/s (``--linger-ms`` of
batching) into a 4-partition topic of the embedded tansu broker that already holds
``--fill`` records, and a confluent-kafka consumer of the topic's tail measures, per
record, the time from its producer timestamp to its arrival. Prints p50/p99/max per
2-second slice, so a latency that grows while the rate stays put shows. It is the
baseline under figure (6) of ``pipeline.py`` (see the loader there).

Run: ``.venv/bin/python benchmarks/broker_latency.py [--rate 28000] [--linger-ms 1]``
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from bench_kafka import HAS_CONFLUENT

from monitor.kafka.admin import ensure_topics
from monitor.kafka.broker import EmbeddedBroker

PAYLOAD = b'{"stream": "bench.metric_1", "ts": 1700000000.0, "value": 12.5}'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=28_000, help="records/s produced")
    parser.add_argument("--linger-ms", type=int, default=5, help="the producer's linger.ms")
    parser.add_argument("--fill", type=int, default=300_000, help="records in the topic first")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--fetch-wait-ms", type=int, default=10, help="the consumer's fetch.wait.max.ms"
    )
    args = parser.parse_args()
    if not HAS_CONFLUENT:
        raise SystemExit("needs confluent-kafka: pip install '.[fast]'")
    import confluent_kafka

    with tempfile.TemporaryDirectory(prefix="monitor-broker-latency-") as tmp:
        with EmbeddedBroker(log_path=Path(tmp) / "tansu.log") as broker:
            ensure_topics(broker.bootstrap_servers, {"latency": 4})
            producer = confluent_kafka.Producer(
                {"bootstrap.servers": broker.bootstrap_servers, "linger.ms": args.linger_ms}
            )
            for i in range(args.fill):
                producer.produce("latency", key=b"k%d" % (i % 10_000), value=PAYLOAD)
                if i % 10_000 == 0:
                    producer.flush()
            producer.flush()
            consumer = confluent_kafka.Consumer(
                {
                    "bootstrap.servers": broker.bootstrap_servers,
                    "group.id": "latency",
                    "auto.offset.reset": "latest",
                    "fetch.wait.max.ms": args.fetch_wait_ms,
                    "session.timeout.ms": 6000,
                    "heartbeat.interval.ms": 1000,
                }
            )
            consumer.subscribe(["latency"])
            arrivals: list[tuple[float, int]] = []  # (arrival, producer timestamp in ms)
            stop = threading.Event()

            def read() -> None:
                while not stop.is_set():
                    for message in consumer.consume(1000, 0.05):
                        if message.error() is None:
                            arrivals.append((time.time(), message.timestamp()[1]))

            reader = threading.Thread(target=read, name="latency-reader")
            reader.start()
            time.sleep(6.0)  # the group join (about half the session timeout)
            started, started_ms, sent = time.monotonic(), 1000.0 * time.time(), 0
            while time.monotonic() - started < args.seconds:
                due = int(args.rate * (time.monotonic() - started))
                for i in range(sent, due):
                    producer.produce("latency", key=b"k%d" % (i % 10_000), value=PAYLOAD)
                sent = max(sent, due)
                producer.poll(0)
                time.sleep(0.001)
            producer.flush()
            time.sleep(2.0)
            stop.set()
            reader.join()
            consumer.close()

    # Only the records produced at the rate (the broker's latest offset can trail, so the
    # consumer may start inside the fill).
    timed = [(at, 1000.0 * at - stamp) for at, stamp in arrivals if stamp >= started_ms]
    if not timed:
        raise SystemExit("no record arrived")
    first = timed[0][0]
    slices: dict[int, list[float]] = defaultdict(list)
    for at, latency in timed:
        slices[int((at - first) / 2)].append(latency)
    print(f"rate {args.rate:,}/s, linger.ms {args.linger_ms}, {args.fill:,} records before")
    for index in sorted(slices):
        values = sorted(slices[index])
        print(
            f"{2 * index:>3}-{2 * index + 2} s: {len(values):>7,} records  "
            f"p50 {values[len(values) // 2]:6.0f} ms  p99 {values[int(len(values) * 0.99)]:6.0f} ms"
            f"  max {values[-1]:6.0f} ms"
        )


if __name__ == "__main__":
    main()
