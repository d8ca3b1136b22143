"""Per-stream series generated from the detector's arrays at scrape time.

No metric object is kept per stream: a scrape reads the state arrays (one row per
stream). Each row's label set (``stream`` plus ``metrics.stream_labels``) never
changes while the row holds the same stream, so its label values, their escaped
exposition text and whether the key matches ``metrics.per_stream_match`` are
cached per row, and rebuilt only when the row's key changes (a new stream, or an
evicted stream's row reused).

A scrape can read the collector two ways:

* :meth:`StreamCollector.collect`, the registry's way: families of samples, for
  ``registry.get_sample_value``, prometheus-client's own server and encoders;
* inside :meth:`StreamCollector.deferred` (what ``/metrics`` does, see
  :mod:`monitor.metrics.http`): ``collect`` yields only the aggregate families and
  the per-stream families are written as text straight from the arrays, the same
  bytes prometheus-client would write, an order of magnitude faster.

Which streams get per-stream series is set by ``metrics.per_stream``: ``all``,
``matching`` (key matches a glob of ``metrics.per_stream_match``, or anomalous
now) or ``anomalous`` (anomalous now). The aggregates cover every stream.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from monitor.config.schema import MetricsConfig
from monitor.detection import Detector
from monitor.metrics.exposition import (
    UNDERSCORES,
    ValueTexts,
    escape_label_value,
    family_text,
    label_template,
)
from monitor.records.base import Labels

PerStream = Literal["all", "matching", "anomalous"]

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
EVENTS = ("monitor_anomaly_events", "Anomaly events emitted for the stream.")
SEVERITY = (
    "monitor_stream_anomaly_severity",
    "1 for each stream whose last point was anomalous, labelled with its severity.",
)
ANOMALOUS = ("monitor_streams_anomalous", "Streams whose last point was anomalous.")
EXPOSED = (
    "monitor_streams_exposed",
    "Streams whose per-stream series are on this scrape (see metrics.per_stream).",
)
SCORES = (
    "monitor_stream_scores",
    "Calibrated anomaly scores of the last point of every stream, as a gauge histogram.",
)
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
"""Upper bounds of the score histogram: one decade of tail probability each."""

_BOOL_TEXT = ("0.0", "1.0")


def glob_pattern(globs: Sequence[str]) -> re.Pattern[str] | None:
    """One regular expression matching what any of the shell ``globs`` matches (case-sensitive).

    >>> pattern = glob_pattern(["cpu*", "mem{host=a}"])
    >>> [bool(pattern.match(k)) for k in ("cpu{host=b}", "mem{host=a}", "mem{host=b}")]
    [True, True, False]
    >>> glob_pattern([]) is None
    True
    """
    if not globs:
        return None
    return re.compile("|".join(fnmatch.translate(glob) for glob in globs))


class _RowCache:
    """What is known of each row while it holds the same stream.

    ``keys[row]`` is the key the entries were made for; :meth:`sync` blanks the
    entries of every row whose key is no longer that. Label values and texts are
    made on demand (only exposed rows need them); matches eagerly.
    """

    def __init__(self, label_names: tuple[str, ...], pattern: re.Pattern[str] | None) -> None:
        self.label_names = label_names
        self.pattern = pattern
        self.keys: list[str] = []
        self.values: list[tuple[str, ...] | None] = []
        self.texts: list[str | None] = []
        self.matched = np.zeros(0, dtype=bool)
        self.escaping: str | None = None
        self.template, self.order = label_template(label_names)
        self.lock = threading.Lock()

    def sync(self, keys: list[str]) -> None:
        """Follow the table's keys (one per row): new rows, and rows whose stream changed."""
        n, cached = len(keys), self.keys
        if len(cached) > n:
            del cached[n:], self.values[n:], self.texts[n:]
            self.matched = self.matched[:n]
        m = len(cached)
        # A list comparison tests identity first: cheap when nothing changed.
        if cached != (keys if m == n else keys[:m]):
            pairs = enumerate(zip(cached, keys, strict=False))  # keys may run longer
            changed = [row for row, (old, new) in pairs if old != new]
            for row in changed:
                cached[row] = keys[row]
                self.values[row] = None
                self.texts[row] = None
            if self.pattern is not None:
                self.matched[changed] = [bool(self.pattern.match(keys[r])) for r in changed]
        if n > m:
            fresh = keys[m:]
            cached.extend(fresh)
            self.values.extend([None] * (n - m))
            self.texts.extend([None] * (n - m))
            if self.pattern is not None:
                match = self.pattern.match
                added = np.fromiter((match(k) is not None for k in fresh), bool, n - m)
            else:
                added = np.zeros(n - m, dtype=bool)
            self.matched = np.concatenate([self.matched, added])

    def label_values(self, rows: list[int], labels: list[Labels]) -> list[tuple[str, ...]]:
        """Label values of ``rows`` in :attr:`label_names` order (``labels``: the table's)."""
        values = self.values
        extra = self.label_names[1:]
        for row in rows:
            if values[row] is None:
                if extra:
                    pairs = dict(labels[row])
                    values[row] = (self.keys[row], *(pairs.get(name, "") for name in extra))
                else:
                    values[row] = (self.keys[row],)
        return [values[row] for row in rows]  # type: ignore[misc]

    def label_texts(self, rows: list[int], labels: list[Labels], escaping: str) -> list[str]:
        """Escaped label text of ``rows`` (``{a="x",b="y"} ``), label names as ``escaping``."""
        if escaping != self.escaping:
            template, order = label_template(self.label_names, escaping)
            if template != self.template:
                self.texts = [None] * len(self.texts)
            self.template, self.order, self.escaping = template, order, escaping
        texts, template, order = self.texts, self.template, self.order
        missing = [row for row in rows if texts[row] is None]
        if missing:
            for row, values in zip(missing, self.label_values(missing, labels), strict=True):
                texts[row] = template.format(*(escape_label_value(values[i]) for i in order))
        if len(rows) == len(texts):  # every row: rows is 0..n-1
            return texts.copy()  # type: ignore[return-value]
        return [texts[row] for row in rows]  # type: ignore[misc]


@dataclass
class _Taken:
    """What one scrape exposes, read from the arrays at one instant."""

    rows: np.ndarray
    """Rows with per-stream series, ascending."""
    columns: dict[str, np.ndarray]
    """Each gauge's column, and ``events``, at :attr:`rows`."""
    anomalous: np.ndarray
    """Rows anomalous now (all of them within :attr:`rows`)."""
    critical: np.ndarray
    """Whether each of :attr:`anomalous` is critical."""
    score_buckets: list[tuple[str, float]]
    score_sum: float
    label_values: list[tuple[str, ...]] = field(default_factory=list)
    """Label values of :attr:`rows` (registry reads)."""
    label_texts: list[str] = field(default_factory=list)
    """Label texts of :attr:`rows` (text scrapes)."""
    anomalous_values: list[tuple[str, ...]] = field(default_factory=list)
    """Label values of :attr:`anomalous`."""


class StreamScrape:
    """One ``/metrics`` scrape's per-stream families, written as exposition text.

    Made by :meth:`StreamCollector.deferred`; the registry's ``collect`` inside it
    reads the arrays, and :meth:`render` writes what it read.
    """

    def __init__(self, collector: StreamCollector, escaping: str) -> None:
        self.collector = collector
        self.escaping = escaping
        self.taken: _Taken | None = None

    def render(self, openmetrics: bool = False) -> list[bytes]:
        """The per-stream families as UTF-8 text, one chunk per family.

        ``openmetrics`` selects the OpenMetrics text format (without ``# EOF``).
        When the collector was not collected during the scrape (not registered),
        the arrays are read now.
        """
        taken = self.taken or self.collector._take(self.escaping)
        collector = self.collector
        texts = taken.label_texts
        esc = self.escaping
        chunks = []
        with collector._format_lock:
            formatted = {
                column: collector._value_texts[column].format(taken.rows, values)
                for column, values in taken.columns.items()
                if values.dtype != np.bool_
            }
        for name, documentation, column in GAUGES:
            values = taken.columns[column]
            if values.dtype == np.bool_:
                shown = [_BOOL_TEXT[v] for v in values.tolist()]
            else:
                shown = formatted[column]
            text = family_text(
                name, documentation, "gauge", texts, shown, openmetrics=openmetrics, escaping=esc
            )
            chunks.append(text.encode())
        events = formatted["events"]
        text = family_text(*EVENTS, "counter", texts, events, openmetrics=openmetrics, escaping=esc)
        chunks.append(text.encode())
        template, order = label_template([*collector.label_names, "severity"], esc)
        severity = []
        for label_values, level in zip(
            taken.anomalous_values, _levels(taken.critical), strict=True
        ):
            row = (*label_values, level)
            severity.append(template.format(*(escape_label_value(row[i]) for i in order)))
        text = family_text(
            *SEVERITY,
            "gauge",
            severity,
            ["1.0"] * len(severity),
            openmetrics=openmetrics,
            escaping=esc,
        )
        chunks.append(text.encode())
        return chunks


def _levels(critical: np.ndarray) -> list[str]:
    return ["critical" if c else "warning" for c in critical.tolist()]


class StreamCollector(Collector):
    """Yields the per-stream families of a :class:`Detector`, and aggregates, on every scrape.

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
    per_stream
        Which streams get per-stream series: ``all``, ``matching`` (key matches
        one of ``match``, or anomalous now) or ``anomalous`` (anomalous now).
    match
        Shell globs on the stream key, for ``per_stream="matching"``.

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
    >>> registry.get_sample_value("monitor_streams_exposed")
    1.0
    """

    def __init__(
        self,
        detector: Detector,
        lock: threading.Lock,
        extra_labels: Sequence[str] = (),
        per_stream: PerStream = "all",
        match: Sequence[str] = (),
    ) -> None:
        if per_stream not in get_args(PerStream):
            raise ValueError(f"per_stream must be one of {get_args(PerStream)}, not {per_stream!r}")
        self.detector = detector
        self.lock = lock
        self.extra_labels = tuple(dict.fromkeys(n for n in extra_labels if n != "stream"))
        self.label_names = ("stream", *self.extra_labels)
        self.per_stream = per_stream
        self.match = tuple(match)
        pattern = glob_pattern(self.match) if per_stream == "matching" else None
        self._cache = _RowCache(self.label_names, pattern)
        self._local = threading.local()
        # Value texts per column, kept while values do not change (text scrapes only).
        self._value_texts = {column: ValueTexts() for _, _, column in GAUGES}
        self._value_texts["events"] = ValueTexts()
        self._format_lock = threading.Lock()

    @classmethod
    def from_config(
        cls, detector: Detector, lock: threading.Lock, config: MetricsConfig
    ) -> StreamCollector:
        """The collector ``config`` (the ``metrics`` section) describes."""
        return cls(
            detector,
            lock,
            config.stream_labels,
            per_stream=config.per_stream,
            match=config.per_stream_match,
        )

    def describe(self) -> Iterator[Metric]:
        """The families this collector yields (empty), so the registry knows their names."""
        for name, documentation, _ in GAUGES:
            yield GaugeMetricFamily(name, documentation)
        yield CounterMetricFamily(*EVENTS)
        yield GaugeMetricFamily(*SEVERITY)
        yield from self._aggregates(None)

    @contextmanager
    def deferred(self, escaping: str = UNDERSCORES) -> Iterator[StreamScrape]:
        """While inside, ``collect`` in this thread yields only the aggregate families.

        The per-stream families of what it read are then written by the yielded
        :class:`StreamScrape`; ``escaping`` is the negotiated name escaping.
        """
        scrape = StreamScrape(self, escaping)
        previous = getattr(self._local, "scrape", None)
        self._local.scrape = scrape
        try:
            yield scrape
        finally:
            self._local.scrape = previous

    def collect(self) -> Iterator[Metric]:
        scrape: StreamScrape | None = getattr(self._local, "scrape", None)
        taken = self._take(None if scrape is None else scrape.escaping)
        yield from self._aggregates(taken)
        if scrape is not None:
            scrape.taken = taken
            return
        label_names = list(self.label_names)
        for metric, documentation, column in GAUGES:
            family = GaugeMetricFamily(metric, documentation, labels=label_names)
            for values, value in zip(
                taken.label_values, taken.columns[column].tolist(), strict=True
            ):
                family.add_metric(values, float(value))
            yield family
        counter = CounterMetricFamily(*EVENTS, labels=label_names)
        for values, value in zip(taken.label_values, taken.columns["events"].tolist(), strict=True):
            counter.add_metric(values, float(value))
        yield counter
        severity = GaugeMetricFamily(*SEVERITY, labels=[*label_names, "severity"])
        for values, level in zip(taken.anomalous_values, _levels(taken.critical), strict=True):
            severity.add_metric([*values, level], 1.0)
        yield severity

    def _aggregates(self, taken: _Taken | None) -> Iterator[Metric]:
        anomalous = GaugeMetricFamily(*ANOMALOUS)
        exposed = GaugeMetricFamily(*EXPOSED)
        scores = GaugeHistogramMetricFamily(*SCORES)
        if taken is not None:
            anomalous.add_metric([], float(len(taken.anomalous)))
            exposed.add_metric([], float(len(taken.rows)))
            scores.add_metric([], taken.score_buckets, taken.score_sum)
        yield anomalous
        yield exposed
        yield scores

    def _take(self, escaping: str | None) -> _Taken:
        """Read the arrays; label values (``escaping`` None) or texts of the exposed rows."""
        with self.lock:
            streams = self.detector.streams
            state = self.detector.state
            # Every row below the table's extent, live or freed (freed rows have count 0).
            n = min(len(streams.keys), len(state.count))
            keys = streams.keys[:n]
            labels = streams.labels[:n]
            seen = state.count[:n] > 0
            columns = {column: state[column][:n].copy() for _, _, column in GAUGES}
            events = state.events[:n].copy()
            critical = state.critical[:n].copy()
        anomalous = columns["anomalous"] & seen
        scores = columns["score"][seen]
        cumulative = np.searchsorted(np.sort(scores), SCORE_BUCKETS, side="right")
        bounds = zip(SCORE_BUCKETS, cumulative.tolist(), strict=True)
        buckets = [(floatToGoString(b), float(c)) for b, c in bounds]
        buckets.append(("+Inf", float(len(scores))))
        cache = self._cache
        with cache.lock:
            cache.sync(keys)
            if self.per_stream == "all":
                exposed = seen
            elif self.per_stream == "anomalous":
                exposed = anomalous
            else:
                exposed = anomalous | (seen & cache.matched)
            rows = np.flatnonzero(exposed)
            anomalous_rows = np.flatnonzero(anomalous)
            row_list = rows.tolist()
            taken = _Taken(
                rows=rows,
                columns={column: values[rows] for column, values in columns.items()},
                anomalous=anomalous_rows,
                critical=critical[anomalous_rows],
                score_buckets=buckets,
                score_sum=float(scores.sum()),
                anomalous_values=cache.label_values(anomalous_rows.tolist(), labels),
            )
            if escaping is None:
                taken.label_values = cache.label_values(row_list, labels)
            else:
                taken.label_texts = cache.label_texts(row_list, labels, escaping)
        taken.columns["events"] = events[rows]
        return taken
