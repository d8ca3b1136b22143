"""The configuration model: one frozen, typed object; unknown keys are errors.

Every field has a documented default, so an empty file is a valid configuration
that runs against ``127.0.0.1:9092``. The keys ``kafka.bootstrap_servers``,
``kafka.group_id``, ``kafka.topics``, ``kafka.format``, ``events.topic`` and
``metrics.port`` are a fixed contract with tools outside the project.

>>> config = MonitorConfig()
>>> config.kafka.topics, config.events.topic, config.metrics.port
(('metrics',), 'anomalies', 9108)
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

RecordFormat = Literal["native", "prometheus-kafka-adapter", "telegraf"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class KafkaConfig(_Section):
    """Where records come from and how the client talks to the cluster."""

    bootstrap_servers: str = Field("127.0.0.1:9092", min_length=1)
    """Comma-separated host:port list; env ``MONITOR_KAFKA_BOOTSTRAP_SERVERS`` overrides."""
    group_id: str = Field("monitor", min_length=1)
    """Consumer group; daemons sharing it split the partitions."""
    topics: tuple[str, ...] = ("metrics",)
    """Topics to consume (ignored when ``topic_pattern`` is set)."""
    topic_pattern: str | None = None
    """Regular expression of topic names to subscribe to instead of ``topics``."""
    format: RecordFormat = "native"
    """Record format of every topic unless ``topic_formats`` says otherwise."""
    topic_formats: dict[str, RecordFormat] = {}
    """Per-topic format overrides: topic name -> format."""
    client_id: str = "monitor"
    session_timeout_ms: int = Field(10_000, ge=1_000, le=300_000)
    heartbeat_interval_ms: int = Field(2_000, ge=100, le=60_000)
    max_poll_records: int = Field(5_000, ge=1, le=1_000_000)
    poll_timeout_ms: int = Field(500, ge=1, le=60_000)
    max_record_bytes: int = Field(65_536, ge=64)
    """Records larger than this are rejected as ``too_large``."""
    create_topics: bool = True
    """Create the events and dead-letter topics when they do not exist."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: str | None = Field(None, repr=False)
    """Write ``${ENV_VAR}`` to take it from the environment, or use ``sasl_password_file``."""
    sasl_password_file: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    @field_validator("topic_pattern")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _topics_given(self) -> KafkaConfig:
        if not self.topics and self.topic_pattern is None:
            raise ValueError("give at least one topic in 'topics' or a 'topic_pattern'")
        if self.heartbeat_interval_ms * 3 > self.session_timeout_ms:
            raise ValueError("heartbeat_interval_ms must be at most a third of session_timeout_ms")
        return self


class EventsConfig(_Section):
    """Where anomaly events go."""

    topic: str = Field("anomalies", min_length=1)
    partitions: int = Field(3, ge=1)
    """Partition count used when the daemon creates the topic."""
    log: bool = True
    """Log every anomaly event as a one-line summary."""


class DeadLetterConfig(_Section):
    """Where rejected records go, with their reason."""

    enabled: bool = True
    topic: str = Field("monitor-dead-letter", min_length=1)
    partitions: int = Field(1, ge=1)


class MetricsConfig(_Section):
    """The Prometheus endpoint."""

    port: int = Field(9108, ge=0, le=65_535)
    """0 disables the HTTP endpoint."""
    address: str = "0.0.0.0"
    stream_labels: tuple[str, ...] = ()
    """Stream labels copied onto the per-stream series besides ``stream``."""
    per_stream: Literal["all", "matching", "anomalous"] = "all"
    """Streams with per-stream series: every stream, those whose key matches
    ``per_stream_match`` or that are anomalous now, or only those anomalous now. The
    aggregates (``monitor_streams_anomalous``, ``monitor_streams_exposed``,
    ``monitor_stream_scores``) cover every stream."""
    per_stream_match: tuple[str, ...] = ()
    """Shell globs on the stream key of the streams exposed when ``per_stream`` is
    ``matching``."""


class ForecasterConfig(_Section):
    """Holt-Winters forecaster (additive)."""

    alpha: float = Field(0.3, gt=0, le=1)
    beta: float = Field(0.0, ge=0, le=1)
    """0 disables the trend component."""
    gamma: float = Field(0.1, ge=0, le=1)
    seasonality: int = Field(0, ge=0, le=10_080)
    """Season length in points; 0 for none."""


class HalfSpaceTreesConfig(_Section):
    """Half-space trees over [value z, residual z, first-difference z], squashed to [0, 1]."""

    n_trees: int = Field(10, ge=1, le=64)
    height: int = Field(8, ge=1, le=12)
    window_size: int = Field(250, ge=10, le=65_535)
    seed: int = 42


class WeightsConfig(_Section):
    """Weights of each detector in the combined raw score (normalised to sum to 1)."""

    forecast: float = Field(0.5, ge=0)
    rolling: float = Field(0.2, ge=0)
    hst: float = Field(0.3, ge=0)
    level: float = Field(0.5, ge=0)
    """The value against the stream's long-run mean and spread (``detector.level_fading``)."""

    @model_validator(mode="after")
    def _some_weight(self) -> WeightsConfig:
        if self.forecast + self.rolling + self.hst + self.level <= 0:
            raise ValueError("at least one detector weight must be positive")
        return self


class ThresholdConfig(_Section):
    """From the combined raw score to a calibrated score and an alert decision."""

    tail_quantile: float = Field(0.98, ge=0.5, lt=1)
    """Quantile of each stream's raw scores where its exponential tail model starts."""
    window: int = Field(1000, ge=2)
    """Span (points) over which the tail model follows the stream."""
    short_window: int = Field(1, ge=1)
    """Span (points) of the average of raw scores that is scored; 1 scores each point alone."""
    guard_quantile: float = Field(0.999, gt=0.5, lt=1)
    """The threshold never sits below this streaming quantile of the stream's own scores."""
    guard_step: float = Field(0.01, gt=0, le=0.5)
    critical: float = Field(0.8, gt=0, le=1)
    """Anomalous points scoring at or above this are 'critical', others 'warning'."""


class DetectorConfig(_Section):
    """The per-stream models. ``sensitivity`` and ``warmup`` can be overridden per stream."""

    warmup: int = Field(300, ge=0)
    """Points a stream must have before it may alert."""
    sensitivity: float = Field(0.5, ge=0, le=1)
    """0 alerts least, 1 most; 0.5 alerts at an anomaly likelihood of 1 - 1e-5."""
    rolling_window: int = Field(60, ge=2, le=4096)
    ew_fading: float = Field(0.02, gt=0, le=1)
    """Fading factor of the exponentially weighted mean/variance of values and residuals."""
    level_fading: float = Field(0.002, gt=0, le=1)
    """Fading factor of the long-run mean/variance the ``level`` detector compares values with."""
    interval_z: float = Field(3.0, gt=0)
    """Half-width of the prediction interval, in residual standard deviations."""
    rebaseline_after: int = Field(30, ge=0)
    """Points outside the prediction interval are learned clipped to its edge, so an open
    anomaly does not become normal; after this many in a row the stream is re-baselined to
    the new level. 0 learns every value as it is."""
    forecaster: ForecasterConfig = ForecasterConfig()
    hst: HalfSpaceTreesConfig = HalfSpaceTreesConfig()
    weights: WeightsConfig = WeightsConfig()
    threshold: ThresholdConfig = ThresholdConfig()


class StreamOverride(_Section):
    """Settings for the streams whose key matches ``match`` (a shell glob)."""

    match: str = Field(min_length=1)
    seasonality: int | None = Field(None, ge=0, le=10_080)
    sensitivity: float | None = Field(None, ge=0, le=1)
    warmup: int | None = Field(None, ge=0)
    disabled: bool = False


class StreamsConfig(_Section):
    """Bounds on tracked streams, and per-stream overrides (first match wins)."""

    max_streams: int = Field(100_000, ge=1)
    """Records of new streams beyond this are rejected as ``too_many_streams``."""
    max_future_seconds: float = Field(86_400.0, ge=0)
    """Records timestamped further than this past the daemon's clock are rejected."""
    idle_ttl_seconds: float = Field(86_400.0, ge=0)
    """A stream with no point for this long (daemon wall clock) is evicted; 0 disables."""
    eviction_interval_seconds: float = Field(60.0, ge=0)
    """How often the daemon looks for idle streams; 0 looks after every poll."""
    overrides: tuple[StreamOverride, ...] = ()


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class MonitorConfig(_Section):
    """The whole configuration."""

    kafka: KafkaConfig = KafkaConfig()
    events: EventsConfig = EventsConfig()
    dead_letter: DeadLetterConfig = DeadLetterConfig()
    metrics: MetricsConfig = MetricsConfig()
    detector: DetectorConfig = DetectorConfig()
    streams: StreamsConfig = StreamsConfig()
    logging: LoggingConfig = LoggingConfig()

    @model_validator(mode="after")
    def _season_needs_gamma(self) -> MonitorConfig:
        seasonal = self.detector.forecaster.seasonality > 0 or any(
            (o.seasonality or 0) > 0 for o in self.streams.overrides
        )
        if seasonal and self.detector.forecaster.gamma == 0:
            raise ValueError("detector.forecaster.gamma must be > 0 when a seasonality is set")
        if self.detector.forecaster.seasonality == 1 or any(
            o.seasonality == 1 for o in self.streams.overrides
        ):
            raise ValueError("a seasonality of 1 is not a season; use 0 (none) or >= 2")
        return self
