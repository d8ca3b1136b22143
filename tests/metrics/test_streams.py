"""The per-stream collector: exposition equal to the arrays, modes, aggregates, row cache."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from prometheus_client import generate_latest
from prometheus_client.exposition import choose_encoder
from pydantic import ValidationError

from monitor.config import MonitorConfig
from monitor.config.schema import MetricsConfig
from monitor.detection import Detector
from monitor.metrics import StreamCollector
from monitor.metrics.streams import GAUGES, SCORE_BUCKETS
from tests.metrics.fleet import (
    LABELS,
    get,
    make_detector,
    mark,
    registry_with,
    samples_of,
    stream_labels,
    stream_points,
)

OPENMETRICS = "application/openmetrics-text;version=1.0.0"
ACCEPTS = [
    None,
    "text/plain;version=0.0.4",
    "text/plain;version=1.0.0;escaping=underscores",
    "text/plain;version=1.0.0;escaping=allow-utf-8",
    "text/plain;version=1.0.0;escaping=dots",
    OPENMETRICS,
    OPENMETRICS + ";escaping=underscores",
    OPENMETRICS + ";escaping=allow-utf-8",
    # What Prometheus sends.
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
]


def scrape(detector: Detector, accept: str | None = None, **options) -> dict:
    registry, collector = registry_with(detector, **options)
    _, headers, body = get(registry, collector, accept=accept)
    openmetrics = headers["Content-Type"].startswith("application/openmetrics-text")
    return samples_of(body.decode(), openmetrics=openmetrics)


def per_stream(samples: dict, name: str) -> dict:
    """{stream key: value} of one per-stream metric."""
    return {dict(labels)["stream"]: value for (n, labels), value in samples.items() if n == name}


@pytest.mark.parametrize("accept", ACCEPTS)
def test_bulk_text_is_the_bytes_prometheus_client_writes(accept):
    detector = make_detector(unseen=3)
    mark(detector, [1, 4, 9], critical=[4])
    detector.state.last_value[2] = np.nan
    detector.state.expected[3] = np.inf
    detector.state.lower[3] = -np.inf
    detector.state.upper[5] = 12_345_678.0
    registry, collector = registry_with(detector)
    _, headers, body = get(registry, collector, accept=accept)
    encoder, content_type = choose_encoder(accept or "")
    assert headers["Content-Type"] == content_type
    assert body == encoder(registry)  # the registry's way: every sample an object
    dots = accept is not None and "dots" in accept
    prefix = b"\nmonitor__stream__" if dots else b"\nmonitor_stream_"
    assert body.count(prefix + b"value{") == 24
    assert body.count(prefix + (b"anomaly__severity{" if dots else b"anomaly_severity{")) == 3


def test_samples_equal_the_arrays_with_hostile_labels():
    detector = make_detector(unseen=2)
    mark(detector, [0, 3], critical=[3])
    detector.state.last_value[1] = np.nan
    samples = scrape(detector)
    state, n = detector.state, len(detector.streams.keys)
    seen = [row for row in range(n) if state.count[row] > 0]
    assert len(seen) == n - 2 == 24
    for name, _, column in GAUGES:
        for row in seen:
            value = samples[(name, stream_labels(detector, row))]
            expected = float(state[column][row])
            assert value == expected or (math.isnan(value) and math.isnan(expected)), name
    for row in seen:
        events = samples[("monitor_anomaly_events_total", stream_labels(detector, row))]
        assert events == state.events[row]
    # Unseen rows have no series; the severity gauge only for anomalous rows.
    for row in range(24, n):
        assert ("monitor_stream_value", stream_labels(detector, row)) not in samples
    severity = {
        (dict(labels)["stream"], dict(labels)["severity"])
        for (name, labels), _ in samples.items()
        if name == "monitor_stream_anomaly_severity"
    }
    keys = detector.streams.keys
    assert severity == {(keys[0], "warning"), (keys[3], "critical")}
    hostile = [k for k in keys[:24] if '"' in k or "\n" in k or "\\" in k]
    assert hostile and set(hostile) <= set(per_stream(samples, "monitor_stream_value"))


def test_registry_reads_the_same_samples():
    detector = make_detector()
    registry, collector = registry_with(detector)
    row = 4
    labels = dict(stream_labels(detector, row))
    value = registry.get_sample_value("monitor_stream_value", labels)
    assert value == detector.state.last_value[row]
    _, _, body = get(registry, collector)
    assert samples_of(generate_latest(registry).decode()) == samples_of(body.decode())


@pytest.mark.parametrize("accept", [None, OPENMETRICS])
@pytest.mark.parametrize("mode", ["all", "matching", "anomalous"])
def test_modes_expose_their_streams_and_aggregates_cover_all(mode, accept):
    detector = make_detector(unseen=2)
    keys = detector.streams.keys
    mark(detector, [0, 5], critical=[5])
    detector.state.score[[1, 2, 3]] = [0.05, 0.35, 1.0]
    samples = scrape(detector, accept, per_stream=mode, match=["cpu{*eu-1}", "nothing*"])
    matching = {k for k in keys[:24] if k.startswith("cpu{") and k.endswith("eu-1}")}
    assert matching and len(matching) < 24
    expected = {
        "all": set(keys[:24]),
        "matching": matching | {keys[0], keys[5]},
        "anomalous": {keys[0], keys[5]},
    }[mode]
    for name, _, _ in GAUGES:
        assert set(per_stream(samples, name)) == expected, name
    assert set(per_stream(samples, "monitor_anomaly_events_total")) == expected
    assert set(per_stream(samples, "monitor_stream_anomaly_severity")) == {keys[0], keys[5]}
    assert samples[("monitor_streams_exposed", ())] == len(expected)
    assert samples[("monitor_streams_anomalous", ())] == 2
    scores = detector.state.score[:24]
    for bound in SCORE_BUCKETS:
        bucket = samples[("monitor_stream_scores_bucket", (("le", str(bound)),))]
        assert bucket == np.count_nonzero(scores <= bound), bound
    assert samples[("monitor_stream_scores_bucket", (("le", "+Inf"),))] == 24
    assert samples[("monitor_stream_scores_gcount", ())] == 24
    assert samples[("monitor_stream_scores_gsum", ())] == pytest.approx(scores.sum())


def test_aggregates_of_an_empty_detector():
    samples = scrape(Detector(MonitorConfig()), per_stream="anomalous")
    assert samples[("monitor_streams_exposed", ())] == 0
    assert samples[("monitor_streams_anomalous", ())] == 0
    assert samples[("monitor_stream_scores_bucket", (("le", "+Inf"),))] == 0
    assert not per_stream(samples, "monitor_stream_value")


def evict_and_reuse(detector: Detector, row: int, newcomer: int) -> None:
    """Evict the stream of ``row`` (idle), then give its row to stream ``newcomer``."""
    streams = detector.streams
    streams.clock = lambda: 1000.0
    others = [stream_points(i, 10, 1.0) for i in range(len(streams.keys)) if i != row]
    detector.process(others)
    freed = streams.evict_idle(now=1050.0, ttl=100.0)
    detector.release(freed)
    assert freed.tolist() == [row]
    detector.process([stream_points(newcomer, 11, 42.0)])
    assert streams.rows[stream_points(newcomer, 0, 0.0).key] == row


@pytest.mark.parametrize("accept", [None, OPENMETRICS])
def test_row_cache_follows_a_reused_row(accept):
    detector = make_detector(n_streams=6)
    registry, collector = registry_with(detector, per_stream="matching", match=["cpu*"])
    old_key = detector.streams.keys[1]
    assert old_key.startswith("cpu{")
    openmetrics = accept == OPENMETRICS
    before = samples_of(get(registry, collector, accept)[2].decode(), openmetrics)
    assert old_key in per_stream(before, "monitor_stream_value")

    # Evicted: gone from the next scrape.
    streams = detector.streams
    streams.clock = lambda: 1000.0
    detector.process([stream_points(i, 10, 1.0) for i in range(6) if i != 1])
    detector.release(streams.evict_idle(now=1050.0, ttl=100.0))
    evicted = samples_of(get(registry, collector, accept)[2].decode(), openmetrics)
    assert old_key not in per_stream(evicted, "monitor_stream_value")
    assert evicted[("monitor_streams_exposed", ())] == before[("monitor_streams_exposed", ())] - 1

    # Row 1 reused by a stream that is not "cpu*": not exposed, unless anomalous.
    detector.process([stream_points(6, 11, 42.0)])
    new_key = detector.streams.keys[1]
    assert new_key.startswith('weird"name') and streams.rows[new_key] == 1
    reused = samples_of(get(registry, collector, accept)[2].decode(), openmetrics)
    assert old_key not in per_stream(reused, "monitor_stream_value")
    assert new_key not in per_stream(reused, "monitor_stream_value")
    mark(detector, [1])
    shown = samples_of(get(registry, collector, accept)[2].decode(), openmetrics)
    assert per_stream(shown, "monitor_stream_value")[new_key] == 42.0
    assert ("monitor_stream_value", stream_labels(detector, 1)) in shown
    assert old_key not in per_stream(shown, "monitor_stream_value")


def test_row_cache_follows_a_reused_row_in_every_mode():
    detector = make_detector(n_streams=6)
    registry, collector = registry_with(detector)
    get(registry, collector)
    get(registry, collector, OPENMETRICS)
    registry.get_sample_value("monitor_stream_value", {})  # fills the label values too
    evict_and_reuse(detector, row=2, newcomer=9)
    encoder, _ = choose_encoder("")
    assert get(registry, collector)[2] == encoder(registry)
    samples = scrape(detector)
    assert per_stream(samples, "monitor_stream_value")[detector.streams.keys[2]] == 42.0
    labels = dict(stream_labels(detector, 2))
    assert registry.get_sample_value("monitor_stream_value", labels) == 42.0


def test_glob_matching_is_cached_per_row(monkeypatch):
    detector = make_detector(n_streams=6)
    registry, collector = registry_with(detector, per_stream="matching", match=["cpu*"])
    get(registry, collector)
    pattern = collector._cache.pattern
    assert pattern is not None
    calls = []

    class Counting:
        def match(self, key):
            calls.append(key)
            return pattern.match(key)

    monkeypatch.setattr(collector._cache, "pattern", Counting())
    get(registry, collector)
    get(registry, collector)
    assert calls == []
    evict_and_reuse(detector, row=3, newcomer=8)
    get(registry, collector)
    assert calls == [detector.streams.keys[3]]


def test_label_names_are_deduplicated_and_stream_is_not_repeated():
    detector = make_detector(n_streams=2)
    collector = StreamCollector(detector, threading.Lock(), ["host", "stream", "host"])
    assert collector.label_names == ("stream", "host")


def test_per_stream_is_checked():
    with pytest.raises(ValueError, match="per_stream"):
        StreamCollector(make_detector(n_streams=1), threading.Lock(), per_stream="some")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        MetricsConfig(per_stream="some")  # type: ignore[arg-type]
    config = MetricsConfig(per_stream="matching", per_stream_match=("web-*",))
    collector = StreamCollector.from_config(Detector(MonitorConfig()), threading.Lock(), config)
    assert (collector.per_stream, collector.match) == ("matching", ("web-*",))
    assert collector.extra_labels == ()


def test_collector_reads_without_registration():
    detector = make_detector(n_streams=3)
    collector = StreamCollector(detector, threading.Lock(), LABELS)
    with collector.deferred() as scrape_:
        pass
    text = b"".join(scrape_.render()).decode()
    assert len(per_stream(samples_of(text), "monitor_stream_value")) == 3
