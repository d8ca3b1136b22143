"""Decode a polled batch of record values into columns the detector takes as they are.

A batch is decoded to one list of stream keys, one of (name, labels) pairs and two
arrays (times, values), plus for each point the position of its record in the batch.
The columns cost little to send between processes (``pickle`` of 10,000 points takes
about 3 ms, against 18 ms for the same points as :class:`Point` tuples), so the reader
process (:mod:`monitor.kafka.reader`) decodes and the daemon only scores.

Examples
--------
>>> decode = BatchDecoder({"metrics": "native"}, "native", max_record_bytes=1000)
>>> columns = decode([
...     ("metrics", [b'{"stream": "cpu", "ts": 1700000000, "value": 1.5}', b"", b"{"]),
...     ("metrics", [b'{"stream": "mem", "ts": 1700000001, "value": 2}']),
... ])
>>> columns.keys, columns.values.tolist(), columns.records.tolist(), columns.counts
(['cpu', 'mem'], [1.5, 2.0], [0, 3], [1, 1])
>>> [(reason, record) for reason, _detail, record in columns.rejected]
[('empty', 1), ('not_json', 2)]
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import Any, Protocol, TypeVar, overload

import numpy as np
import orjson

from monitor.config.schema import MonitorConfig
from monitor.records import RecordRejected, RecordSkipped, get_decoder
from monitor.records.base import Decoder, Labels, Point, stream_key
from monitor.records.native import native_point
from monitor.records.timestamps import MILLISECONDS_FROM
from monitor.records.validate import MAX_ABS_VALUE, load_object

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Indexed(Protocol[T_co]):
    """Anything whose items are read by position (a list, a column view)."""

    def __getitem__(self, i: int, /) -> T_co: ...


@dataclass
class DecodedColumns:
    """The points of a batch, column by column, and what was not a point."""

    keys: Sequence[str]
    """Each point's stream key (:func:`~monitor.records.base.stream_key`)."""
    names: Sequence[str]
    """Each point's metric name."""
    labels: Sequence[Labels]
    """Each point's labels (two lists load from a pickle several times faster than one
    list of (name, labels) pairs)."""
    ts: np.ndarray
    """Seconds since the epoch, float64."""
    values: np.ndarray
    """float64."""
    records: np.ndarray
    """Each point's record: its position in the batch, partitions one after the other."""
    counts: list[int]
    """How many points each partition's records gave, in the batch's order."""
    rejected: list[tuple[str, str, int]]
    """(reason, detail, record position) of each record rejected."""
    skipped: list[str]
    """The reason of each record skipped as holding nothing to score."""
    numbers: np.ndarray | None = None
    """Each point's stream number, when the columns came numbered from another process
    (:mod:`monitor.kafka.stream_numbers`); None otherwise."""
    rows_by_number: RowsByNumber | None = None
    """The receiver's rows of those numbers, filled as streams are looked up."""

    def identity(self, i: int) -> tuple[str, Labels]:
        """The (name, labels) of point ``i``."""
        return self.names[i], self.labels[i]

    @property
    def identities(self) -> _Identities:
        """(name, labels) by point index."""
        return _Identities(self.names, self.labels)

    def select(self, keep: np.ndarray) -> DecodedColumns:
        """The points where ``keep`` (bool, one per point) holds; the rest as they are."""
        index = np.flatnonzero(keep).tolist()
        starts = np.cumsum([0, *self.counts])
        return DecodedColumns(
            keys=[self.keys[i] for i in index],
            names=[self.names[i] for i in index],
            labels=[self.labels[i] for i in index],
            ts=self.ts[keep],
            values=self.values[keep],
            records=self.records[keep],
            counts=[int(keep[a:b].sum()) for a, b in zip(starts[:-1], starts[1:], strict=True)],
            rejected=self.rejected,
            skipped=self.skipped,
        )


class RowsByNumber:
    """Rows of a stream table by a sender's stream numbers: the table's key lookups of
    a batch of numbered columns become one array lookup
    (:meth:`~monitor.detection.streams.StreamTable.lookup`).

    A row is good only while the table frees no row and the sender's numbers mean the
    same streams: the table clears the cache after it freed rows (``removals``, its
    count of removals when the cache was filled), the owner of the numbers when the
    sender starts over (:meth:`clear`).

    >>> cache = RowsByNumber()
    >>> cache.ensure(3); cache.rows.tolist()
    [-1, -1, -1]
    """

    def __init__(self) -> None:
        self.rows = np.full(0, -1, dtype=np.int64)
        """Row of each number; -1 where not known."""
        self.removals = 0
        """The table's count of row removals when the rows were filled."""

    def ensure(self, size: int) -> None:
        """Room for numbers below ``size``."""
        if size > len(self.rows):
            grown = np.full(max(size, 2 * len(self.rows)), -1, dtype=np.int64)
            grown[: len(self.rows)] = self.rows
            self.rows = grown

    def clear(self) -> None:
        """Forget every row."""
        self.rows.fill(-1)


class Picked(Sequence[T]):
    """The items of ``items`` at the positions ``index`` (an array of ints), each read
    when asked for: a column by stream number, or the few items of a column that a
    lookup needs, without a list of them all.

    >>> view = Picked(["cpu", "mem"], np.array([1, 1, 0]))
    >>> len(view), view[0], view[1:], list(view)
    (3, 'mem', ['mem', 'cpu'], ['mem', 'mem', 'cpu'])
    """

    def __init__(self, items: Indexed[T], index: np.ndarray) -> None:
        self._items = items
        self._index = index

    def __len__(self) -> int:
        return len(self._index)

    @overload
    def __getitem__(self, i: int) -> T: ...
    @overload
    def __getitem__(self, i: slice) -> list[T]: ...
    def __getitem__(self, i: int | slice) -> T | list[T]:
        if isinstance(i, slice):
            return list(map(self._items.__getitem__, self._index[i].tolist()))
        return self._items[int(self._index[i])]

    def __iter__(self) -> Iterator[T]:
        return map(self._items.__getitem__, self._index.tolist())


def point_columns(points: Sequence[Point]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Each point's stream key (:func:`~monitor.records.base.stream_key`), time and value
    (float64): what the detector takes besides the points' (name, labels).

    >>> keys, ts, values = point_columns([Point("cpu", (("host", "a"),), 60.0, 1.5)])
    >>> keys, ts.tolist(), values.tolist()
    (['cpu{host=a}'], [60.0], [1.5])
    """
    keys = [stream_key(p.name, p.labels) for p in points]
    ts = np.fromiter((p.ts for p in points), np.float64, len(points))
    values = np.fromiter((p.value for p in points), np.float64, len(points))
    return keys, ts, values


class BatchDecoder:
    """Decodes record values with the format of their topic; rejects empty or too
    large ones without decoding them, and those with a point too far in the future.

    Parameters
    ----------
    topic_formats, default_format
        The format of each topic, and of the topics not named (``kafka.topic_formats``,
        ``kafka.format``).
    max_record_bytes
        Longest value decoded (``kafka.max_record_bytes``); longer ones are rejected
        as ``too_large``.
    max_future_seconds
        A record with a point timestamped more than this past ``clock()`` (read once per
        batch) is rejected as ``timestamp_in_future`` (``streams.max_future_seconds``).
    clock
        Wall clock in epoch seconds: the daemon's.
    """

    def __init__(
        self,
        topic_formats: Mapping[str, str],
        default_format: str,
        max_record_bytes: int,
        max_future_seconds: float = math.inf,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.topic_formats = dict(topic_formats)
        self.default_format = default_format
        self.limit = max_record_bytes
        self.horizon = max_future_seconds
        self.clock = clock
        self._decoders: dict[str, Decoder] = {}
        self._identities: dict[tuple[object, object], tuple[str, str, Labels]] = {}
        """(stream, label items as received) of native records accepted before -> the
        stream's (key, name, labels): checked once, shared by every later point."""

    @classmethod
    def for_config(
        cls, config: MonitorConfig, clock: Callable[[], float] = time.time
    ) -> BatchDecoder:
        """The decoder the daemon's configuration asks for (``kafka``, ``streams``).

        >>> decode = BatchDecoder.for_config(MonitorConfig(), clock=lambda: 1700000000.0)
        >>> columns = decode([("metrics", [b'{"stream": "a", "ts": 1800000000, "value": 1}'])])
        >>> [(reason, position) for reason, _detail, position in columns.rejected]
        [('timestamp_in_future', 0)]
        """
        kafka = config.kafka
        return cls(
            kafka.topic_formats,
            kafka.format,
            kafka.max_record_bytes,
            config.streams.max_future_seconds,
            clock,
        )

    def __call__(self, partitions: Iterable[tuple[str, Sequence[bytes | None]]]) -> DecodedColumns:
        """Decode the values of each (topic, values) in turn."""
        out = _Columns(self.clock(), self.horizon)
        counts: list[int] = []
        position = 0
        for topic, values in partitions:
            before = len(out.keys)
            fmt = self.topic_formats.get(topic, self.default_format)
            if fmt == "native":
                self._native(values, position, out)
            else:
                self._generic(self._decoder(topic), values, position, out)
            position += len(values)
            counts.append(len(out.keys) - before)
        point_ts, point_values, point_records = out.arrays()
        return DecodedColumns(
            keys=out.keys,
            names=out.names,
            labels=out.labels,
            ts=point_ts,
            values=point_values,
            records=point_records,
            counts=counts,
            rejected=out.rejected,
            skipped=out.skipped,
        )

    def _generic(
        self, decoder: Decoder, values: Sequence[bytes | None], start: int, out: _Columns
    ) -> None:
        """Each value through the format's record decoder; the first is record ``start``
        of the batch."""
        limit = self.limit
        for position, value in enumerate(values, start):
            try:
                decoded = decoder(_sized(value, limit))
                for point in decoded:
                    out.check_future(point.ts)
            except RecordSkipped as exc:
                out.skipped.append(exc.reason)
            except RecordRejected as exc:
                out.rejected.append((exc.reason, exc.detail, position))
            else:
                for point in decoded:
                    out.add(stream_key(point.name, point.labels), point, position)

    def _native(self, values: Sequence[bytes | None], start: int, out: _Columns) -> None:
        """Native values: what :func:`decode_native` gives each, a partition's records
        at once when they are all of the common case (:meth:`_native_batch`), else one
        by one (:meth:`_native_each`)."""
        objs = _parsed(values, self.limit)
        if objs is None or not self._native_batch(objs, start, out):
            self._native_each(values, start, out, objs)

    def _native_batch(self, objs: list[Any], start: int, out: _Columns) -> bool:
        """Take the parsed values only if every one is of the common case of
        :meth:`_native_each`, with its checks done a column at a time; else leave
        ``out`` as it was and say so."""
        if not objs:
            return True
        try:
            if set(map(type, objs)) != {dict}:
                return False
            ts: list[Any] = list(map(_TS, objs))
            vs: list[Any] = list(map(_VALUE, objs))
            if not (set(map(type, ts)) <= _NUMBERS and set(map(type, vs)) <= _NUMBERS):
                return False
            # Each record's labels (None when null), or _MISSING; with stream, ts and
            # value there (else KeyError), 3 fields without labels and 4 with means
            # exactly 3 more fields in all than there are labels.
            labels: list[Any] = list(map(dict.get, objs, repeat("labels"), repeat(_MISSING)))
            n = len(objs)
            sizes = np.fromiter(map(len, objs), np.intp, n)
            missing = labels.count(_MISSING)
            if not (3 <= sizes.min() and sizes.max() <= 4) or (
                int(sizes.sum()) - 3 * n != n - missing
            ):
                return False
            known = self._identities
            if not missing and None not in labels:  # labels everywhere: no test per record
                seen = zip(map(_STREAM, objs), map(tuple, map(dict.items, labels)), strict=True)
                identities: list[Any] = list(map(known.get, seen))
            else:
                identities = [
                    known.get(
                        (stream, () if items is None or items is _MISSING else tuple(items.items()))
                    )
                    for stream, items in zip(map(_STREAM, objs), labels, strict=True)
                ]
            if None in identities:
                return False
            times = np.array(ts, dtype=np.float64)
            points = np.array(vs, dtype=np.float64)
        except (TypeError, KeyError, AttributeError, OverflowError):
            return False
        # float64 holds every number that passes exactly as float() gives it.
        if not (
            times.min() >= 0
            and times.max() < MILLISECONDS_FROM
            and times.max() <= out.future
            and np.abs(points).max() <= MAX_ABS_VALUE
        ):
            return False
        out.keys.extend(map(_FIRST, identities))
        out.names.extend(map(_SECOND, identities))
        out.labels.extend(map(_THIRD, identities))
        out.take(times, points, start)
        return True

    def _native_each(
        self,
        values: Sequence[bytes | None],
        start: int,
        out: _Columns,
        objs: list[Any] | None = None,
    ) -> None:
        """Native values one by one, the common case inline: what :func:`decode_native`
        gives each (``objs``: the values parsed already, when :func:`_parsed` could).

        A record that is an object of exactly ``stream`` (a string), ``ts`` (a number of
        seconds), ``value`` (a float or int in range) and ``labels`` (an object, null or
        absent) whose stream and labels were accepted before is taken as it is, with the
        key, name and labels found then. Any other object goes through
        :func:`~monitor.records.native.native_point`, as in :func:`decode_native` (the
        reference the tests compare with), so both accept and reject the same.
        """
        limit = self.limit
        loads = orjson.loads
        known = self._identities
        keys, names, labels_out = out.keys, out.names, out.labels
        ts_out, values_out, records = out.ts, out.values, out.records
        future = out.future
        for position, value in enumerate(values, start):
            try:
                obj: Any = None
                if objs is not None:
                    obj = objs[position - start]
                elif value and len(value) <= limit:
                    try:
                        obj = loads(value)
                    except orjson.JSONDecodeError:
                        pass
                if type(obj) is not dict:
                    # Rejected: empty, too_large, not_json or not_object, as decode_native says.
                    obj = load_object(_sized(value, limit))
                labels = obj.get("labels")
                ts: Any = obj.get("ts")
                v: Any = obj.get("value")
                tt = type(ts)
                tv = type(v)
                if (
                    len(obj) == 3 + ("labels" in obj)
                    and (tt is float or tt is int)
                    and 0 <= ts < MILLISECONDS_FROM
                    and ts <= future
                    and (tv is float or tv is int)
                    and -MAX_ABS_VALUE <= v <= MAX_ABS_VALUE
                ):
                    try:
                        identity = known.get(
                            (obj.get("stream"), () if labels is None else tuple(labels.items()))
                        )
                    except (TypeError, AttributeError):  # unhashable, or labels not an object
                        identity = None
                    if identity is not None:
                        keys.append(identity[0])
                        names.append(identity[1])
                        labels_out.append(identity[2])
                        ts_out.append(float(ts))
                        values_out.append(float(v))
                        records.append(position)
                        continue
                point = native_point(obj)
                out.check_future(point.ts)
            except RecordRejected as exc:
                out.rejected.append((exc.reason, exc.detail, position))
                continue
            key = stream_key(point.name, point.labels)
            out.add(key, point, position)
            self._remember(obj, key, point)

    def _remember(self, obj: dict[str, Any], key: str, point: Point) -> None:
        """Keep the identity of an accepted native record's stream for :meth:`_native`."""
        labels = obj.get("labels")
        try:
            seen = (point.name, () if labels is None else tuple(labels.items()))
        except TypeError:  # pragma: no cover - native_point accepted them, so hashable
            return
        if len(self._identities) >= _MAX_IDENTITIES:
            self._identities.clear()
        self._identities[seen] = (key, point.name, point.labels)

    def _decoder(self, topic: str) -> Decoder:
        decoder = self._decoders.get(topic)
        if decoder is None:
            decoder = get_decoder(self.topic_formats.get(topic, self.default_format))
            self._decoders[topic] = decoder
        return decoder


def _parsed(values: Sequence[bytes | None], limit: int) -> list[Any] | None:
    """Every value parsed as JSON, or None if one is empty, longer than ``limit`` bytes
    or not JSON."""
    try:
        if values and max(map(len, values)) > limit:  # type: ignore[arg-type]
            return None
        return list(map(orjson.loads, values))  # type: ignore[arg-type]
    except (orjson.JSONDecodeError, TypeError):
        return None


def _sized(value: bytes | None, limit: int) -> bytes:
    """``value``, unless it is empty or longer than ``limit`` bytes (then rejected)."""
    if not value:
        raise RecordRejected("empty", "the record has no value")
    if len(value) > limit:
        raise RecordRejected("too_large", f"{len(value)} bytes, limit {limit}")
    return value


_NUMBERS = frozenset({int, float})
_STREAM, _TS, _VALUE = itemgetter("stream"), itemgetter("ts"), itemgetter("value")
_MISSING = object()
_FIRST, _SECOND, _THIRD = itemgetter(0), itemgetter(1), itemgetter(2)

_MAX_IDENTITIES = 1 << 17
"""Entries of :attr:`BatchDecoder._identities` (about 300 bytes each) before it is
cleared, so a flood of new stream names cannot grow it without limit."""


class _Columns:
    """The lists a batch's columns are gathered in; points after ``now + horizon`` are
    refused."""

    def __init__(self, now: float, horizon: float) -> None:
        self.horizon = horizon
        self.future = now + horizon
        self.keys: list[str] = []
        self.names: list[str] = []
        self.labels: list[Labels] = []
        self.ts: list[float] = []
        self.values: list[float] = []
        self.records: list[int] = []
        self._runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        """Times, values and records of the points before those in the lists, as arrays."""
        self.rejected: list[tuple[str, str, int]] = []
        self.skipped: list[str] = []

    def check_future(self, ts: float) -> None:
        if ts > self.future:
            raise RecordRejected(
                "timestamp_in_future",
                f"ts {ts} is more than {self.horizon}s past the daemon's clock",
            )

    def take(self, ts: np.ndarray, values: np.ndarray, start: int) -> None:
        """Points already in arrays, one per record from position ``start`` on (their
        keys, names and labels added by the caller)."""
        self._end_run()
        self._runs.append((ts, values, np.arange(start, start + len(ts), dtype=np.int64)))

    def _end_run(self) -> None:
        """The points in the lists, as arrays after the others."""
        if self.ts:
            self._runs.append(
                (
                    np.array(self.ts, dtype=np.float64),
                    np.array(self.values, dtype=np.float64),
                    np.array(self.records, dtype=np.int64),
                )
            )
            # New lists, not cleared ones: _native_each holds on to the old while it runs.
            self.ts, self.values, self.records = [], [], []

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every point's time, value and record, in order, as the columns' arrays."""
        self._end_run()
        if len(self._runs) == 1:
            ts, values, records = self._runs[0]
        elif self._runs:
            ts, values, records = (
                np.concatenate(column) for column in zip(*self._runs, strict=True)
            )
        else:
            ts, values, records = np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64)
        return ts, values, records

    def add(self, key: str, point: Point, position: int) -> None:
        self.keys.append(key)
        self.names.append(point.name)
        self.labels.append(point.labels)
        self.ts.append(point.ts)
        self.values.append(point.value)
        self.records.append(position)


class _Identities:
    def __init__(self, names: Sequence[str], labels: Sequence[Labels]) -> None:
        self.names = names
        self.labels = labels

    def __getitem__(self, i: int, /) -> tuple[str, Labels]:
        return self.names[i], self.labels[i]
