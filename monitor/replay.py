"""Replaying recorded metric series into a Kafka topic as native records.

A native record is one JSON object per Kafka record::

    {"stream": "cpu.host-1", "ts": 1700000000.0, "value": 0.93, "labels": {"host": "host-1"}}

keyed by the stream key (:func:`monitor.records.base.stream_key`, UTF-8), so that all
points of a stream land in one partition, in order.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, SupportsFloat

import numpy as np
import orjson
import pandas as pd

from monitor.exceptions import MonitorError
from monitor.records.base import Labels, stream_key

LabelsLike = Labels | Mapping[str, str] | Iterable[tuple[str, str]]


class ReplayError(MonitorError, ValueError):
    """A series that cannot be read or replayed (bad CSV, bad pacing options).

    >>> isinstance(ReplayError("bad"), ValueError)
    True
    """


class Producer(Protocol):
    """What replay needs of a producer: kafka-python's ``KafkaProducer`` fits."""

    def send(self, topic: str, *, key: bytes, value: bytes) -> Any: ...

    def flush(self) -> Any: ...


def read_series_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a NAB-style CSV (header ``timestamp,value``) into epoch seconds and values.

    Timestamps such as ``2014-04-01 00:00:00`` are taken as UTC (an explicit offset is
    honoured). Returns two float64 arrays of equal length, in file order. Raises
    :class:`ReplayError` on a missing column, an unparseable timestamp or value.

    >>> import tempfile, os
    >>> fd, name = tempfile.mkstemp(suffix=".csv"); os.close(fd)
    >>> _ = Path(name).write_text("timestamp,value\\n2014-04-01 00:00:00,1.5\\n"
    ...                           "2014-04-01 00:05:00,2\\n")
    >>> ts, values = read_series_csv(name)
    >>> ts.tolist(), values.tolist()
    ([1396310400.0, 1396310700.0], [1.5, 2.0])
    >>> os.remove(name)
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype={"timestamp": str})
    except (OSError, ValueError) as exc:
        raise ReplayError(f"cannot read {path}: {exc}") from exc
    missing = {"timestamp", "value"} - set(frame.columns)
    if missing:
        raise ReplayError(
            f"{path}: expected columns 'timestamp,value', missing {sorted(missing)}; "
            f"found {list(frame.columns)}"
        )
    try:
        stamps = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise ReplayError(f"{path}: unparseable timestamp: {exc}") from exc
    if stamps.isna().any():
        row = int(np.flatnonzero(stamps.isna().to_numpy())[0])
        raise ReplayError(f"{path}: missing timestamp on data row {row + 1}")
    epoch = pd.Timestamp(0, tz="UTC")
    ts = ((stamps - epoch) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64)
    try:
        values = pd.to_numeric(frame["value"], errors="raise").to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise ReplayError(f"{path}: non-numeric value: {exc}") from exc
    return ts, values


def normalize_labels(labels: LabelsLike | None) -> Labels:
    """Return labels as a tuple of ``(name, value)`` pairs sorted by name.

    >>> normalize_labels({"host": "h1", "dc": "eu"})
    (('dc', 'eu'), ('host', 'h1'))
    >>> normalize_labels(None)
    ()
    """
    if labels is None:
        return ()
    pairs = labels.items() if isinstance(labels, Mapping) else labels
    return tuple(sorted((str(k), str(v)) for k, v in pairs))


def encode_native(
    name: str, labels: LabelsLike | None, ts: SupportsFloat, value: SupportsFloat
) -> bytes:
    """Encode one point as a native JSON record (``labels`` omitted when empty).

    A non-finite value encodes as ``null``, which the decoder rejects, as it should.

    >>> encode_native("cpu.host-1", {"host": "host-1"}, 1700000000.0, 0.93)
    b'{"stream":"cpu.host-1","ts":1700000000.0,"value":0.93,"labels":{"host":"host-1"}}'
    >>> encode_native("cpu", (), 1700000000, 1)
    b'{"stream":"cpu","ts":1700000000.0,"value":1.0}'
    """
    record: dict[str, Any] = {"stream": name, "ts": float(ts), "value": float(value)}
    pairs = normalize_labels(labels)
    if pairs:
        record["labels"] = dict(pairs)
    return orjson.dumps(record)


def replay_schedule(
    ts: np.ndarray,
    rate: float | None = None,
    speedup: float | None = None,
) -> np.ndarray | None:
    """Return when each point is due, in seconds after the start of the replay.

    ``rate`` spaces points ``1 / rate`` apart; ``speedup`` follows the series' own
    timestamp gaps divided by ``speedup`` (a backwards step counts as no gap). With
    both, a point is due at its ``speedup`` time but never sooner than ``1 / rate``
    after the previous one. With neither, returns ``None``: no pacing.

    >>> replay_schedule(np.array([0.0, 60.0, 120.0]), rate=2).tolist()
    [0.0, 0.5, 1.0]
    >>> replay_schedule(np.array([0.0, 60.0, 180.0]), speedup=60).tolist()
    [0.0, 1.0, 3.0]
    >>> replay_schedule(np.array([0.0, 1.0, 2.0, 60.0]), rate=1, speedup=60).tolist()
    [0.0, 1.0, 2.0, 3.0]
    """
    for label, option in (("rate", rate), ("speedup", speedup)):
        if option is not None and not (math.isfinite(option) and option > 0):
            raise ReplayError(f"{label} must be a positive finite number, got {option!r}")
    if rate is None and speedup is None:
        return None
    n = len(ts)
    due = np.zeros(n, dtype=np.float64)
    if n == 0:
        return due
    if speedup is not None:
        offsets = np.asarray(ts, dtype=np.float64) - float(ts[0])
        due = np.maximum.accumulate(np.maximum(offsets, 0.0)) / speedup
    if rate is not None:
        steps = np.arange(n, dtype=np.float64) / rate
        # due_i = max(speed_i, due_{i-1} + 1/rate) = i/rate + max_{j<=i}(speed_j - j/rate)
        due = steps + np.maximum.accumulate(due - steps)
    return due


def replay_series(
    producer: Producer,
    topic: str,
    name: str,
    ts: np.ndarray,
    values: np.ndarray,
    labels: LabelsLike | None = None,
    rate: float | None = None,
    speedup: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send each point of one series to ``topic`` as a native record; return how many.

    Records are keyed by the stream key. Pacing (see :func:`replay_schedule`) follows an
    absolute schedule from the first send: the replay sleeps only while it is ahead,
    and when it falls behind it sends back-to-back until it has caught up, so the run
    as a whole keeps the requested pace. The producer is flushed at the end.

    >>> class ListProducer:
    ...     def __init__(self): self.sent = []
    ...     def send(self, topic, key, value): self.sent.append((topic, key, value))
    ...     def flush(self): pass
    >>> p = ListProducer()
    >>> replay_series(p, "metrics", "cpu", np.array([0.0, 60.0]), np.array([1.0, 2.0]),
    ...               labels={"host": "h1"})
    2
    >>> p.sent[0][1]
    b'cpu{host=h1}'
    """
    ts = np.asarray(ts, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if ts.shape != values.shape or ts.ndim != 1:
        raise ReplayError(
            f"ts and values must be 1-D arrays of equal length, got {ts.shape} and {values.shape}"
        )
    pairs = normalize_labels(labels)
    key = stream_key(name, pairs).encode("utf-8")
    label_map = dict(pairs) if pairs else None
    schedule = replay_schedule(ts, rate=rate, speedup=speedup)
    due = schedule.tolist() if schedule is not None else None

    ts_list = ts.tolist()
    value_list = values.tolist()
    start = clock()
    sent = 0
    for i, (t, v) in enumerate(zip(ts_list, value_list, strict=True)):
        if due is not None:
            wait = start + due[i] - clock()
            if wait > 0:
                sleep(wait)
        record: dict[str, Any] = {"stream": name, "ts": t, "value": v}
        if label_map is not None:
            record["labels"] = label_map
        producer.send(topic, key=key, value=orjson.dumps(record))
        sent += 1
    producer.flush()
    return sent


def replay_csv(
    producer: Producer,
    topic: str,
    path: str | Path,
    stream: str | None = None,
    labels: LabelsLike | None = None,
    rate: float | None = None,
    speedup: float | None = None,
) -> int:
    """Replay a ``timestamp,value`` CSV as one stream (default name: the file stem).

    Returns the number of records sent; see :func:`replay_series` for pacing.

    >>> import tempfile, os
    >>> fd, name = tempfile.mkstemp(suffix=".csv"); os.close(fd)
    >>> _ = Path(name).write_text("timestamp,value\\n2014-04-01 00:00:00,1.5\\n")
    >>> class NullProducer:
    ...     def send(self, topic, key, value): pass
    ...     def flush(self): pass
    >>> replay_csv(NullProducer(), "metrics", name)
    1
    >>> os.remove(name)
    """
    path = Path(path)
    ts, values = read_series_csv(path)
    return replay_series(
        producer,
        topic,
        stream if stream is not None else path.stem,
        ts,
        values,
        labels=labels,
        rate=rate,
        speedup=speedup,
    )
