"""One consumed record, as the daemon reads it from any of its consumers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple


class ConsumerRecord(NamedTuple):
    """One consumed record, with the attributes of kafka-python's ``ConsumerRecord`` the
    daemon reads.

    >>> record = ConsumerRecord("metrics", 0, 42, b"cpu", b'{"stream": "cpu"}', 1700000000000)
    >>> record.topic, record.partition, record.offset, record.key
    ('metrics', 0, 42, b'cpu')
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int
    """Milliseconds since the epoch (-1 when the record has none)."""


class PolledPartition(NamedTuple):
    """One partition's records of a poll, column by column: what the reading child
    needs of every record (offsets, values), and the key and timestamp of any record
    (``meta(i)``, asked for the few it sends on as dead letters).

    >>> polled = polled_partitions({("m", 0): [ConsumerRecord("m", 0, 7, b"k", b"v", 9)]})
    >>> polled[0].offsets, polled[0].values, polled[0].meta(0)
    ([7], [b'v'], (b'k', 9))
    """

    topic: str
    partition: int
    offsets: Sequence[int]
    """Each record's offset (a ``range`` when they follow one another)."""
    values: list[bytes | None]
    meta: Callable[[int], tuple[bytes | None, int]]
    """Record ``i``'s key and timestamp (milliseconds since the epoch, -1 for none)."""


def polled_partitions(batch: Mapping[Any, Sequence[ConsumerRecord]]) -> list[PolledPartition]:
    """A consumer's ``poll`` result (records by partition) as :class:`PolledPartition`."""
    return [
        PolledPartition(
            records[0].topic,
            records[0].partition,
            [r.offset for r in records],
            [r.value for r in records],
            _meta_of(records),
        )
        for records in batch.values()
        if records
    ]


def _meta_of(records: Sequence[ConsumerRecord]) -> Callable[[int], tuple[bytes | None, int]]:
    def meta(i: int) -> tuple[bytes | None, int]:
        return records[i].key, records[i].timestamp

    return meta
