"""The daemon's own metrics, registered in a registry passed in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from monitor import __version__


class DaemonMetrics:
    """Counters, gauges and histograms describing the daemon itself.

    >>> registry = CollectorRegistry()
    >>> metrics = DaemonMetrics(registry)
    >>> metrics.rejected.labels(reason="not_json").inc()
    >>> registry.get_sample_value("monitor_records_rejected_total", {"reason": "not_json"})
    1.0
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.info = Info("monitor_build", "Version of the running monitor.", registry=registry)
        self.info.info({"version": __version__})
        self.consumed = Counter(
            "monitor_records_consumed", "Kafka records consumed.", ["topic"], registry=registry
        )
        self.rejected = Counter(
            "monitor_records_rejected",
            "Records rejected (and dead-lettered), by reason.",
            ["reason"],
            registry=registry,
        )
        self.dropped = Counter(
            "monitor_points_dropped",
            "Valid points not scored: late, duplicate, disabled stream, no room for it, "
            "or nan (a Prometheus staleness marker or NaN sample).",
            ["reason"],
            registry=registry,
        )
        self.scored = Counter(
            "monitor_points_scored", "Points scored and learned.", registry=registry
        )
        self.events = Counter(
            "monitor_events_emitted",
            "Anomaly events delivered to the events topic.",
            registry=registry,
        )
        self.delivery_failures = Counter(
            "monitor_delivery_failures",
            "Failed attempts to deliver events or dead letters (retried).",
            ["topic"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "monitor_batch_duration_seconds",
            "Time to process one polled batch: decode, score, send the events, commit.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.batch_records = Histogram(
            "monitor_batch_records",
            "Records per polled batch.",
            buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 50000),
            registry=registry,
        )
        self.lag = Gauge(
            "monitor_consumer_lag",
            "Records between the committed position and the end of each assigned partition.",
            ["topic", "partition"],
            registry=registry,
        )
        self.streams = Gauge(
            "monitor_streams_tracked", "Streams with model state.", registry=registry
        )
        self.evicted = Counter(
            "monitor_streams_evicted",
            "Streams evicted after streams.idle_ttl_seconds without a point (state freed).",
            registry=registry,
        )
        self.last_commit = Gauge(
            "monitor_last_commit_timestamp_seconds",
            "Unix time of the last offset commit.",
            registry=registry,
        )
        self.kafka_up = Gauge(
            "monitor_kafka_up",
            "1 when the consumer heard from a broker lately, 0 while Kafka is unreachable "
            "(no byte read for the session timeout, 10 s at least).",
            registry=registry,
        )
        self.kafka_up.set(1)
        self.checkpoint_last = Gauge(
            "monitor_checkpoint_last_timestamp_seconds",
            "Unix time of the last durable checkpoint (0 before the first).",
            registry=registry,
        )
        self.checkpoint_seconds = Histogram(
            "monitor_checkpoint_duration_seconds",
            "Time to write the checkpoints of every partition due (one round).",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.checkpoint_failures = Counter(
            "monitor_checkpoint_failures",
            "Checkpoints that could not be written (their offsets stay uncommitted).",
            registry=registry,
        )
        self.checkpoint_skipped = Counter(
            "monitor_checkpoints_skipped",
            "Checkpoint files passed over at restore: corrupt, version or incompatible.",
            ["reason"],
            registry=registry,
        )
        for reason in ("corrupt", "version", "incompatible"):
            # Present at 0 from the start, so the first skip shows as an increase.
            self.checkpoint_skipped.labels(reason=reason)
        self.restore_seconds = Gauge(
            "monitor_restore_duration_seconds",
            "Time the last partition assignment spent restoring checkpoints.",
            registry=registry,
        )
        self.streams_restored = Counter(
            "monitor_streams_restored",
            "Streams restored warm from checkpoints on partition assignment.",
            registry=registry,
        )
        self.streams_released = Counter(
            "monitor_streams_released",
            "Streams forgotten because their partition moved to another daemon.",
            registry=registry,
        )
