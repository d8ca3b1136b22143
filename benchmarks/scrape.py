"""Time of a real HTTP scrape of ``/metrics`` at 10,000 and 100,000 streams.

For each stream count S (default 10,000 and 100,000) it builds a detector with S
streams (labels ``host`` and ``region``, both copied onto the per-stream series),
feeds each stream a few points, marks 1% of them anomalous (so the severity family
has rows), registers the metrics in a fresh registry with the daemon's own
metrics, serves them on a free loopback port the way the daemon does, and times
R (default 20) HTTP GETs of ``/metrics`` after one untimed first scrape. Before
each timed scrape a fraction ``--fresh`` of the streams (default all: the worst
case, every value changed) gets a new point, untimed.

Prints per S: the first scrape, the median and p95 of the timed scrapes (ms,
request to last byte) and the body size. ``--prometheus`` sends the Accept and
Accept-Encoding headers of a Prometheus server (OpenMetrics, gzip) instead of a
bare GET; ``--server prometheus-client`` serves the same registry with
prometheus-client's ``start_http_server`` (every sample an object, as before).

Run: ``.venv/bin/python benchmarks/scrape.py [--streams 10000 100000] [--repeat 20]``
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
import urllib.request

import numpy as np
from prometheus_client import CollectorRegistry, start_http_server

from monitor.config import MonitorConfig
from monitor.detection import Detector
from monitor.kafka.ports import free_port
from monitor.metrics import DaemonMetrics, StreamCollector
from monitor.metrics.http import start_metrics_server
from monitor.records import Point

PROMETHEUS_HEADERS = {
    "Accept": (
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
        "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    ),
    "Accept-Encoding": "gzip",
}
STREAM_LABELS = ("host", "region")


class Fleet:
    """A detector holding ``n_streams`` streams, each fed ``n_points`` points.

    1% of the streams are then marked anomalous (half of them critical).
    """

    def __init__(self, n_streams: int, n_points: int = 3, seed: int = 0) -> None:
        config = MonitorConfig.model_validate(
            {
                "streams": {"max_streams": max(n_streams, 1)},
                "metrics": {"stream_labels": STREAM_LABELS},
            }
        )
        self.detector = detector = Detector(config, capacity=n_streams)
        identities = [
            (f"bench.metric_{i % 7}", (("host", f"h-{i:06d}"), ("region", f"eu-{i % 5}")))
            for i in range(n_streams)
        ]
        keys = [Point(name, labels, 0.0, 0.0).key for name, labels in identities]
        self.rows, created = detector.streams.lookup(keys, identities)
        detector._admit(created)
        self.rng = np.random.default_rng(seed)
        self.level = self.rng.uniform(10, 1000, n_streams)
        self.t = 0
        for _ in range(n_points):
            self.step(1.0)
        anomalous = self.rows[self.rng.random(n_streams) < 0.01]
        detector.state.anomalous[anomalous] = True
        detector.state.critical[anomalous[::2]] = True
        detector.state.events[anomalous] += 1

    def step(self, fraction: float) -> None:
        """The next point of a random ``fraction`` of the streams."""
        chosen = np.flatnonzero(self.rng.random(len(self.rows)) < fraction)
        values = self.level[chosen] * (1 + self.rng.normal(0, 0.01, len(chosen)))
        ts = np.full(len(chosen), 1_700_000_000.0 + 60.0 * self.t)
        self.detector.process_arrays(self.rows[chosen], ts, values)
        self.t += 1


def serve(detector: Detector, lock: threading.Lock, server: str) -> tuple[object, int]:
    """The daemon's metrics and the detector's, on a free loopback port.

    ``server``: ``monitor``, the daemon's endpoint (per-stream families written in
    bulk), or ``prometheus-client``, its ``start_http_server`` over the same
    registry (every sample an object, the way the daemon served before).
    """
    registry = CollectorRegistry()
    DaemonMetrics(registry)
    streams = StreamCollector.from_config(detector, lock, detector.config.metrics)
    registry.register(streams)
    port = free_port()
    if server == "monitor":
        httpd, _thread = start_metrics_server(port, "127.0.0.1", registry, streams)
    else:
        httpd, _thread = start_http_server(port, "127.0.0.1", registry)
    return httpd, port


def scrape(port: int, headers: dict[str, str]) -> tuple[float, int]:
    """Seconds from request to last byte, and the body size in bytes."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        body = response.read()
    return time.perf_counter() - started, len(body)


def measure(
    n_streams: int, repeat: int, headers: dict[str, str], server_kind: str, fresh: float
) -> None:
    fleet = Fleet(n_streams)
    lock = threading.Lock()
    server, port = serve(fleet.detector, lock, server_kind)
    times = []
    try:
        first, size = scrape(port, headers)
        for _ in range(repeat):
            if fresh > 0:
                with lock:
                    fleet.step(fresh)
            times.append(scrape(port, headers)[0])
    finally:
        server.shutdown()  # type: ignore[attr-defined]
        server.server_close()  # type: ignore[attr-defined]
    ms = sorted(1000 * t for t in times)
    p95 = float(np.percentile(ms, 95))
    print(
        f"{n_streams:>8,} streams  first {1000 * first:8.1f} ms  "
        f"median {statistics.median(ms):8.1f} ms  p95 {p95:8.1f} ms  body {size:,} bytes"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=20, help="timed scrapes per stream count")
    parser.add_argument(
        "--prometheus", action="store_true", help="send Prometheus's Accept/Accept-Encoding"
    )
    parser.add_argument(
        "--server",
        choices=("monitor", "prometheus-client"),
        default="monitor",
        help="the daemon's endpoint, or prometheus-client's start_http_server (the old way)",
    )
    parser.add_argument(
        "--fresh",
        type=float,
        default=1.0,
        help="fraction of the streams given a new point before each timed scrape (untimed)",
    )
    args = parser.parse_args()
    headers = PROMETHEUS_HEADERS if args.prometheus else {}
    for n_streams in args.streams:
        measure(n_streams, args.repeat, headers, args.server, args.fresh)


if __name__ == "__main__":
    main()
