"""Small in-memory stand-ins for the Kafka clients, for unit tests of the loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord


def record(topic: str, partition: int, offset: int, value: bytes | None, key: bytes | None = None):
    return ConsumerRecord(topic, partition, -1, offset, 0, 0, key, value, [], None, 0, 0, 0)


def batch_of(records: list[Any]) -> dict[TopicPartition, list[Any]]:
    out: dict[TopicPartition, list[Any]] = {}
    for r in records:
        out.setdefault(TopicPartition(r.topic, r.partition), []).append(r)
    return out


class FakeFuture:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    def get(self, timeout: float | None = None) -> None:
        if self.error is not None:
            raise self.error


@dataclass
class FakeProducer:
    """Records sends; ``fail`` decides per (topic, attempt number) whether a send fails."""

    fail: Callable[[str, int], bool] = lambda topic, attempt: False
    sent: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    attempts: int = 0
    flushes: int = 0
    log: list[str] = field(default_factory=list)

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None) -> FakeFuture:
        self.attempts += 1
        if self.fail(topic, self.attempts):
            return FakeFuture(RuntimeError(f"cannot write to {topic}"))
        self.sent.append((topic, key, value))
        return FakeFuture(None)

    def flush(self, timeout: float | None = None) -> None:
        self.flushes += 1
        self.log.append("flush")

    def close(self) -> None:
        pass


@dataclass
class FakeConsumer:
    """Hands out the given batches one per poll, then sets ``stop`` when they run out."""

    batches: list[dict[TopicPartition, list[Any]]]
    log: list[str]
    stop: Any = None
    commits: int = 0
    closed: bool = False
    subscribed: Any = None
    listener: Any = None
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    seeks: list[tuple[TopicPartition, int]] = field(default_factory=list)
    history: list[dict[TopicPartition, int]] = field(default_factory=list)

    def subscribe(self, topics: Any = (), pattern: Any = None, listener: Any = None) -> None:
        self.subscribed = pattern or list(topics)
        self.listener = listener

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict:
        """The next batch; an entry that is a callable is a rebalance, called with the listener."""
        if self.batches:
            batch = self.batches.pop(0)
            if callable(batch):
                batch(self.listener)
                return {}
            return batch
        if self.stop is not None:
            self.stop.set()
        return {}

    def commit(self, offsets: Any = None) -> None:
        self.commits += 1
        self.log.append("commit")
        for partition, meta in (offsets or {}).items():
            self.committed[partition] = meta.offset
        self.history.append({p: meta.offset for p, meta in (offsets or {}).items()})

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks.append((partition, offset))

    def assignment(self) -> set:
        return set()

    def highwater(self, partition: Any) -> int | None:
        return None

    def position(self, partition: Any, timeout_ms: int | None = None) -> int | None:
        return None

    def close(self, autocommit: bool = True) -> None:
        self.closed = True
