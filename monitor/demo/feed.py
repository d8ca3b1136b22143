"""The demo feed: NAB series and a synthetic fleet, produced into a topic as live streams."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from monitor.demo.nab import default_nab_root, load_nab_series
from monitor.demo.synthetic import SyntheticSeries, make_fleet
from monitor.replay import Producer, encode_native

log = logging.getLogger("monitor.demo")

DEMO_NAB_FILES = (
    "realKnownCause/machine_temperature_system_failure.csv",
    "realKnownCause/ambient_temperature_system_failure.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_825cb1.csv",
    "artificialWithAnomaly/art_daily_jumpsup.csv",
    "artificialNoAnomaly/art_daily_small_noise.csv",
)
BAD_RECORD_EVERY = 20_000
"""One malformed record in this many, so the dead-letter path shows in the demo."""
BAD_RECORDS = (b"not json at all", b'{"stream": "demo.bad", "ts": "yesterday", "value": 1}')


def demo_series(
    n_streams: int, n_points: int, season_length: int, seed: int = 7
) -> list[SyntheticSeries]:
    """The demo's streams: a few NAB series (when the data set is beside the project) and a fleet.

    >>> series = demo_series(n_streams=6, n_points=300, season_length=10)
    >>> sum(s.name.startswith("demo.") for s in series)
    6
    """
    series: list[SyntheticSeries] = []
    root = default_nab_root()
    if root is not None:
        files = [f for f in DEMO_NAB_FILES if (root / "data" / f).exists()]
        series.extend(load_nab_series(root, files))
    series.extend(make_fleet(n_streams, n_points, seed=seed, season_length=season_length))
    return series


def feed_order(series: Sequence[SyntheticSeries]) -> tuple[np.ndarray, np.ndarray]:
    """Round-robin order: point 0 of every series, then point 1, ... (series of different eras mix).

    >>> from monitor.demo.synthetic import make_series
    >>> a, b = make_series("a", 2, seed=1), make_series("b", 3, seed=2)
    >>> [x.tolist() for x in feed_order([a, b])]
    [[0, 1, 0, 1, 1], [0, 0, 1, 1, 2]]
    """
    lengths = np.array([len(s) for s in series])
    series_index = np.repeat(np.arange(len(series)), lengths)
    point_index = (
        np.concatenate([np.arange(n) for n in lengths]) if len(lengths) else np.zeros(0, int)
    )
    order = np.lexsort((series_index, point_index))
    return series_index[order], point_index[order]


@dataclass
class FeedStats:
    sent: int = 0
    bad: int = 0


def produce_feed(
    producer: Producer,
    topic: str,
    series: Sequence[SyntheticSeries],
    rate: float,
    stop: threading.Event,
    stats: FeedStats | None = None,
) -> FeedStats:
    """Produce every point of ``series`` at about ``rate`` records/s until done or ``stop``."""
    stats = stats or FeedStats()
    series_index, point_index = feed_order(series)
    keys = [s.key.encode("utf-8") for s in series]
    started = time.monotonic()
    for i, (s, p) in enumerate(zip(series_index.tolist(), point_index.tolist(), strict=True)):
        if stop.is_set():
            break
        if i and i % BAD_RECORD_EVERY == 0:
            producer.send(topic, key=b"demo.bad", value=BAD_RECORDS[stats.bad % len(BAD_RECORDS)])
            stats.bad += 1
        item = series[s]
        producer.send(
            topic,
            key=keys[s],
            value=encode_native(item.name, item.labels, float(item.ts[p]), float(item.values[p])),
        )
        stats.sent += 1
        if rate > 0 and i % 500 == 0:
            ahead = i / rate - (time.monotonic() - started)
            if ahead > 0:
                stop.wait(ahead)
    producer.flush()
    log.info(
        "demo feed %s: %d points and %d malformed records produced",
        "stopped" if stop.is_set() else "done",
        stats.sent,
        stats.bad,
    )
    return stats
