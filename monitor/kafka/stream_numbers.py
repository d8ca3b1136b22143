"""Stream numbers: send a batch's stream identities between processes as small integers.

The reading child (:mod:`monitor.kafka.reader`) sends each batch's decoded columns to
the daemon. Their stream keys, names and labels are most of the bytes pickled (about
70 of 80 a point), though the same streams come back batch after batch. So the child
numbers each stream key the first time it sends it (:class:`Numbering`) and sends
only numbers after, with the identities numbered since the last batch; the daemon
keeps them in the same order (:class:`Numbers`) and gives back the columns as they
were. Both sides start over (the child tells the daemon) once ``limit`` keys are
numbered, so a flood of new stream names cannot grow either without end.

Examples
--------
>>> from monitor.records.batch import BatchDecoder
>>> decode = BatchDecoder({}, "native", 1000)
>>> child, daemon = Numbering(), Numbers()
>>> batch = [b'{"stream": "cpu", "ts": 1, "value": 2}', b'{"stream": "mem", "ts": 1, "value": 3}']
>>> sent = child.encode(decode([("metrics", batch)]))
>>> sent.numbers.tolist(), [key for key, _, _ in sent.new]
([0, 1], ['cpu', 'mem'])
>>> again = child.encode(decode([("metrics", batch[::-1])]))
>>> again.numbers.tolist(), again.new
([1, 0], [])
>>> list(daemon.decode(sent).keys), list(daemon.decode(again).keys)
(['cpu', 'mem'], ['mem', 'cpu'])
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from monitor.records.base import Labels
from monitor.records.batch import DecodedColumns, Picked, RowsByNumber

DEFAULT_LIMIT = 1 << 18
"""Keys numbered before both sides start over (about 300 bytes each, on each side)."""


class NumberedColumns(NamedTuple):
    """Decoded columns as the child sends them: stream numbers instead of identities."""

    restart: bool
    """Whether the daemon forgets every number before reading :attr:`new`."""
    new: list[tuple[str, str, Labels]]
    """(key, name, labels) of the streams numbered since the last batch, in order."""
    numbers: np.ndarray
    """Each point's stream number (int32)."""
    columns: DecodedColumns
    """The rest of the columns (their keys, names and labels left empty)."""


class Numbering:
    """The sending side: numbers stream keys in the order it first sends them."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._numbers: dict[str, int] = {}

    def encode(self, columns: DecodedColumns) -> NumberedColumns:
        """``columns`` with stream numbers in place of keys, names and labels."""
        numbers = self._numbers
        try:  # the common case: every stream numbered already
            known = np.fromiter(map(numbers.__getitem__, columns.keys), np.int32, len(columns.keys))
        except KeyError:
            pass
        else:
            return NumberedColumns(False, [], known, _without_identities(columns))
        found: list[int | None] = list(map(numbers.get, columns.keys))
        new: list[tuple[str, str, Labels]] = []
        restart = False
        if None in found:
            if len(numbers) + found.count(None) > self.limit:
                numbers.clear()
                restart = True
                found = [None] * len(found)
            for i, number in enumerate(found):
                if number is None:
                    key = columns.keys[i]
                    number = numbers.get(key)
                    if number is None:
                        number = numbers[key] = len(numbers)
                        new.append((key, columns.names[i], columns.labels[i]))
                    found[i] = number
        return NumberedColumns(
            restart,
            new,
            np.array(found, dtype=np.int32),
            _without_identities(columns),
        )


def _without_identities(columns: DecodedColumns) -> DecodedColumns:
    return dataclasses.replace(columns, keys=[], names=[], labels=[])


class Numbers:
    """The receiving side: the identities of the numbers, in the sender's order."""

    def __init__(self) -> None:
        self._keys: list[str] = []
        self._names: list[str] = []
        self._labels: list[Labels] = []
        self.rows = RowsByNumber()
        """The stream table's rows of the numbers, filled by the table's lookups."""

    def decode(self, sent: NumberedColumns) -> DecodedColumns:
        """The columns the sender numbered, with their keys, names and labels back.

        The keys, names and labels are read by number when asked for
        (:class:`~monitor.records.batch.Picked`): a stream table that knows the rows of
        the numbers (:attr:`rows`, passed on with the numbers) reads none of them.
        """
        if sent.restart:
            self._keys.clear()
            self._names.clear()
            self._labels.clear()
            self.rows.clear()
        for key, name, labels in sent.new:
            self._keys.append(key)
            self._names.append(name)
            self._labels.append(labels)
        numbers = sent.numbers
        return dataclasses.replace(
            sent.columns,
            keys=Picked(self._keys, numbers),
            names=Picked(self._names, numbers),
            labels=Picked(self._labels, numbers),
            numbers=numbers,
            rows_by_number=self.rows,
        )
