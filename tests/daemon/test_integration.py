"""The daemon against a real embedded broker: records in, events, dead letters and metrics out."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import numpy as np
import orjson
import pytest
from kafka import KafkaProducer

from monitor.config import MonitorConfig
from monitor.daemon.runner import run_daemon
from monitor.demo.feed import feed_order
from monitor.demo.synthetic import SyntheticSeries, make_fleet
from monitor.kafka.admin import ensure_topics
from monitor.kafka.ports import free_port
from monitor.replay import encode_native
from tests.daemon_settings import TEST_CONSUMER
from tests.probes import scrape, total
from tests.records.bad_records import BAD_RECORDS, TRICKY_GOOD_RECORDS

pytestmark = pytest.mark.integration

TRANSPORTS = ("kafka-python", "confluent")
CLIENTS = [
    {"transport": transport, "reader": reader}
    for reader in ("process", "inline")
    for transport in TRANSPORTS
]


@pytest.fixture(params=CLIENTS, ids=lambda c: f"{c['transport']}-{c['reader']}")
def clients(request: pytest.FixtureRequest) -> dict[str, str]:
    """Each client library of ``kafka.transport``, read in a child process and inline:
    the tests asking for it run with all four."""
    return dict(request.param)


WARMUP = 300
SEASON = 144
MAX_RECORD_BYTES = 65_536


def run_until_consumed(config: MonitorConfig, port: int, count: int, settle: float = 0.0):
    """Run the daemon in a thread until /metrics shows ``count`` records consumed.

    Waits ``settle`` seconds more (to catch records that must not arrive), stops the
    daemon and returns (the last scrape, the daemon's exit codes).
    """
    stop = threading.Event()
    exit_codes: list[int] = []
    runner = threading.Thread(target=lambda: exit_codes.append(run_daemon(config, stop)))
    runner.start()
    try:
        deadline = time.monotonic() + 120
        samples: dict = {}
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                samples = scrape(port)
            except OSError:
                continue
            if total(samples, "monitor_records_consumed_total") >= count:
                break
        time.sleep(settle)
        samples = scrape(port)
    finally:
        stop.set()
        runner.join(timeout=30)
    return samples, exit_codes


def final_spike_stream() -> SyntheticSeries:
    rng = np.random.default_rng(11)
    values = 20 + rng.normal(0, 0.5, 700)
    values[-1] = 60.0
    ts = 1_700_000_000.0 + 60.0 * np.arange(700)
    return SyntheticSeries("it.final", (("host", "it"),), ts, values)


def expected_reason(payload: bytes, reason: str) -> str:
    if not payload:
        return "empty"
    if len(payload) > MAX_RECORD_BYTES:
        return "too_large"
    return reason


@pytest.fixture
def setup(broker, topic_name, clients):
    events, dead = f"{topic_name}-events", f"{topic_name}-dlq"
    ensure_topics(broker.bootstrap_servers, {topic_name: 3, events: 3, dead: 1})
    port = free_port()
    config = MonitorConfig.model_validate_json(
        json.dumps(
            {
                "kafka": {
                    "bootstrap_servers": broker.bootstrap_servers,
                    "group_id": f"{topic_name}-group",
                    **clients,
                    "topics": [topic_name],
                    **TEST_CONSUMER,
                    "max_record_bytes": MAX_RECORD_BYTES,
                },
                "events": {"topic": events},
                "dead_letter": {"topic": dead},
                "metrics": {"port": port, "address": "127.0.0.1", "stream_labels": ["host"]},
                "detector": {"warmup": WARMUP},
                "streams": {"overrides": [{"match": "demo.*", "seasonality": SEASON}]},
            }
        )
    )
    return config, topic_name, events, dead, port


def test_planted_anomalies_come_out_as_events_and_gauges(broker, setup, read_topic):
    config, topic, events_topic, dead_topic, port = setup
    fleet = make_fleet(24, 1200, seed=3, season_length=SEASON)
    series = [*fleet, final_spike_stream()]
    bad = [r for r in BAD_RECORDS if r.format == "native"]
    tricky = [r for r in TRICKY_GOOD_RECORDS if r.format == "native"]

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=10)
    series_index, point_index = feed_order(series)
    every = len(series_index) // (len(bad) + len(tricky) + 1)
    extras = [(r.payload, None) for r in bad] + [(r.payload, True) for r in tricky]
    produced = good_points = 0
    for i, (s, p) in enumerate(zip(series_index.tolist(), point_index.tolist(), strict=True)):
        item = series[s]
        producer.send(
            topic,
            key=item.key.encode(),
            value=encode_native(item.name, item.labels, float(item.ts[p]), float(item.values[p])),
        )
        produced += 1
        good_points += 1
        if i % every == 0 and extras:
            payload, good = extras.pop()
            producer.send(topic, key=b"extra", value=payload)
            produced += 1
    assert not extras
    producer.flush()
    producer.close()
    far_future = time.time() + 86_400
    future = [r for r in tricky if any(p.ts > far_future for p in r.points)]
    good_points += sum(len(r.points) for r in tricky if r not in future)

    samples, exit_codes = run_until_consumed(config, port, produced)
    assert total(samples, "monitor_records_consumed_total") == produced
    assert exit_codes == [0]

    # Every good point is scored or (tricky duplicates) dropped as late/duplicate; none lost.
    handled = total(samples, "monitor_points_scored_total") + total(
        samples, "monitor_points_dropped_total"
    )
    assert handled == good_points
    assert total(samples, "monitor_points_scored_total") >= good_points - len(tricky)

    # Every bad record is counted by reason and dead-lettered with it.
    expected = Counter(expected_reason(r.payload, r.reason) for r in bad)
    expected["timestamp_in_future"] += len(future)
    for reason, count in expected.items():
        assert total(samples, "monitor_records_rejected_total", reason=reason) == count, reason
    letters = [json.loads(r.value) for r in read_topic(dead_topic, len(bad) + len(future))]
    assert Counter(letter["reason"] for letter in letters) == expected
    assert all(letter["topic"] == topic for letter in letters)

    # Events: one (or more) for every planted anomaly, none during warm-up.
    events = [json.loads(r.value) for r in read_topic(events_topic, 10_000, timeout=5)]
    by_stream: dict[str, list[int]] = {}
    for event in events:
        by_stream.setdefault(event["stream"], []).append(event)
    start_ts, step = 1_700_000_000.0, 60.0
    planted = 0
    for item in fleet:
        indices = sorted(round((e["ts"] - start_ts) / step) for e in by_stream.get(item.key, []))
        assert all(i >= WARMUP for i in indices), (item.key, indices)
        for anomaly in item.anomalies:
            planted += 1
            assert any(anomaly.start <= i < anomaly.start + 5 for i in indices), (
                item.key,
                anomaly,
                indices,
            )
    assert planted >= 8
    clean = [s for s in fleet if not s.anomalies]
    false_alerts = sum(len(by_stream.get(s.key, [])) for s in clean)
    assert false_alerts <= len(clean), f"{false_alerts} events on {len(clean)} clean streams"
    for event in events:
        assert event["event_id"] and event["score"] >= event["threshold"]

    # Gauges: the stream whose last point is a spike is anomalous right now.
    final = "it.final{host=it}"
    assert total(samples, "monitor_stream_anomalous", stream=final, host="it") == 1
    assert total(samples, "monitor_stream_anomaly_severity", stream=final, severity="critical") == 1
    assert total(samples, "monitor_stream_anomaly_severity", stream=clean[0].key) == 0
    assert total(samples, "monitor_anomaly_events_total", stream=final) >= 1
    quiet = clean[0].key
    assert total(samples, "monitor_stream_anomalous", stream=quiet) == 0
    assert total(samples, "monitor_stream_value", stream=quiet) == pytest.approx(
        clean[0].values[-1]
    )
    assert total(samples, "monitor_streams_tracked") == len(series) + len(
        {p.key for r in tricky if r not in future for p in r.points}
    )
    assert any(name == "monitor_consumer_lag" for name, _ in samples)
    assert total(samples, "monitor_batch_duration_seconds_count") >= 1


def test_topic_pattern_subscription_consumes_every_matching_topic(broker, topic_name, clients):
    import re

    topics = [f"{topic_name}.a", f"{topic_name}.b"]
    ensure_topics(broker.bootstrap_servers, {t: 1 for t in topics} | {f"{topic_name}-x": 1})
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    for i, topic in enumerate([*topics, f"{topic_name}-x"]):
        for t in range(20):
            producer.send(topic, encode_native(f"p{i}", (), 1_700_000_000.0 + t, float(t)))
    producer.flush()
    producer.close()
    port = free_port()
    config = MonitorConfig.model_validate_json(
        json.dumps(
            {
                "kafka": {
                    "bootstrap_servers": broker.bootstrap_servers,
                    "group_id": f"{topic_name}-group",
                    **clients,
                    "topic_pattern": re.escape(topic_name) + r"\..*",
                    **TEST_CONSUMER,
                },
                "events": {"topic": f"{topic_name}-events"},
                "dead_letter": {"topic": f"{topic_name}-dlq"},
                "metrics": {"port": port, "address": "127.0.0.1"},
            }
        )
    )
    # Wait a little past the 40 records: nothing from the non-matching topic may arrive.
    samples, exit_codes = run_until_consumed(config, port, 40, settle=1.0)
    assert exit_codes == [0]
    for topic in topics:
        assert total(samples, "monitor_records_consumed_total", topic=topic) == 20
    assert total(samples, "monitor_records_consumed_total") == 40


def test_the_whole_hostile_corpus_of_every_format_through_a_real_daemon(
    broker, topic_name, read_topic
):
    """Every bad, oversize and tricky record of the three formats, one topic per format.

    None stops the loop; each bad one is counted by reason and dead-lettered; the
    tricky label values (quotes, newlines, braces) come out of /metrics, parsed by
    prometheus-client's parser, exactly as they went in.
    """
    from tests.records.bad_records import OVERSIZE_RECORDS

    formats = ("native", "prometheus-kafka-adapter", "telegraf")
    topics = {fmt: f"{topic_name}-{i}" for i, fmt in enumerate(formats)}
    dead = f"{topic_name}-dlq"
    ensure_topics(broker.bootstrap_servers, {**{t: 1 for t in topics.values()}, dead: 1})
    port = free_port()
    config = MonitorConfig.model_validate_json(
        json.dumps(
            {
                "kafka": {
                    "bootstrap_servers": broker.bootstrap_servers,
                    "group_id": f"{topic_name}-group",
                    "topics": list(topics.values()),
                    "topic_formats": {t: fmt for fmt, t in topics.items()},
                    **TEST_CONSUMER,
                    "max_record_bytes": MAX_RECORD_BYTES,
                },
                "events": {"topic": f"{topic_name}-events"},
                "dead_letter": {"topic": dead},
                "metrics": {"port": port, "address": "127.0.0.1", "stream_labels": ["a"]},
                "state": {"enabled": False},
            }
        )
    )
    far_future = time.time() + 86_400
    expected: Counter[str] = Counter()
    produced = good_points = 0
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, max_request_size=2**21)
    for record in [*BAD_RECORDS, *OVERSIZE_RECORDS]:
        producer.send(topics[record.format], value=record.payload)
        expected[expected_reason(record.payload, record.reason)] += 1
        produced += 1
    for record in TRICKY_GOOD_RECORDS:
        producer.send(topics[record.format], value=record.payload)
        produced += 1
        if any(p.ts > far_future for p in record.points):
            expected["timestamp_in_future"] += 1
        else:
            good_points += len(record.points)
    # A Prometheus staleness marker: skipped and counted as dropped, not dead-lettered.
    stale = orjson.dumps(
        {"timestamp": "2024-05-01T12:00:00Z", "value": "NaN", "name": "up", "labels": {"job": "x"}}
    )
    producer.send(topics["prometheus-kafka-adapter"], value=stale)
    produced += 1
    producer.flush()
    producer.close()
    assert {r.format for r in BAD_RECORDS} == set(formats)
    assert expected["too_large"] >= len(OVERSIZE_RECORDS)

    samples, exit_codes = run_until_consumed(config, port, produced)
    assert exit_codes == [0]
    assert total(samples, "monitor_records_consumed_total") == produced
    for fmt, topic in topics.items():
        assert total(samples, "monitor_records_consumed_total", topic=topic) == sum(
            1 for r in [*BAD_RECORDS, *OVERSIZE_RECORDS, *TRICKY_GOOD_RECORDS] if r.format == fmt
        ) + (fmt == "prometheus-kafka-adapter")
    for reason, count in expected.items():
        assert total(samples, "monitor_records_rejected_total", reason=reason) == count, reason
    assert total(samples, "monitor_records_rejected_total") == sum(expected.values())
    handled = total(samples, "monitor_points_scored_total") + total(
        samples, "monitor_points_dropped_total"
    )
    assert handled == good_points + 1
    assert total(samples, "monitor_points_dropped_total", reason="nan") == 1
    letters = [json.loads(r.value) for r in read_topic(dead, sum(expected.values()), timeout=30)]
    assert Counter(letter["reason"] for letter in letters) == expected

    # The exposition parsed (scrape() uses prometheus-client's parser): every tricky
    # label value comes back exactly, as the stream's label and inside its key.
    shown = {
        dict(labels).get("a")
        for (name, labels), _ in samples.items()
        if name == "monitor_stream_value" and "a" in dict(labels)
    }
    for record in TRICKY_GOOD_RECORDS:
        for point in record.points:
            value = dict(point.labels).get("a")
            if value is not None and point.ts <= far_future:
                assert value in shown, (record.description, value)
    streams = {
        dict(labels)["stream"]
        for (name, labels), _ in samples.items()
        if name == "monitor_stream_value"
    }
    # Braces in a name are escaped in its stream key (monitor.records.base.stream_key).
    assert 'up\\{job="x"} 1' in streams and 'm\\{a="}_f' in streams
