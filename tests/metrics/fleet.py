"""A small detector with hostile stream labels, and readers of exposition text."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import MonitorConfig
from monitor.detection import Detector
from monitor.metrics import DaemonMetrics, StreamCollector
from monitor.metrics.http import make_metrics_app
from monitor.records import Point

HOSTILE = [
    'quote"d',
    "new\nline",
    "{braces}",
    "back\\slash",
    'all\\"of}{them\n',
    "comma,eq=",
    "ünïcødé ☃",
    "",
]
"""Label values that must be escaped, or that break naive label writing."""

T0 = 1_700_000_000.0
LABELS = ("host", "region")


def stream_points(i: int, t: int, value: float) -> Point:
    """Point ``t`` of stream ``i``: hostile host values, some streams lack ``region``."""
    host = HOSTILE[i % len(HOSTILE)] + f"-{i}"
    labels: tuple[tuple[str, str], ...] = (("host", host),)
    if i % 3:
        labels = (*labels, ("region", f"eu-{i % 2}"))
    name = "cpu" if i % 2 else 'weird"name\\x'
    return Point(name, labels, T0 + 60.0 * t, value)


def make_detector(
    n_streams: int = 24, n_points: int = 4, unseen: int = 0, **metrics: Any
) -> Detector:
    """``n_streams`` streams fed ``n_points`` points, then ``unseen`` rows never fed."""
    # Streams stay in their warm-up (n_points < warmup) so that only ``mark`` makes one
    # anomalous, whatever the detector makes of a few random points.
    warmup = n_points + 1
    settings = {
        "metrics": {"stream_labels": list(LABELS), **metrics},
        "detector": {"warmup": warmup},
    }
    config = MonitorConfig.model_validate_json(json.dumps(settings))
    detector = Detector(config)
    detector.streams.clock = lambda: 0.0  # every stream last seen at 0 (for eviction tests)
    rng = np.random.default_rng(7)
    for t in range(n_points):
        points = [stream_points(i, t, float(rng.normal(10 * i, 1.0))) for i in range(n_streams)]
        detector.process(points)
    if unseen:
        extra = [stream_points(n_streams + j, 0, 0.0) for j in range(unseen)]
        rows, created = detector.streams.lookup(
            [p.key for p in extra], [(p.name, p.labels) for p in extra]
        )
        detector._admit(created)
    return detector


def mark(detector: Detector, rows: Sequence[int], critical: Sequence[int] = ()) -> None:
    """Make ``rows`` anomalous now (``critical`` of them critical) with a high score."""
    state = detector.state
    state.anomalous[rows] = True
    state.score[rows] = 0.95
    state.events[rows] += 2
    state.critical[list(critical)] = True


def registry_with(detector: Detector, **options: Any) -> tuple[CollectorRegistry, StreamCollector]:
    """The daemon's metrics and a stream collector (registered last), as the daemon has."""
    registry = CollectorRegistry()
    DaemonMetrics(registry)
    collector = StreamCollector(detector, threading.Lock(), LABELS, **options)
    registry.register(collector)
    return registry, collector


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples_of(text: str, openmetrics: bool = False) -> Samples:
    """Every sample of an exposition, parsed by prometheus-client's own parser."""
    parse = openmetrics_families if openmetrics else text_string_to_metric_families
    out: Samples = {}
    for family in parse(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in out, f"duplicate sample {key}"
            out[key] = sample.value
    return out


def stream_labels(detector: Detector, row: int) -> tuple[tuple[str, str], ...]:
    """The label set the collector gives ``row``: stream key, host, region ("" if absent)."""
    pairs = dict(detector.streams.labels[row])
    return tuple(
        sorted(
            {
                "stream": detector.streams.keys[row],
                **{name: pairs.get(name, "") for name in LABELS},
            }.items()
        )
    )


def get(
    registry: CollectorRegistry,
    collector: StreamCollector | None,
    accept: str | None = None,
    encoding: str | None = None,
    query: str = "",
    method: str = "GET",
    path: str = "/metrics",
) -> tuple[str, dict[str, str], bytes]:
    """Call the ``/metrics`` WSGI app once: (status, headers, body, gunzipped)."""
    app = make_metrics_app(registry, collector)
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query}
    if accept is not None:
        environ["HTTP_ACCEPT"] = accept
    if encoding is not None:
        environ["HTTP_ACCEPT_ENCODING"] = encoding
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"], answer["headers"] = status, dict(headers)

    body = b"".join(app(environ, start_response))
    headers = answer["headers"]
    if "Content-Length" in headers:
        assert int(headers["Content-Length"]) == len(body)
    if headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return answer["status"], headers, body
