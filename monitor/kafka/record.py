"""One consumed record, as the daemon reads it from any of its consumers."""

from __future__ import annotations

from typing import NamedTuple


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
