"""The /metrics endpoint over real HTTP: formats, compression, fallbacks, concurrent scrapes."""

from __future__ import annotations

import gzip
import threading
import urllib.error
import urllib.request

import pytest
from prometheus_client.exposition import choose_encoder

from monitor.kafka.ports import free_port
from monitor.metrics.http import negotiated_escaping, start_metrics_server
from tests.metrics.fleet import (
    get,
    make_detector,
    mark,
    registry_with,
    samples_of,
    stream_labels,
    stream_points,
)

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@pytest.fixture
def served():
    detector = make_detector(unseen=1)
    mark(detector, [2], critical=[2])
    registry, collector = registry_with(detector)
    port = free_port()
    server, thread = start_metrics_server(port, "127.0.0.1", registry, collector)
    try:
        yield detector, registry, collector, port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def fetch(port: int, path: str = "/metrics", method: str = "GET", **headers: str):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method=method, headers=headers
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, dict(response.headers), response.read()


def test_get_metrics_parses_and_equals_the_arrays(served):
    detector, registry, _, port = served
    status, headers, body = fetch(port)
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert int(headers["Content-Length"]) == len(body)
    samples = samples_of(body.decode())
    for row in range(24):
        labels = stream_labels(detector, row)
        assert samples[("monitor_stream_value", labels)] == detector.state.last_value[row]
        assert samples[("monitor_stream_anomaly_score", labels)] == detector.state.score[row]
    assert ("monitor_stream_value", stream_labels(detector, 24)) not in samples  # unseen
    labels = dict(stream_labels(detector, 2), severity="critical")
    assert samples[("monitor_stream_anomaly_severity", tuple(sorted(labels.items())))] == 1.0
    assert samples[("monitor_streams_exposed", ())] == 24
    assert samples[("monitor_streams_anomalous", ())] == 1
    assert ("monitor_build_info", (("version", "0.1.0"),)) in samples


def test_prometheus_scrape_gets_gzipped_openmetrics(served):
    _, registry, _, port = served
    status, headers, body = fetch(port, Accept=PROMETHEUS_ACCEPT, **{"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    text = gzip.decompress(body)
    assert text.endswith(b"\n# EOF\n") and text.count(b"# EOF") == 1
    encoder, _ = choose_encoder(PROMETHEUS_ACCEPT)
    assert samples_of(text.decode(), openmetrics=True) == samples_of(
        encoder(registry).decode(), openmetrics=True
    )


def test_name_filter_options_and_other_methods_are_prometheus_clients(served):
    _, _, _, port = served
    _, _, body = fetch(port, "/metrics?name[]=monitor_streams_exposed")
    assert body.decode().splitlines() == [
        "# HELP monitor_streams_exposed Streams whose per-stream series are on this scrape "
        "(see metrics.per_stream).",
        "# TYPE monitor_streams_exposed gauge",
        "monitor_streams_exposed 24.0",
    ]
    _, _, body = fetch(port, "/metrics?name[]=monitor_stream_value")
    assert body.count(b"\nmonitor_stream_value{") == 24
    status, headers, body = fetch(port, method="OPTIONS")
    assert (status, headers["Allow"], body) == (200, "OPTIONS,GET", b"")
    with pytest.raises(urllib.error.HTTPError) as error:
        fetch(port, method="POST")
    assert error.value.code == 405
    assert fetch(port, "/favicon.ico")[2] == b""


def test_any_path_serves_metrics_like_prometheus_client(served):
    _, _, _, port = served
    assert b"monitor_stream_value{" in fetch(port, "/")[2]


def test_concurrent_scrapes_while_the_detector_learns(served):
    detector, _, collector, port = served
    lock = collector.lock
    stop = threading.Event()
    errors: list[BaseException] = []

    def learn() -> None:
        t = 10
        while not stop.is_set():
            with lock:
                detector.process([stream_points(i, t, float(i + t)) for i in range(40)])
            t += 1

    def scrape() -> None:
        try:
            for _ in range(5):
                samples = samples_of(fetch(port)[2].decode())
                values = [k for k in samples if k[0] == "monitor_stream_value"]
                # One instant per scrape: the aggregate agrees with the series.
                assert samples[("monitor_streams_exposed", ())] == len(values)
                assert samples[("monitor_stream_scores_gcount", ())] == len(values)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    learner = threading.Thread(target=learn)
    learner.start()
    scrapers = [threading.Thread(target=scrape) for _ in range(3)]
    for thread in scrapers:
        thread.start()
    for thread in scrapers:
        thread.join(timeout=60)
    stop.set()
    learner.join(timeout=10)
    assert not errors, errors
    samples = samples_of(fetch(port)[2].decode())
    assert samples[("monitor_streams_exposed", ())] == 40  # the unseen row 24 is fed too
    for row in range(len(detector.streams.keys)):
        if detector.state.count[row]:
            labels = stream_labels(detector, row)
            assert samples[("monitor_stream_value", labels)] == detector.state.last_value[row]


def test_no_compression_unless_asked(served):
    _, registry, collector, _ = served
    _, headers, body = get(registry, collector, encoding="identity")
    assert "Content-Encoding" not in headers
    _, headers, gunzipped = get(registry, collector, encoding="gzip")
    assert headers["Content-Encoding"] == "gzip" and gunzipped == body


def test_ipv6_loopback():
    detector = make_detector(n_streams=2)
    registry, collector = registry_with(detector)
    port = free_port()
    try:
        server, _ = start_metrics_server(port, "::1", registry, collector)
    except OSError:
        pytest.skip("no IPv6 loopback")
    try:
        with urllib.request.urlopen(f"http://[::1]:{port}/metrics", timeout=10) as response:
            assert b"monitor_stream_value{" in response.read()
    finally:
        server.shutdown()
        server.server_close()


def test_negotiated_escaping_defaults_to_underscores():
    content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    assert negotiated_escaping(content_type) == "underscores"
    assert negotiated_escaping(content_type + "; escaping=dots") == "dots"
