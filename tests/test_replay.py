"""Replay: CSV parsing, native encoding, pacing (fake clock), and a real topic round trip."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from kafka import KafkaProducer

from monitor.kafka.admin import ensure_topics
from monitor.kafka.broker import EmbeddedBroker
from monitor.records.base import stream_key
from monitor.replay import (
    ReplayError,
    encode_native,
    read_series_csv,
    replay_csv,
    replay_schedule,
    replay_series,
)


class FakeTime:
    """A clock that moves only when slept on, or when a send costs time."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


class RecordingProducer:
    def __init__(self, fake_time: FakeTime | None = None, send_cost: float = 0.0) -> None:
        self.sent: list[tuple[str, bytes, bytes, float]] = []
        self.flushes = 0
        self.fake_time = fake_time
        self.send_cost = send_cost

    def send(self, topic: str, key: bytes, value: bytes) -> None:
        now = self.fake_time.now if self.fake_time else 0.0
        self.sent.append((topic, key, value, now))
        if self.fake_time:
            self.fake_time.now += self.send_cost

    def flush(self) -> None:
        self.flushes += 1


def _write(tmp_path: Path, text: str, name: str = "series.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- CSV ------------------------------------------------------------------------------


def test_read_series_csv_parses_nab_format(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "timestamp,value\n2014-04-01 00:00:00,18.32\n2014-04-01 00:05:00,-1\n"
        "2014-04-01 00:10:00,2.5e3\n",
    )
    ts, values = read_series_csv(path)
    assert ts.dtype == np.float64 and values.dtype == np.float64
    assert ts.tolist() == [1396310400.0, 1396310700.0, 1396311000.0]
    assert values.tolist() == [18.32, -1.0, 2500.0]


def test_read_series_csv_keeps_fractional_seconds_and_offsets(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "timestamp,value\n2014-04-01 00:00:00.5,1\n2014-04-01T02:00:00+02:00,2\n"
    )
    ts, _ = read_series_csv(path)
    assert ts.tolist() == [1396310400.5, 1396310400.0]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("time,value\n2014-04-01 00:00:00,1\n", "missing \\['timestamp'\\]"),
        ("timestamp,value\nyesterday,1\n", "unparseable timestamp"),
        ("timestamp,value\n2014-04-01 00:00:00,abc\n", "non-numeric value"),
    ],
)
def test_read_series_csv_rejects_bad_files(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ReplayError, match=match):
        read_series_csv(_write(tmp_path, text))


def test_read_series_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="cannot read"):
        read_series_csv(tmp_path / "absent.csv")


# --- encoding -------------------------------------------------------------------------


def test_encode_native_round_trips() -> None:
    payload = encode_native("cpu.host-1", {"zone": "a", "host": "host-1"}, 1.7e9, 0.93)
    assert orjson.loads(payload) == {
        "stream": "cpu.host-1",
        "ts": 1700000000.0,
        "value": 0.93,
        "labels": {"host": "host-1", "zone": "a"},
    }
    assert list(orjson.loads(payload)["labels"]) == ["host", "zone"]


def test_encode_native_accepts_numpy_scalars_and_label_pairs() -> None:
    payload = encode_native("m", (("k", "v"),), np.float64(5.0), np.float32(0.5))
    assert orjson.loads(payload) == {"stream": "m", "ts": 5.0, "value": 0.5, "labels": {"k": "v"}}
    assert "labels" not in orjson.loads(encode_native("m", None, 1, 2))


# --- pacing ---------------------------------------------------------------------------


def test_no_pacing_never_sleeps() -> None:
    fake = FakeTime()
    producer = RecordingProducer(fake)
    count = replay_series(
        producer, "t", "m", np.arange(50.0), np.ones(50), clock=fake.clock, sleep=fake.sleep
    )
    assert count == 50 and fake.sleeps == [] and producer.flushes == 1
    assert [s[0] for s in producer.sent] == ["t"] * 50


def test_rate_paces_exactly() -> None:
    fake = FakeTime()
    producer = RecordingProducer(fake)
    replay_series(
        producer,
        "t",
        "m",
        np.arange(11.0),
        np.zeros(11),
        rate=4.0,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    send_times = [s[3] - 1000.0 for s in producer.sent]
    assert send_times == [i * 0.25 for i in range(11)]
    assert fake.sleeps == [0.25] * 10
    assert fake.now == 1002.5


def test_speedup_follows_the_series_gaps() -> None:
    fake = FakeTime()
    producer = RecordingProducer(fake)
    ts = np.array([0.0, 60.0, 60.0, 180.0, 120.0, 300.0])  # a repeat and a backwards step
    replay_series(
        producer, "t", "m", ts, np.zeros(6), speedup=60.0, clock=fake.clock, sleep=fake.sleep
    )
    assert [s[3] - 1000.0 for s in producer.sent] == [0.0, 1.0, 1.0, 3.0, 3.0, 5.0]
    assert fake.sleeps == [1.0, 2.0, 2.0]


def test_rate_caps_speedup() -> None:
    fake = FakeTime()
    producer = RecordingProducer(fake)
    ts = np.array([0.0, 1.0, 2.0, 3.0, 600.0])
    replay_series(
        producer,
        "t",
        "m",
        ts,
        np.zeros(5),
        rate=2.0,
        speedup=60.0,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    assert [s[3] - 1000.0 for s in producer.sent] == [0.0, 0.5, 1.0, 1.5, 10.0]


def test_behind_schedule_catches_up_in_a_burst_without_sleeping() -> None:
    """A slow send (0.3 s, schedule 0.25 s apart) never sleeps; the average pace holds."""
    fake = FakeTime()
    producer = RecordingProducer(fake, send_cost=0.3)
    replay_series(
        producer,
        "t",
        "m",
        np.arange(20.0),
        np.zeros(20),
        rate=4.0,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    assert fake.sleeps == []


def test_stall_is_followed_by_a_burst_then_regular_pace() -> None:
    fake = FakeTime()

    class StallingProducer(RecordingProducer):
        def send(self, topic: str, key: bytes, value: bytes) -> None:
            super().send(topic, key, value)
            if len(self.sent) == 3:
                fake.now += 2.0  # the third send blocks for 2 s

    producer = StallingProducer(fake)
    replay_series(
        producer,
        "t",
        "m",
        np.arange(20.0),
        np.zeros(20),
        rate=4.0,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    times = [s[3] - 1000.0 for s in producer.sent]
    # Points 3..10 were due at 0.75..2.5 s; they all go out at 2.5 s, back to back.
    assert times[:3] == [0.0, 0.25, 0.5]
    assert times[3:11] == [2.5] * 8
    assert times[11:] == [i * 0.25 for i in range(11, 20)]
    assert len(fake.sleeps) == 2 + 9  # one per point that was ahead of schedule
    assert fake.now == pytest.approx(1000.0 + 19 * 0.25)


def test_real_clock_pacing_is_accurate_over_the_run() -> None:
    import time

    producer = RecordingProducer()
    started = time.monotonic()
    replay_series(producer, "t", "m", np.arange(200.0), np.zeros(200), rate=1000.0)
    elapsed = time.monotonic() - started
    assert 0.199 - 1e-3 <= elapsed < 0.5


@pytest.mark.parametrize("kwargs", [{"rate": 0}, {"rate": -1.0}, {"speedup": float("nan")}])
def test_bad_pacing_options(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ReplayError):
        replay_series(RecordingProducer(), "t", "m", np.arange(3.0), np.zeros(3), **kwargs)


def test_schedule_of_empty_series() -> None:
    assert replay_schedule(np.array([]), rate=1.0).tolist() == []  # type: ignore[union-attr]
    assert replay_schedule(np.array([1.0])) is None


def test_mismatched_arrays() -> None:
    with pytest.raises(ReplayError, match="equal length"):
        replay_series(RecordingProducer(), "t", "m", np.arange(3.0), np.zeros(4))


def test_replay_csv_defaults_to_the_file_stem(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,2\n", "cpu_x.csv"
    )
    producer = RecordingProducer()
    assert replay_csv(producer, "t", path, labels={"host": "h1"}) == 2
    assert {s[1] for s in producer.sent} == {b"cpu_x{host=h1}"}
    assert orjson.loads(producer.sent[1][2]) == {
        "stream": "cpu_x",
        "ts": 1396310700.0,
        "value": 2.0,
        "labels": {"host": "h1"},
    }
    producer = RecordingProducer()
    replay_csv(producer, "t", path, stream="renamed")
    assert producer.sent[0][1] == b"renamed"


# --- a real topic ---------------------------------------------------------------------


@pytest.mark.integration
def test_replay_into_a_topic_reads_back_in_order(
    broker: EmbeddedBroker,
    topic_name: str,
    read_topic: Callable[..., list[Any]],
) -> None:
    ensure_topics(broker.bootstrap_servers, {topic_name: 3})
    streams = [("cpu", {"host": f"h{i}"}) for i in range(4)]
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=5)
    try:
        total = 0
        for i, (name, labels) in enumerate(streams):
            ts = 1_700_000_000.0 + 60.0 * np.arange(50)
            values = np.arange(50, dtype=np.float64) + 1000 * i
            total += replay_series(producer, topic_name, name, ts, values, labels=labels)
    finally:
        producer.close()
    assert total == 200

    records = read_topic(topic_name, 200)
    assert len(records) == 200
    by_key: dict[bytes, list[dict[str, Any]]] = {}
    partition_of: dict[bytes, int] = {}
    for record in records:
        by_key.setdefault(record.key, []).append(orjson.loads(record.value))
        assert partition_of.setdefault(record.key, record.partition) == record.partition
    assert set(by_key) == {stream_key(n, tuple(sorted(lb.items()))).encode() for n, lb in streams}
    for i, (name, labels) in enumerate(streams):
        points = by_key[stream_key(name, tuple(labels.items())).encode()]
        assert [p["value"] for p in points] == [float(v + 1000 * i) for v in range(50)]
        assert [p["ts"] for p in points] == [1_700_000_000.0 + 60.0 * k for k in range(50)]
        assert all(p["stream"] == name and p["labels"] == labels for p in points)
