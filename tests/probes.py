"""Probing a running daemon from tests: its /metrics samples, its consumer group's committed
offsets, and waiting for conditions."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    """Every sample of the loopback /metrics on ``port``, parsed with prometheus-client's
    own parser; raises ``OSError`` when nothing answers."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode("utf-8")
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples named ``name`` whose labels include ``labels``."""
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and all(dict(sample_labels).get(k) == v for k, v in labels.items())
    )


def scraped_total(port: int, name: str) -> float:
    """``total`` of a fresh scrape, or -1 while nothing answers on ``port``."""
    try:
        return total(scrape(port), name)
    except OSError:
        return -1.0


def committed_offsets(
    bootstrap: str, group: str, topic: str, partitions: Iterable[int]
) -> list[int | None]:
    """The offsets ``group`` has committed for these partitions of ``topic`` (None where
    it has committed none), read by a consumer that does not join the group."""
    reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return [reader.committed(TopicPartition(topic, p)) for p in partitions]
    finally:
        reader.close(autocommit=False)


def wait_for(condition: Callable[[], Any], timeout: float, what: str, poll: float = 0.3) -> Any:
    """The first truthy ``condition()`` within ``timeout`` seconds; else fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll)
