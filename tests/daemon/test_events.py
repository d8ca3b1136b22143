"""Anomaly events: ids as uuid.uuid5 makes them, times as datetime writes them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import orjson

from monitor.daemon.events import EVENT_NAMESPACE, AnomalyEvent, event_id, iso_time


def test_event_ids_are_uuid5_of_stream_and_time():
    rng = np.random.default_rng(3)
    streams = ["cpu", "", "disk{host=a,dev=sda}", "naïve/μs", "emoji 🚀", "x" * 500]
    times = [0.0, -1.5, 1.7e9, 1e-300, float("inf"), *rng.uniform(0, 4e9, 200).tolist()]
    for stream in streams:
        for ts in times:
            reference = uuid.uuid5(EVENT_NAMESPACE, f"{stream}@{ts!r}")
            got = event_id(stream, ts)
            assert got == str(reference)
            assert uuid.UUID(got).version == 5 and uuid.UUID(got).variant == uuid.RFC_4122


def test_iso_time_matches_datetime_for_many_times():
    rng = np.random.default_rng(4)
    times = [0.0, 0.0005, 0.9999, 1.0005, 1700000000.25, 1700000000.9995, 253402300799.999]
    times += rng.uniform(0, 4e9, 500).tolist()
    times += (np.floor(rng.uniform(0, 4e9, 200)) + rng.integers(0, 1000, 200) / 1000).tolist()
    for ts in times:
        reference = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
        assert iso_time(ts) == reference.replace("+00:00", "Z")
        assert iso_time(ts) == iso_time(ts)  # remembered answers are the same


def test_detected_at_as_epoch_or_as_text_encodes_the_same():
    event = AnomalyEvent(
        "cpu{host=a}", "cpu", (("host", "a"),), 1.7e9, 9.5, 5.0, 4.0, 6.0, 0.93, 0.5,
        "critical", {"forecast": 0.5, "hst": 0.5}, "metrics", 2, 41,
    )  # fmt: skip
    now = 1700000123.456
    assert event.encode(now) == event.encode(iso_time(now))
    fields = orjson.loads(event.encode(now))
    assert fields["detected_at"] == "2023-11-14T22:15:23.456Z"
    assert fields["event_id"] == event_id("cpu{host=a}", 1.7e9)
    assert fields["source"] == {"topic": "metrics", "partition": 2, "offset": 41}
