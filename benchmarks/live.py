"""Stages (5) and (6) of ``pipeline.py``: the daemon as ``monitor run`` in a child process.

Records are produced at a steady rate with planted spikes; a separate consumer times each
spike's anomaly event on the events topic; then ``/metrics`` is scraped over HTTP while the
records keep coming.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from bisect import bisect_left
from dataclasses import dataclass, replace

import numpy as np
import orjson
from bench_data import native_payload
from bench_kafka import HAS_CONFLUENT, Loader, Run, fill
from kafka import KafkaConsumer, TopicPartition

from monitor.config import MonitorConfig
from monitor.kafka.admin import ensure_topics
from monitor.kafka.ports import free_port

SPIKE_SIGMAS = 20.0
"""Size of the spikes planted in the latency run, in clean standard deviations."""

# (5) and (6): the daemon in a child process -----------------------------------------------


class ChildDaemon:
    """``monitor run`` in a child process, its metrics on a free loopback port."""

    def __init__(self, run: Run, transport: str, events_topic: str) -> None:
        self.port = free_port()
        config = run.config(transport, events_topic, metrics_port=self.port)
        path = run.workdir / f"daemon-{run.groups}.yaml"
        path.write_text(json.dumps(config))  # JSON is YAML
        self.log = run.workdir / f"daemon-{run.groups}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(path)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def get(self) -> tuple[float, bytes]:
        """One real GET of /metrics: seconds from request to last byte, and the body."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as response:
            body = response.read()
        return time.perf_counter() - started, body

    def consumed(self) -> float:
        """``monitor_records_consumed_total`` summed over topics (0 before the server is up)."""
        try:
            _, body = self.get()
        except OSError:
            return 0.0
        found = re.findall(rb"^monitor_records_consumed_total\{[^}]*\} (\S+)$", body, re.M)
        return sum(float(x) for x in found)

    def wait_consumed(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.consumed() < n:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited early; see {self.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the daemon did not consume {n} records in {timeout}s")
            time.sleep(1.0)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class EventReader:
    """Reads the events topic from the beginning in a thread; times each event's arrival."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self.arrived: dict[tuple[str, float], float] = {}
        self._stop = threading.Event()
        self._bootstrap = bootstrap
        self._topic = topic
        self._partitions = partitions
        self._thread = threading.Thread(target=self._read, name="bench-events", daemon=True)
        self._thread.start()

    def _note(self, value: bytes) -> None:
        now = time.time()
        event = orjson.loads(value)
        self.arrived.setdefault((event["stream"], float(event["ts"])), now)

    def _read(self) -> None:
        if HAS_CONFLUENT:
            import confluent_kafka

            consumer = confluent_kafka.Consumer(
                {
                    "bootstrap.servers": self._bootstrap,
                    "group.id": "bench-events-reader",
                    "enable.auto.commit": False,
                    "fetch.wait.max.ms": 10,
                }
            )
            consumer.assign(
                [
                    confluent_kafka.TopicPartition(self._topic, p, confluent_kafka.OFFSET_BEGINNING)
                    for p in range(self._partitions)
                ]
            )
            try:
                while not self._stop.is_set():
                    # consume(n, timeout) returns only when n messages came or the timeout
                    # ran out, which would add up to the timeout to every latency: wait for
                    # one message, then take what has already arrived.
                    first = consumer.poll(0.05)
                    if first is None:
                        continue
                    for message in [first, *consumer.consume(num_messages=1000, timeout=0)]:
                        if message.error() is None:
                            self._note(message.value())
            finally:
                consumer.close()
            return
        slow = KafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=10,
        )
        partitions = [TopicPartition(self._topic, p) for p in range(self._partitions)]
        slow.assign(partitions)
        slow.seek_to_beginning(*partitions)
        try:
            while not self._stop.is_set():
                for records in slow.poll(timeout_ms=50).values():
                    for record in records:
                        self._note(record.value)
        finally:
            slow.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@dataclass
class LiveFigures:
    latencies_ms: list[float]
    sent_s: list[float]
    """When each spike of ``latencies_ms`` was produced, in seconds from the start."""
    planted: int
    produced: int
    rate: float
    scrape_ms: list[float]
    scrape_bytes: int


def by_second(figures: LiveFigures) -> list[tuple[int, float, float]]:
    """(second, median ms, max ms) of the spikes produced in each second of the run, in
    time order: a pause of the daemon (a checkpoint round, say) shows as a slow second."""
    seconds = np.floor(np.asarray(figures.sent_s)).astype(int)
    latencies = np.asarray(figures.latencies_ms)
    return [
        (int(s), float(np.median(latencies[seconds == s])), float(latencies[seconds == s].max()))
        for s in np.unique(seconds)
    ]


def show_seconds(rows: list[tuple[int, float, float]]) -> str:
    """``second:median/max`` of each row of :func:`by_second`, in ms."""
    return " ".join(f"{s}:{median:.0f}/{most:.0f}" for s, median, most in rows)


def live_records(
    run: Run, count: int, spike_every: int
) -> tuple[list[bytes], list[bytes], dict[int, tuple[str, float]]]:
    """The next ``count`` records of the fleet, encoded before the clock starts.

    Every ``spike_every``-th record (shifted each round, so other streams get them) is a
    spike of ``SPIKE_SIGMAS``; returns keys, values, and record index -> (stream, ts) of
    the spikes.
    """
    fleet = run.fleet
    names = [k.decode() for k in fleet.keys]
    label_dicts = [dict(lab) for lab in fleet.labels]
    keys: list[bytes] = []
    payloads: list[bytes] = []
    spikes: dict[int, tuple[str, float]] = {}
    t = run.points
    while len(payloads) < count:
        values, _ = fleet.values(t, spikes=False)
        ts = fleet.ts(t)
        take = min(fleet.n_streams, count - len(payloads))
        for j in range(take):
            value = float(values[j])
            if (j + 7919 * t) % spike_every == 0:
                value += SPIKE_SIGMAS * float(fleet.sigma[j])
                spikes[len(payloads)] = (names[j], ts)
            keys.append(fleet.keys[j])
            payloads.append(native_payload(fleet.names[j], ts, value, label_dicts[j]))
        t += 1
    run.points = t
    return keys, payloads, spikes


def on_own_topic(run: Run, name: str) -> Run:
    """A copy of ``run`` on a new topic ``name`` filled with the same history (points
    ``0 .. run.points`` of the fleet), produced in large batches like the first topic.

    tansu gets slower the more records are produced into a partition at a live rate: a
    plain consumer of the tail at 145,000 records/s sees p99 32 ms at first and 159 ms
    after 40 s (``benchmarks/broker_latency.py --rate 145000 --seconds 40``), while a topic
    filled beforehand with 6,000,000 records in large batches costs nothing (``--fill
    6000000``). Each latency run gets a topic of its own, so a second run does not start
    where the first left the broker.
    """
    ensure_topics(run.broker.bootstrap_servers, {name: run.partitions})
    keys, payloads, _ = run.fleet.records(0, run.points)
    fill(Loader(run.broker.bootstrap_servers), name, keys, payloads)
    return replace(run, topic=name, produced=len(payloads))


def live(
    run: Run,
    transport: str,
    rate: float,
    seconds: float,
    spike_every: int,
    scrapes: int,
    own_topic: bool = True,
    linger_ms: int = 20,
) -> LiveFigures:
    """(6) latency at ``rate`` records/s, then (5) scrapes while the records keep coming.

    The daemon first reads the history (with ``own_topic``, a copy of it on a topic of its
    own: :func:`on_own_topic`; else ``run.topic`` as it is). The live records are encoded
    first, so producing them costs this process little CPU. Only spikes produced in the
    first ``seconds`` count; the scrapes follow.
    """
    main = run
    if own_topic:
        run = on_own_topic(run, f"{run.topic}-live-{transport}")
    events_topic = f"{run.topic}-events-live-{transport}"
    partitions = MonitorConfig().events.partitions
    ensure_topics(run.broker.bootstrap_servers, {events_topic: partitions})
    total = seconds + 1.0 + scrapes * 0.5
    keys, payloads, spikes = live_records(run, int(rate * total) + 1, spike_every)
    messages = [{"key": k, "value": v} for k, v in zip(keys, payloads, strict=True)]
    spike_at = sorted(spikes)
    child = ChildDaemon(run, transport, events_topic)
    reader = EventReader(run.broker.bootstrap_servers, events_topic, partitions)
    # The producer's linger is counted in every latency. tansu's fetches cost more the more
    # record batches a partition holds: at 75,000 records/s with librdkafka's default 5 ms,
    # tansu alone took 33% of a core at first and 97% after 20 s, and a plain consumer's
    # p50 went 16 -> 45 ms; with 20 ms, 17% -> 39% and p50 22 -> 27 ms
    # (benchmarks/broker_latency.py --rate 75000 --seconds 30 --linger-ms 5 / 20). On these
    # two cores that CPU comes out of the daemon's share. With 1 ms it is worse still.
    loader = Loader(run.broker.bootstrap_servers, linger_ms=linger_ms)
    sent_at: dict[tuple[str, float], float] = {}
    scrape_times: list[float] = []
    body_size = [0]
    produced = 0
    try:
        child.wait_consumed(run.produced, timeout=600)
        scraper: threading.Thread | None = None

        def scrape_loop() -> None:
            for _ in range(scrapes):
                took, body = child.get()
                scrape_times.append(took)
                body_size[0] = len(body)
                time.sleep(0.5)

        started = time.monotonic()
        wall_start = time.time()
        while produced < len(payloads):
            elapsed = time.monotonic() - started
            if scraper is None and elapsed >= seconds:
                scraper = threading.Thread(target=scrape_loop, name="bench-scrape")
                scraper.start()
            due = min(int(rate * elapsed), len(payloads))
            if due <= produced:
                time.sleep(0.001)
                continue
            if elapsed < seconds:
                now = time.time()
                first = bisect_left(spike_at, produced)
                for i in spike_at[first : bisect_left(spike_at, due, first)]:
                    sent_at[spikes[i]] = now
            loader.send_batch(run.topic, messages[produced:due])
            loader.poll()
            produced = due
        loader.flush()
        if scraper is not None:
            scraper.join()
        time.sleep(3.0)  # the last events of the latency window
    finally:
        reader.close()
        loader.close()
        code = child.stop()
    main.groups = run.groups
    if code != 0:
        raise RuntimeError(f"the daemon child exited with {code}; see {child.log}")
    run.produced += produced
    timed = sorted(
        (sent - wall_start, 1000.0 * (reader.arrived[key] - sent))
        for key, sent in sent_at.items()
        if key in reader.arrived
    )
    return LiveFigures(
        [latency for _, latency in timed],
        [offset for offset, _ in timed],
        len(sent_at),
        produced,
        rate,
        [1000 * s for s in scrape_times],
        body_size[0],
    )
