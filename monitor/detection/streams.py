"""The map from stream identity to state row, with each stream's resolved settings."""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Protocol

import numpy as np

from monitor.config.schema import DetectorConfig, StreamOverride
from monitor.records.base import Labels
from monitor.records.batch import Picked, RowsByNumber
from monitor.state import ArraySpec, ArrayState


class Identities(Protocol):
    """(name, labels) by point index, e.g. a list of pairs."""

    def __getitem__(self, i: int, /) -> tuple[str, Labels]: ...


@dataclass(frozen=True)
class StreamSettings:
    """What a stream gets after per-stream overrides are applied."""

    seasonality: int
    sensitivity: float
    warmup: int
    disabled: bool


def resolve_settings(
    key: str, detector: DetectorConfig, overrides: Sequence[StreamOverride]
) -> StreamSettings:
    """Settings of the stream ``key``: the first override whose glob matches wins.

    >>> from monitor.config.schema import StreamOverride
    >>> rules = [StreamOverride(match="cpu*", sensitivity=0.9), StreamOverride(match="*", warmup=5)]
    >>> resolve_settings('cpu{host=a}', DetectorConfig(), rules).sensitivity
    0.9
    >>> resolve_settings("mem", DetectorConfig(), rules).warmup
    5
    """
    seasonality = detector.forecaster.seasonality
    sensitivity = detector.sensitivity
    warmup = detector.warmup
    for rule in overrides:
        if fnmatch.fnmatchcase(key, rule.match):
            return StreamSettings(
                seasonality if rule.seasonality is None else rule.seasonality,
                sensitivity if rule.sensitivity is None else rule.sensitivity,
                warmup if rule.warmup is None else rule.warmup,
                rule.disabled,
            )
    return StreamSettings(seasonality, sensitivity, warmup, False)


class StreamTable:
    """Assigns each stream a row, at most ``max_streams`` live streams at a time.

    Each row remembers the wall-clock time of its stream's last point
    (``state.last_seen``); :meth:`evict_idle` frees the rows of streams idle for
    too long, and new streams take freed rows before the arrays grow. Rows never
    move: every other per-stream array is indexed by the same row.

    Parameters
    ----------
    detector, overrides
        Resolve each new stream's settings.
    max_streams
        Most live streams; points of further new streams get row ``-1``.
    capacity
        Initial rows of the arrays (at most ``max_streams``).
    clock
        Wall clock in epoch seconds, read by :meth:`lookup` when no ``now`` is given.

    Examples
    --------
    >>> table = StreamTable(DetectorConfig(), (), max_streams=2, clock=lambda: 100.0)
    >>> rows, new = table.lookup(["a", "b", "a", "c"], [("a", ()), ("b", ()), ("a", ()), ("c", ())])
    >>> rows.tolist(), new.tolist(), len(table)
    ([0, 1, 0, -1], [0, 1], 2)
    >>> _ = table.lookup(["b"], [("b", ())], now=150.0)
    >>> table.evict_idle(now=200.0, ttl=60.0).tolist(), len(table), table.keys
    ([0], 1, ['', 'b'])
    >>> table.lookup(["c"], [("c", ())], now=200.0)[0].tolist()
    [0]
    """

    def __init__(
        self,
        detector: DetectorConfig,
        overrides: Sequence[StreamOverride],
        max_streams: int,
        capacity: int = 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.detector = detector
        self.overrides = tuple(overrides)
        self.max_streams = max_streams
        self.clock = clock
        self.rows: dict[str, int] = {}
        # One entry per row ever used (live or free); a free row's entries are blank.
        self.keys: list[str] = []
        self.names: list[str] = []
        self.labels: list[Labels] = []
        self.free: list[int] = []
        """Freed rows, taken by new streams (last pushed first) before the arrays grow."""
        self.removals = 0
        """How many times rows were freed (:meth:`remove`): caches of rows
        (:class:`~monitor.records.batch.RowsByNumber`) filled before are stale."""
        self.state = ArrayState(
            {
                "seasonality": ArraySpec((), np.int32, 0),
                "sensitivity": ArraySpec((), np.float64, 0.5),
                "warmup": ArraySpec((), np.int64, 0),
                "disabled": ArraySpec((), np.bool_, False),
                "last_ts": ArraySpec((), np.float64, -np.inf),
                # Wall time of the stream's last point; +inf on a free row (never idle).
                "last_seen": ArraySpec((), np.float64, np.inf),
                # Who feeds the stream (the daemon's number for a Kafka partition); -1 = nobody.
                "owner": ArraySpec((), np.int32, -1),
            },
            min(capacity, max_streams),
        )

    def __len__(self) -> int:
        """Live streams."""
        return len(self.rows)

    @property
    def extent(self) -> int:
        """Rows ever used, live or free: every row index is below it (``len(self.keys)``)."""
        return len(self.keys)

    def lookup(
        self,
        keys: Sequence[str],
        identities: Identities,
        now: float | None = None,
        numbers: np.ndarray | None = None,
        cache: RowsByNumber | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows of ``keys`` (``-1`` where the table is full) and the rows created now.

        ``identities`` gives (name, labels) of each key; it is read only for new streams.
        Every found or created row is marked seen at ``now`` (default: the clock).
        With the keys' stream ``numbers`` and a ``cache`` of rows by number, the rows
        found there are taken as they are (keys are read only for the others) and the
        rows of the others are kept in it.

        >>> from monitor.records.batch import RowsByNumber
        >>> table = StreamTable(DetectorConfig(), (), max_streams=10, clock=lambda: 0.0)
        >>> cache, numbers = RowsByNumber(), np.array([0, 1])
        >>> table.lookup(["a", "b"], [("a", ()), ("b", ())], numbers=numbers, cache=cache)[0]
        array([0, 1])
        >>> cache.rows[:2].tolist()
        [0, 1]
        >>> table.lookup(["?", "?"], [], numbers=numbers[::-1], cache=cache)[0].tolist()
        [1, 0]
        """
        if numbers is not None and cache is not None:
            return self._lookup_numbered(keys, identities, now, numbers, cache)
        return self._lookup(keys, identities, now)

    def _lookup_numbered(
        self,
        keys: Sequence[str],
        identities: Identities,
        now: float | None,
        numbers: np.ndarray,
        cache: RowsByNumber,
    ) -> tuple[np.ndarray, np.ndarray]:
        if cache.removals != self.removals:
            cache.clear()
            cache.removals = self.removals
        if len(numbers):
            cache.ensure(int(numbers.max()) + 1)
        now = self.clock() if now is None else now
        rows = cache.rows[numbers]
        created = np.zeros(0, dtype=np.int64)
        unknown = np.flatnonzero(rows < 0)
        if len(unknown):
            found, created = self._lookup(Picked(keys, unknown), Picked(identities, unknown), now)
            rows[unknown] = found
            placed = found >= 0
            cache.rows[numbers[unknown][placed]] = found[placed]
        self.state.last_seen[rows[rows >= 0]] = now
        return rows, created

    def _lookup(
        self,
        keys: Sequence[str],
        identities: Identities,
        now: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        table = self.rows
        rows = np.fromiter(map(table.get, keys, repeat(-1)), np.int64, len(keys))
        created: list[int] = []
        for i in np.flatnonzero(rows < 0).tolist():
            key = keys[i]
            row = table.get(key, -1)  # added earlier in this batch
            if row < 0 and len(table) < self.max_streams:
                row = self._add(key, *identities[i])
                created.append(row)
            rows[i] = row
        self.state.last_seen[rows[rows >= 0]] = self.clock() if now is None else now
        return rows, np.asarray(created, dtype=np.int64)

    def evict_idle(self, now: float, ttl: float) -> np.ndarray:
        """Free the rows of streams whose last point is ``ttl`` seconds or more before ``now``.

        Their keys leave the map, their ``keys``/``names``/``labels`` entries are
        blanked and their settings reset; the rows (returned, ascending) are reused by
        new streams. ``ttl <= 0`` evicts nothing. The caller resets its own state of
        the returned rows (:meth:`Detector.release`).
        """
        if ttl <= 0 or not self.rows:
            return np.zeros(0, dtype=np.int64)
        idle = np.flatnonzero(now - self.state.last_seen[: self.extent] >= ttl)
        return self.remove(idle)

    def remove(self, rows: np.ndarray) -> np.ndarray:
        """Free ``rows`` (live, distinct): their streams are forgotten, the rows reused.

        Returns the freed rows, ascending. The caller resets its own state of them
        (:meth:`Detector.release`).
        """
        rows = np.sort(np.asarray(rows, dtype=np.int64))
        for row in rows.tolist():
            del self.rows[self.keys[row]]
            self.keys[row] = ""
            self.names[row] = ""
            self.labels[row] = ()
        self.state.reset(rows)
        self.removals += 1
        # Pushed highest first, so the lowest freed row is taken first.
        self.free.extend(reversed(rows.tolist()))
        return rows

    def owned_by(self, owners: Sequence[int]) -> np.ndarray:
        """Live rows whose ``owner`` is one of ``owners``, ascending.

        >>> table = StreamTable(DetectorConfig(), (), max_streams=4, clock=lambda: 0.0)
        >>> rows, _ = table.lookup(["a", "b", "c"], [("a", ()), ("b", ()), ("c", ())])
        >>> table.state.owner[rows] = [3, 5, 3]
        >>> table.owned_by([3]).tolist()
        [0, 2]
        """
        owner = self.state.owner[: self.extent]
        return np.flatnonzero(np.isin(owner, np.asarray(owners, dtype=np.int32)))

    def insert(self, key: str, name: str, labels: Labels) -> int:
        """The row of ``key``, added (settings resolved, not seen yet) if new; -1 when full."""
        row = self.rows.get(key)
        if row is not None:
            return row
        if len(self.rows) >= self.max_streams:
            return -1
        return self._add(key, name, labels)

    def _add(self, key: str, name: str, labels: Labels) -> int:
        if self.free:
            row = self.free.pop()
            self.keys[row] = key
            self.names[row] = name
            self.labels[row] = labels
        else:
            row = len(self.keys)
            self.state.ensure(row + 1)
            self.keys.append(key)
            self.names.append(name)
            self.labels.append(labels)
        settings = resolve_settings(key, self.detector, self.overrides)
        s = self.state
        s.seasonality[row] = settings.seasonality
        s.sensitivity[row] = settings.sensitivity
        s.warmup[row] = settings.warmup
        s.disabled[row] = settings.disabled
        s.last_ts[row] = -np.inf
        self.rows[key] = row
        return row
