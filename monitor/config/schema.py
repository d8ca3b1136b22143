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
    transport: Literal["kafka-python", "confluent"] = "kafka-python"
    """Kafka client library: ``kafka-python`` (pure Python, the default) or ``confluent``
    (librdkafka, several times faster; needs ``pip install 'monitor[fast]'``)."""
    reader: Literal["inline", "process"] = "process"
    """Where the consumer runs: ``inline`` in the daemon's process, or ``process``: in a
    child process that reads ahead while the daemon scores, so reading and scoring use
    two cores (:mod:`monitor.kafka.reader`)."""
    reader_batches_ahead: int = Field(4, ge=1, le=64)
    """With ``reader: process``, how many polled batches the child may hold unscored."""
    decode_in: Literal["auto", "reader", "daemon"] = "auto"
    """With ``reader: process``, which process decodes the records: the reading child
    (``reader``), the daemon (``daemon``), or ``auto``: the child with the confluent
    transport, the daemon with kafka-python (:func:`monitor.kafka.reader.decodes_in_reader`)."""
    session_timeout_ms: int = Field(10_000, ge=1_000, le=300_000)
    heartbeat_interval_ms: int = Field(2_000, ge=100, le=60_000)
    max_poll_records: int = Field(5_000, ge=1, le=1_000_000)
    poll_timeout_ms: int = Field(500, ge=1, le=60_000)
    fetch_max_wait_ms: int = Field(100, ge=0, le=10_000)
    """Longest a fetch waits at the broker for new records: the latency floor of a
    consumer that has caught up (some brokers answer only when it expires)."""
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
    tls_certfile: str | None = None
    """PEM certificate (chain) of the endpoint; when set, ``/metrics`` is served over HTTPS."""
    tls_keyfile: str | None = None
    """PEM private key of ``tls_certfile`` (unless the certificate file holds it)."""
    tls_client_cafile: str | None = None
    """PEM CA bundle; when set, clients must present a certificate signed by it."""
    basic_auth_username: str | None = None
    """When set, requests need HTTP basic auth with this user and ``basic_auth_password``."""
    basic_auth_password: str | None = Field(None, repr=False)
    """Write ``${ENV_VAR}`` to take it from the environment, or use ``basic_auth_password_file``."""
    basic_auth_password_file: str | None = None

    @model_validator(mode="after")
    def _tls_and_auth_complete(self) -> MetricsConfig:
        if self.tls_certfile is None and (self.tls_keyfile or self.tls_client_cafile):
            raise ValueError("tls_keyfile and tls_client_cafile need tls_certfile")
        if (self.basic_auth_username is None) != (self.basic_auth_password is None):
            raise ValueError("give both basic_auth_username and basic_auth_password, or neither")
        return self


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


class NoveltyConfig(_Section):
    """Value novelty: surprisal of each value under the stream's faded value histogram."""

    bins: int = Field(32, ge=2, le=255)
    """Equal bins between the stream's running minimum and maximum."""
    fading: float = Field(0.0005, gt=0, lt=1)
    """Weight past counts lose per point (0.0005: about the last 2,000 points)."""
    prior: float = Field(0.1, gt=0, le=1)
    """Pseudo-count of every bin."""
    neighbour: float = Field(0.5, ge=0, le=1)
    """Share of the fuller adjacent bin's count a bin's mass includes when a value in it
    is scored, so a value just past a well-populated bin is not novel (0: each bin alone)."""
    edge: float = Field(1.5, ge=0)
    """A value past the range seen so far keeps a share exp(-distance / edge) of the edge
    bin's mass, distance in bin widths, so a new high or low that only grazes the old one
    is not novel (0: every value outside the range scores as an empty bin)."""
    tail_quantile: float = Field(0.99, ge=0.5, lt=1)
    """Quantile of the stream's novelty values where its tail model starts (as
    ``threshold.tail_quantile`` for the raw score; the other tail settings are shared)."""
    learn_below: float = Field(0.8, gt=0, le=1)
    """As ``threshold.learn_below``, for the novelty tail model: novelty scores at or above
    max(alert threshold, this) are not learned. Higher than the raw score's, so a stream
    whose values keep visiting a rare range learns that its tail is wide."""


class RareRateConfig(_Section):
    """Rare-value rate: a burst of values rare under the novelty histogram, scored by how
    improbable the stream's recent count of them is under its long-run count."""

    share: float = Field(0.01, ge=0, lt=1)
    """A value is rare when its novelty bin (with the neighbour share) holds less than this
    share of the stream's faded histogram; 0 turns the detector off."""
    short_fading: float = Field(0.03, gt=0, lt=1)
    """Weight the recent count of rare values loses per point (0.03: about the last 33)."""
    long_fading: float = Field(0.001, gt=0, lt=1)
    """Fading factor of the long-run mean and variance of that count (0.001: about the
    last 1,000 points)."""


class DailyProfileConfig(_Section):
    """Per time-of-day (UTC) bin mean and spread of each value's deviation from its
    long-run mean: the ``season`` detector."""

    bins: int = Field(24, ge=1, le=1440)
    """Equal time-of-day bins of a day (24: hourly)."""
    fading: float = Field(0.15, gt=0, le=1)
    """Weight of the newest day in a bin's averages (shared by that day's values)."""
    prior_weight: float = Field(0.3, ge=0)
    """Pseudo days of the prior (deviation 0, the long-run variance) each bin's own
    mean and variance are pooled with, so a young bin scores like the ``level`` detector."""
    run_allowance: float = Field(2.0, ge=0)
    """Season z-score beyond which a point adds to a run of deviations on its side (the
    allowance of two one-sided CUSUMs)."""
    run_scale: float = Field(20.0, ge=0)
    """Run (summed z-score beyond the allowance) at which the season detector scores 0.5
    for a point that continues it; 0 turns runs off."""


class RecurrenceConfig(_Section):
    """Daily recurrence: a deviation the stream shows at about this time of day on most
    days (a nightly job's spike) is not anomalous. Bins are ``daily_profile.bins``."""

    days: int = Field(8, ge=0, le=64)
    """Days of each time-of-day bin's largest and smallest residual kept (today and the
    previous ``days - 1``); 0 turns recurrence off (1 is not allowed)."""
    min_days: int = Field(2, ge=1)
    """Previous days with a like residual near this time for a residual to recur."""
    ratio: float = Field(0.9, gt=0)
    """A previous day's residual is like the current one when it is on the same side and
    at least this share of its size."""
    neighbours: int = Field(1, ge=0)
    """Bins on either side that count as this time of day (a job's start jitters)."""
    specificity: float = Field(1.5, ge=0)
    """The share of previous days with a like residual near this time must be at least this
    multiple of what the whole day's like residuals spread evenly would give (so spikes at
    all hours do not recur anywhere); 0 does not compare."""

    @model_validator(mode="after")
    def _days_not_one(self) -> RecurrenceConfig:
        if self.days == 1:
            raise ValueError("recurrence.days must be 0 (off) or at least 2")
        return self


class WeightsConfig(_Section):
    """Weights of each detector in the combined raw score (normalised to sum to 1)."""

    forecast: float = Field(0.5, ge=0)
    rolling: float = Field(0.2, ge=0)
    hst: float = Field(0.3, ge=0)
    level: float = Field(0.0, ge=0)
    """The value against the stream's long-run mean and spread (``detector.level_fading``)."""
    season: float = Field(3.0, ge=0)
    """The value's deviation from the long-run mean against the same time of day
    (``detector.daily_profile``)."""

    @model_validator(mode="after")
    def _some_weight(self) -> WeightsConfig:
        if self.forecast + self.rolling + self.hst + self.level + self.season <= 0:
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
    learn_below: float = Field(0.5, gt=0, le=1)
    """Once warm, scores at or above max(alert threshold, learn_below) are not learned by
    the raw score's tail model and the daily profile (``novelty.learn_below`` for the
    novelty tail model)."""
    learn_recurring: bool = True
    """Once a stretch of points kept out of a tail model (raw score's or novelty's) has
    ended, later kept-out points count in it as censored exceedances (at least at the
    cut, their size unused), so a kind of point that keeps coming back stops alerting;
    false keeps every kept-out point out."""
    critical: float = Field(0.8, gt=0, le=1)
    """Anomalous points scoring at or above this are 'critical', others 'warning'."""


class DetectorConfig(_Section):
    """The per-stream models. ``sensitivity`` and ``warmup`` can be overridden per stream."""

    warmup: int = Field(300, ge=0)
    """Points a stream must have before it may alert."""
    sensitivity: float = Field(0.67, ge=0, le=1)
    """0 alerts least, 1 most; 0.5 alerts at a tail probability of 1e-5, 0.67 at 10^-3.98."""
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
    suppression_span: int = Field(200, ge=0)
    """A score is reported only when it rises above the stream's recent peak, which decays
    over about this many points (one alert per burst); 0 reports every score."""
    suppression_margin: float = Field(0.04, ge=0)
    """A reported score sets the recent peak this much above itself, so the next report
    needs a clearly higher score (0.04: about 2.5 times as improbable), not a small rise."""
    forecaster: ForecasterConfig = ForecasterConfig()
    hst: HalfSpaceTreesConfig = HalfSpaceTreesConfig()
    novelty: NoveltyConfig = NoveltyConfig()
    rare_rate: RareRateConfig = RareRateConfig()
    daily_profile: DailyProfileConfig = DailyProfileConfig()
    recurrence: RecurrenceConfig = RecurrenceConfig()
    weights: WeightsConfig = WeightsConfig()
    threshold: ThresholdConfig = ThresholdConfig()

    @model_validator(mode="after")
    def _recurrence_fits_the_day(self) -> DetectorConfig:
        if self.recurrence.days and 2 * self.recurrence.neighbours + 1 > self.daily_profile.bins:
            raise ValueError(
                "recurrence.neighbours: the bins looked at (2 * neighbours + 1) must not "
                "exceed daily_profile.bins"
            )
        return self


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


class StateConfig(_Section):
    """Checkpoints of every stream's learned state, per Kafka partition.

    Offsets are committed only after the checkpoint covering them is on disk, so a
    restarted daemon, or the daemon a partition moves to, resumes warm from the
    checkpoint's offset.
    """

    enabled: bool = True
    """False: no checkpoints; offsets are committed after every batch and a restart or
    a partition move starts its streams cold."""
    dir: str = Field("./state", min_length=1)
    """Checkpoint directory. Several daemons of one group on several machines need a
    directory they all reach (a shared volume), so a moved partition takes its state."""
    checkpoint_interval_seconds: float = Field(30.0, gt=0)
    """Time between checkpoints (and offset commits); also taken on revoke and shutdown.
    A crash replays at most about this much input."""
    keep: int = Field(3, ge=1, le=100)
    """Checkpoints kept per partition; an unreadable newest one falls back to the previous."""


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
    state: StateConfig = StateConfig()
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
