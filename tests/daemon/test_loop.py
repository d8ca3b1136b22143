import gc
import json
import weakref

import numpy as np
import orjson
import pytest
from prometheus_client import CollectorRegistry

from monitor.config import MonitorConfig
from monitor.daemon import Daemon, event_id, loop
from monitor.daemon.exceptions import DeliveryError
from monitor.kafka.reader import ReadBatch
from monitor.metrics import DaemonMetrics
from monitor.records.batch import BatchDecoder
from tests.daemon.fakes import FakeConsumer, FakeProducer, batch_of, record

NOW = 1_700_100_000.0


def native(stream, ts, value, **labels):
    body = {"stream": stream, "ts": ts, "value": value}
    if labels:
        body["labels"] = labels
    return orjson.dumps(body)


def make_daemon(batches, producer=None, **overrides):
    config = MonitorConfig.model_validate_json(json.dumps(overrides))
    log: list[str] = []
    consumer = FakeConsumer(batches, log)
    producer = producer or FakeProducer()
    producer.log = log
    registry = CollectorRegistry()
    daemon = Daemon(
        config, consumer, producer, DaemonMetrics(registry), clock=lambda: NOW, sleep=lambda s: None
    )
    consumer.stop = daemon.stop
    return daemon, consumer, producer, registry


def spike_series(n=400, spike_at=350, stream="cpu"):
    rng = np.random.default_rng(0)
    values = 50 + rng.normal(0, 1, n)
    if spike_at < n:
        values[spike_at] = 90.0
    return [native(stream, 1_700_000_000.0 + 60 * t, float(v)) for t, v in enumerate(values)]


def test_scores_a_spike_emits_one_event_then_commits():
    payloads = spike_series()
    batches = [batch_of([record("metrics", 0, i, p) for i, p in enumerate(payloads)])]
    daemon, consumer, producer, registry = make_daemon(batches, detector={"warmup": 100})
    assert daemon.run() == 0
    events = [json.loads(v) for topic, _, v in producer.sent if topic == "anomalies"]
    assert [e["ts"] for e in events] == [1_700_000_000.0 + 60 * 350]
    event = events[0]
    assert event["event_id"] == event_id("cpu", event["ts"])
    assert event["stream"] == "cpu" and event["value"] == 90.0
    assert event["lower"] < event["expected"] < event["upper"] < 90.0
    assert event["score"] >= event["threshold"]
    assert list(event["detectors"]) == [
        "forecast",
        "rolling",
        "hst",
        "level",
        "season",
        "novelty",
        "rare_rate",
    ]
    assert event["source"] == {"topic": "metrics", "partition": 0, "offset": 350}
    assert event["severity"] in ("warning", "critical")
    assert consumer.log == ["flush", "commit"]
    assert consumer.closed
    assert registry.get_sample_value("monitor_points_scored_total") == 400
    assert registry.get_sample_value("monitor_events_emitted_total") == 1


def test_bad_records_are_dead_lettered_and_the_good_ones_around_them_scored():
    good = spike_series(n=50)
    bad = [
        b"{nope",
        b"",
        None,
        b'{"stream": "x", "ts": 1, "value": "high"}',
        b"x" * 70_000,
        native("x", NOW + 10 * 86_400, 1.0),
    ]
    records, offset = [], 0
    for i, payload in enumerate(good):
        records.append(record("metrics", 0, offset, payload))
        offset += 1
        if i < len(bad):
            records.append(record("metrics", 0, offset, bad[i], key=b"k"))
            offset += 1
    daemon, consumer, producer, registry = make_daemon([batch_of(records)])
    assert daemon.run() == 0
    letters = [json.loads(v) for topic, _, v in producer.sent if topic == "monitor-dead-letter"]
    assert [letter["reason"] for letter in letters] == [
        "not_json",
        "empty",
        "empty",
        "bad_value",
        "too_large",
        "timestamp_in_future",
    ]
    assert letters[0]["value"] == "{nope" and letters[0]["key"] == "k"
    assert [letter["offset"] for letter in letters] == [1, 3, 5, 7, 9, 11]
    assert registry.get_sample_value("monitor_points_scored_total") == 50
    assert registry.get_sample_value("monitor_records_rejected_total", {"reason": "empty"}) == 2
    assert registry.get_sample_value("monitor_records_consumed_total", {"topic": "metrics"}) == 56


def test_offsets_wait_for_events_that_fail_then_succeed():
    payloads = spike_series()
    failing = {"left": 3}

    def fail(topic, attempt):
        if topic == "anomalies" and failing["left"]:
            failing["left"] -= 1
            return True
        return False

    producer = FakeProducer(fail=fail)
    batches = [batch_of([record("metrics", 0, i, p) for i, p in enumerate(payloads)])]
    daemon, consumer, producer, registry = make_daemon(batches, producer, detector={"warmup": 100})
    assert daemon.run() == 0
    assert consumer.log == ["flush"] * 4 + ["commit"]
    assert len([1 for t, _, _ in producer.sent if t == "anomalies"]) == 1
    assert registry.get_sample_value("monitor_delivery_failures_total", {"topic": "anomalies"}) == 3


def test_never_commits_past_undelivered_events_and_exits_non_zero_on_stop():
    payloads = spike_series()
    producer = FakeProducer(fail=lambda topic, attempt: topic == "anomalies")
    batches = [batch_of([record("metrics", 0, i, p) for i, p in enumerate(payloads)])]
    daemon, consumer, producer, registry = make_daemon(batches, producer, detector={"warmup": 100})
    daemon.stop.wait = lambda timeout: True  # a stop request arrives while retrying
    with pytest.raises(DeliveryError):
        daemon.process_batch(batches[0])
    assert "commit" not in consumer.log


def test_a_batch_sends_its_events_without_waiting_and_the_commit_waits_for_them(monkeypatch):
    monkeypatch.setattr(loop, "SETTLE_INTERVAL_S", 3600.0)  # not due again during the test
    payloads = spike_series()
    producer = FakeProducer(fail=lambda topic, attempt: topic == "anomalies")
    first = batch_of([record("metrics", 0, i, p) for i, p in enumerate(payloads[:300])])
    second = batch_of([record("metrics", 0, 300 + i, p) for i, p in enumerate(payloads[300:])])
    daemon, consumer, producer, registry = make_daemon(
        [first, second], producer, detector={"warmup": 100}
    )
    daemon.process_batch(first)  # nothing to confirm
    daemon.process_batch(second)  # the spike's event is sent; confirmed within 1 s
    assert producer.attempts == 1 and consumer.log == []
    assert registry.get_sample_value("monitor_events_emitted_total") == 0
    daemon.stop.wait = lambda timeout: True  # a stop request arrives while retrying
    with pytest.raises(DeliveryError):
        daemon.partitions.commit()
    assert consumer.log == ["flush"] and not consumer.committed
    assert registry.get_sample_value("monitor_delivery_failures_total", {"topic": "anomalies"}) == 1


def test_a_commit_confirms_the_events_sent_before_it():
    payloads = spike_series()
    first = batch_of([record("metrics", 0, i, p) for i, p in enumerate(payloads[:300])])
    second = batch_of([record("metrics", 0, 300 + i, p) for i, p in enumerate(payloads[300:])])
    daemon, consumer, producer, registry = make_daemon([first, second], detector={"warmup": 100})
    daemon.process_batch(first)
    daemon.process_batch(second)
    daemon.partitions.commit()
    assert consumer.log == ["flush", "commit"]
    assert registry.get_sample_value("monitor_events_emitted_total") == 1
    assert list(consumer.committed.values()) == [400]


def test_late_and_duplicate_points_are_dropped_and_counted():
    payloads = [
        native("cpu", 100.0, 1.0),
        native("cpu", 200.0, 2.0),
        native("cpu", 200.0, 2.0),
        native("cpu", 150.0, 3.0),
    ]
    first = batch_of([record("metrics", 0, i, p) for i, p in enumerate(payloads[:3])])
    second = batch_of([record("metrics", 0, 3, payloads[3])])
    daemon, consumer, producer, registry = make_daemon([first, second])
    assert daemon.run() == 0
    assert registry.get_sample_value("monitor_points_scored_total") == 2
    assert registry.get_sample_value("monitor_points_dropped_total", {"reason": "duplicate"}) == 1
    assert registry.get_sample_value("monitor_points_dropped_total", {"reason": "late"}) == 1


def test_points_within_a_batch_are_applied_in_time_order():
    payloads = [native("cpu", 300.0, 3.0), native("cpu", 100.0, 1.0), native("cpu", 200.0, 2.0)]
    daemon, *_, registry = make_daemon(
        [batch_of([record("metrics", 0, i, p) for i, p in enumerate(payloads)])]
    )
    assert daemon.run() == 0
    assert registry.get_sample_value("monitor_points_scored_total") == 3
    assert daemon.detector.state.last_value[0] == 3.0


def test_stream_limit_and_disabled_streams():
    payloads = [native(f"s{i}", 100.0, 1.0) for i in range(5)] + [native("noisy.x", 100.0, 1.0)]
    daemon, *_, registry = make_daemon(
        [batch_of([record("metrics", 0, i, p) for i, p in enumerate(payloads)])],
        streams={"max_streams": 4, "overrides": [{"match": "s0", "disabled": True}]},
    )
    assert daemon.run() == 0
    assert registry.get_sample_value("monitor_points_scored_total") == 3
    assert (
        registry.get_sample_value("monitor_points_dropped_total", {"reason": "too_many_streams"})
        == 2
    )
    assert registry.get_sample_value("monitor_points_dropped_total", {"reason": "disabled"}) == 1
    assert registry.get_sample_value("monitor_streams_tracked") == 4


def test_per_topic_formats():
    adapter = orjson.dumps(
        {
            "name": "up",
            "labels": {"__name__": "up", "job": "a"},
            "timestamp": "2023-11-01T12:00:00Z",
            "value": "1",
        }
    )
    telegraf = orjson.dumps(
        {
            "name": "cpu",
            "tags": {"host": "h"},
            "fields": {"idle": 99.0, "user": 1.0},
            "timestamp": 1698840000,
        }
    )
    records = [record("prom", 0, 0, adapter), record("tg", 0, 0, telegraf)]
    daemon, consumer, *_ = make_daemon(
        [batch_of(records)],
        kafka={
            "topics": ["prom", "tg"],
            "topic_formats": {"prom": "prometheus-kafka-adapter", "tg": "telegraf"},
        },
    )
    assert daemon.run() == 0
    assert consumer.subscribed == ["prom", "tg"]
    assert sorted(daemon.detector.streams.keys) == [
        "cpu_idle{host=h}",
        "cpu_user{host=h}",
        "up{job=a}",
    ]


def test_prometheus_nan_samples_are_counted_as_dropped_not_dead_lettered():
    def sample(t, value):
        return orjson.dumps(
            {
                "timestamp": f"2023-11-01T12:{t:02d}:00Z",
                "value": value,
                "name": "up",
                "labels": {"__name__": "up", "job": "a"},
            }
        )

    # A series, its staleness marker (NaN) when the target goes, and a +Inf (invalid).
    payloads = [sample(t, "1") for t in range(5)] + [sample(5, "NaN"), sample(6, "+Inf")]
    records = [record("prom", 0, i, p) for i, p in enumerate(payloads)]
    daemon, _, producer, registry = make_daemon(
        [batch_of(records)],
        kafka={"topics": ["prom"], "format": "prometheus-kafka-adapter"},
    )
    assert daemon.run() == 0
    assert registry.get_sample_value("monitor_points_scored_total") == 5
    assert registry.get_sample_value("monitor_points_dropped_total", {"reason": "nan"}) == 1
    assert registry.get_sample_value("monitor_records_rejected_total", {"reason": "bad_value"}) == 1
    letters = [json.loads(v) for topic, _, v in producer.sent if topic == "monitor-dead-letter"]
    assert [letter["reason"] for letter in letters] == ["bad_value"]


def test_subscribes_to_a_topic_pattern_when_given():
    daemon, consumer, *_ = make_daemon([], kafka={"topic_pattern": "metrics\\..*"})
    assert daemon.run() == 0
    assert consumer.subscribed == "metrics\\..*"


def test_a_batch_decoded_by_the_reader_gives_what_a_batch_decoded_here_gives():
    # The reading child decodes with the same BatchDecoder and sends the columns along
    # (monitor.kafka.reader.ReadBatch); it judges timestamps in the future by its clock,
    # which is the daemon's. Two partitions, bad records between good ones, one spike each.
    records = []
    for partition, stream in ((0, "cpu"), (1, "mem")):
        for offset, payload in enumerate(spike_series(n=400, spike_at=300, stream=stream)):
            if offset % 50 == 7:
                payload = native(stream, NOW + 10 * 86_400, 1.0) if partition else b"{nope"
            records.append(record("metrics", partition, offset, payload, key=b"k"))
    raw = batch_of(records)
    config = MonitorConfig()
    decode = BatchDecoder.for_config(config, clock=lambda: NOW)
    read = ReadBatch(decode((p.topic, [r.value for r in rs]) for p, rs in raw.items()))
    # The daemon reads the values of rejected records only (for their dead letters):
    # had it decoded the others again, they would be rejected as empty.
    for partition, rs in raw.items():
        read[partition] = [r if r.offset % 50 == 7 else r._replace(value=None) for r in rs]
    outputs = []
    for batch in (raw, read):
        daemon, _, producer, registry = make_daemon([batch], detector={"warmup": 100})
        assert daemon.run() == 0
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for metric in registry.collect()
            for s in metric.samples
            # Durations depend on the machine's load, not on the batch.
            if "duration_seconds" not in s.name and not s.name.endswith("_created")
        }
        outputs.append((producer.sent, samples))
    assert outputs[0] == outputs[1]
    sent = outputs[0][0]
    letters = [json.loads(v) for topic, _, v in sent if topic == "monitor-dead-letter"]
    assert [(letter["partition"], letter["reason"]) for letter in letters] == [
        (0, "not_json")
    ] * 8 + [(1, "timestamp_in_future")] * 8
    events = [json.loads(v) for topic, _, v in sent if topic == "anomalies"]
    assert [(e["stream"], e["source"]["offset"]) for e in events] == [("cpu", 300), ("mem", 300)]


def test_a_stopped_daemon_goes_as_soon_as_it_is_dropped_with_its_clients():
    # No reference cycle through its parts: dropped, it and its producer are freed at once
    # (not at some later garbage collection), so a client's connections do not outlive it.
    payloads = spike_series(n=50)
    daemon, _, producer, _ = make_daemon([batch_of([record("metrics", 0, 0, payloads[0])])])
    assert daemon.run() == 0
    gone, producer_gone = weakref.ref(daemon), weakref.ref(producer)
    gc.disable()
    try:
        del daemon, producer
        assert gone() is None and producer_gone() is None
    finally:
        gc.enable()
