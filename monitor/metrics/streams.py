"""Per-stream gauges generated from the detector's arrays at scrape time.

No metric object is kept per stream: a scrape builds the families from the
state arrays (one row per stream), so memory does not grow with label sets.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.detection import Detector

GAUGES = (
    ("monitor_stream_value", "Last value seen of the stream.", "last_value"),
    ("monitor_stream_expected", "Forecast of the last value (before it was seen).", "expected"),
    ("monitor_stream_expected_lower", "Lower bound of the prediction interval.", "lower"),
    ("monitor_stream_expected_upper", "Upper bound of the prediction interval.", "upper"),
    ("monitor_stream_anomaly_score", "Calibrated anomaly score of the last point, 0..1.", "score"),
    (
        "monitor_stream_anomaly_threshold",
        "The stream's current alert threshold, 0..1.",
        "threshold",
    ),
    ("monitor_stream_anomalous", "1 when the last point was anomalous, else 0.", "anomalous"),
)


class StreamCollector(Collector):
    """Yields the per-stream families of a :class:`Detector` on every scrape.

    ``lock`` is the lock the daemon holds while it updates the detector; the
    collector holds it only while copying the arrays.

    Parameters
    ----------
    detector
        The detector whose state is exposed.
    lock
        Guards the detector's arrays.
    extra_labels
        Stream labels copied onto each series besides ``stream``.

    Examples
    --------
    >>> from prometheus_client import CollectorRegistry
    >>> from monitor.config import MonitorConfig
    >>> from monitor.records import Point
    >>> detector = Detector(MonitorConfig())
    >>> _ = detector.process([Point("cpu", (("host", "a"),), 0.0, 1.5)])
    >>> registry = CollectorRegistry()
    >>> registry.register(StreamCollector(detector, threading.Lock(), extra_labels=("host",)))
    >>> registry.get_sample_value("monitor_stream_value", {"stream": 'cpu{host=a}', "host": "a"})
    1.5
    """

    def __init__(
        self, detector: Detector, lock: threading.Lock, extra_labels: Sequence[str] = ()
    ) -> None:
        self.detector = detector
        self.lock = lock
        self.extra_labels = tuple(extra_labels)

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            streams = self.detector.streams
            n = len(streams)
            keys = streams.keys[:n]
            labels = streams.labels[:n]
            state = self.detector.state
            columns = {name: state[name][:n].copy() for _, _, name in GAUGES}
            events = state.events[:n].copy()
            critical = state.critical[:n].copy()
            seen = state.count[:n] > 0
        label_names = ["stream", *self.extra_labels]
        label_values = [
            [key, *(dict(pairs).get(name, "") for name in self.extra_labels)]
            for key, pairs in zip(keys, labels, strict=True)
        ]
        shown = np.flatnonzero(seen)
        for metric, documentation, column in GAUGES:
            family = GaugeMetricFamily(metric, documentation, labels=label_names)
            values = columns[column].astype(np.float64)
            for row in shown:
                family.add_metric(label_values[row], float(values[row]))
            yield family
        counter = CounterMetricFamily(
            "monitor_anomaly_events", "Anomaly events emitted for the stream.", labels=label_names
        )
        for row in shown:
            counter.add_metric(label_values[row], float(events[row]))
        yield counter
        severity = GaugeMetricFamily(
            "monitor_stream_anomaly_severity",
            "1 for each stream whose last point was anomalous, labelled with its severity.",
            labels=[*label_names, "severity"],
        )
        for row in np.flatnonzero(seen & columns["anomalous"]):
            level = "critical" if critical[row] else "warning"
            severity.add_metric([*label_values[row], level], 1.0)
        yield severity
