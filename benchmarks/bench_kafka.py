"""The benchmarks' side of Kafka: loading records into the broker, and the daemons' config.

``Loader`` produces with confluent-kafka when it is installed (fast, C), else kafka-python;
both partition by the murmur2 hash of the key, so a stream's points always land in one
partition. ``Run`` holds what every stage of ``pipeline.py`` shares and builds each daemon's
configuration: the defaults on the run's broker and topic, with a new consumer group.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from bench_data import Fleet
from kafka import KafkaProducer

from monitor.kafka.broker import EmbeddedBroker

TRANSPORTS = ("kafka-python", "confluent")

HAS_CONFLUENT = importlib.util.find_spec("confluent_kafka") is not None


def fast_transport_ready() -> bool:
    """Whether the confluent transport can run: the client and the monitor's adapter."""
    return HAS_CONFLUENT and importlib.util.find_spec("monitor.kafka.transport") is not None


# Loading the data ----------------------------------------------------------------------------


class Loader:
    """Produces records into the topic (confluent-kafka when installed, else kafka-python).

    Both partition by the murmur2 hash of the key, like the Java client, so a stream's
    points always land in the same partition whichever producer wrote them.
    """

    def __init__(self, bootstrap: str, linger_ms: int = 20) -> None:
        self.sent = 0
        if HAS_CONFLUENT:
            import confluent_kafka

            self._fast = confluent_kafka.Producer(
                {
                    "bootstrap.servers": bootstrap,
                    "linger.ms": linger_ms,
                    "partitioner": "murmur2_random",
                    "queue.buffering.max.messages": 2_000_000,
                    "batch.num.messages": 10_000,
                    "acks": "all",
                }
            )
            self._slow = None
        else:
            self._fast = None
            self._slow = KafkaProducer(
                bootstrap_servers=bootstrap, linger_ms=linger_ms, batch_size=262_144, acks="all"
            )

    def send(self, topic: str, key: bytes, value: bytes) -> None:
        if self._fast is not None:
            while True:
                try:
                    self._fast.produce(topic, value=value, key=key)
                    break
                except BufferError:
                    self._fast.poll(0.01)
        else:
            assert self._slow is not None
            self._slow.send(topic, key=key, value=value)
        self.sent += 1

    def send_batch(self, topic: str, messages: list[dict[str, bytes]]) -> None:
        """Produce ``messages`` (dicts of ``key`` and ``value``) in one call where the
        client has one (confluent-kafka's ``produce_batch``: about half the CPU time of a
        ``produce`` a record), so a load generator takes less of the cores it shares with
        what it measures."""
        if self._fast is None:
            for message in messages:
                self.send(topic, message["key"], message["value"])
            return
        import confluent_kafka

        left = messages
        while left:
            queued = self._fast.produce_batch(topic, left)
            if queued == len(left):
                break
            failed = [m for m in left if "_error" in m]
            errors = {m.pop("_error").code() for m in failed}
            if errors != {confluent_kafka.KafkaError._QUEUE_FULL}:  # as send() raises them
                raise confluent_kafka.KafkaException(f"produce_batch failed: {errors}")
            left = failed
            self._fast.poll(0.01)  # the local queue was full: let it drain
        self.sent += len(messages)

    def poll(self) -> None:
        if self._fast is not None:
            self._fast.poll(0)

    def flush(self) -> None:
        if self._fast is not None:
            left = self._fast.flush(60)
            if left:
                raise RuntimeError(f"{left} records not delivered to the broker")
        else:
            assert self._slow is not None
            self._slow.flush(60)

    def close(self) -> None:
        self.flush()
        if self._slow is not None:
            self._slow.close()


# Configuration ------------------------------------------------------------------------------


@dataclass
class Run:
    """What every stage shares: the broker, the topic, the data and the figures."""

    broker: EmbeddedBroker
    topic: str
    fleet: Fleet
    points: int
    produced: int
    warmup: int
    workdir: Path
    figures: dict[str, Any] = field(default_factory=dict)
    groups: int = 0
    reader: str | None = None
    """``kafka.reader`` of the daemons (``inline`` or ``process``); None: the default."""
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Section -> settings laid over every daemon configuration (``latency.py --set``)."""
    partitions: int = 4
    """Partitions of :attr:`topic` (and of the topics :func:`live.on_own_topic` makes)."""

    def config(self, transport: str, events_topic: str, metrics_port: int = 0) -> dict[str, Any]:
        """A daemon configuration: the defaults, on this run's broker, topic and a new group."""
        self.groups += 1
        config: dict[str, Any] = {
            "kafka": {
                "bootstrap_servers": self.broker.bootstrap_servers,
                "group_id": f"bench-{self.groups}",
                "topics": [self.topic],
                "transport": transport,
                **({} if self.reader is None else {"reader": self.reader}),
                "session_timeout_ms": 6000,
                "heartbeat_interval_ms": 1000,
            },
            "events": {"topic": events_topic, "log": False},
            "dead_letter": {"topic": f"{self.topic}-dead-letter"},
            "metrics": {"port": metrics_port, "address": "127.0.0.1"},
            "detector": {"warmup": self.warmup},
            "state": {"dir": str(self.workdir / f"state-{self.groups}")},
        }
        for section, settings in self.overrides.items():
            config.setdefault(section, {}).update(settings)
        return config


def overrides(settings: list[str]) -> dict[str, dict[str, Any]]:
    """``["state.keep=2", ...]`` -> ``{"state": {"keep": 2}}``."""
    out: dict[str, dict[str, Any]] = {}
    for setting in settings:
        name, _, value = setting.partition("=")
        section, _, key = name.partition(".")
        if not key or not _:
            raise SystemExit(f"--set takes section.key=value, got {setting!r}")
        out.setdefault(section, {})[key] = yaml.safe_load(value)
    return out


def fill(loader: Loader, topic: str, keys: list[bytes], payloads: list[bytes]) -> None:
    """Produce every record, then wait until the broker has acknowledged all."""
    for key, payload in zip(keys, payloads, strict=True):
        loader.send(topic, key, payload)
    loader.close()
