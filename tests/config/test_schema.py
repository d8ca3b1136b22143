"""The configuration model: documented defaults, bounds, strictness and cross-field rules."""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest

from monitor.config import schema
from monitor.config.schema import (
    DeadLetterConfig,
    DetectorConfig,
    EventsConfig,
    ForecasterConfig,
    HalfSpaceTreesConfig,
    KafkaConfig,
    LoggingConfig,
    MetricsConfig,
    MonitorConfig,
    StreamOverride,
    StreamsConfig,
    ThresholdConfig,
    WeightsConfig,
)

SECTIONS: list[type[pydantic.BaseModel]] = [
    KafkaConfig,
    EventsConfig,
    DeadLetterConfig,
    MetricsConfig,
    ForecasterConfig,
    HalfSpaceTreesConfig,
    WeightsConfig,
    ThresholdConfig,
    DetectorConfig,
    StreamsConfig,
    LoggingConfig,
    MonitorConfig,
]


def _error(model: type[pydantic.BaseModel], **kwargs: Any) -> pydantic.ValidationError:
    with pytest.raises(pydantic.ValidationError) as caught:
        model(**kwargs)
    return caught.value


# --- the fixed contract ------------------------------------------------------------------------


def test_fixed_contract_defaults() -> None:
    config = MonitorConfig()
    assert config.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert config.kafka.group_id == "monitor"
    assert config.kafka.topics == ("metrics",)
    assert config.kafka.format == "native"
    assert config.events.topic == "anomalies"
    assert config.metrics.port == 9108


def test_fixed_contract_defaults_are_documented() -> None:
    module_doc = schema.__doc__ or ""
    assert "127.0.0.1:9092" in module_doc
    for key in (
        "kafka.bootstrap_servers",
        "kafka.group_id",
        "kafka.topics",
        "kafka.format",
        "events.topic",
        "metrics.port",
    ):
        assert key in module_doc


def test_other_notable_defaults() -> None:
    config = MonitorConfig()
    assert config.kafka.topic_pattern is None
    assert config.kafka.topic_formats == {}
    assert config.kafka.security_protocol == "PLAINTEXT"
    assert config.kafka.sasl_password is None
    assert config.dead_letter.topic == "monitor-dead-letter"
    assert config.detector.forecaster.seasonality == 0
    assert config.detector.sensitivity == 0.67
    assert config.streams.overrides == ()
    assert config.logging.level == "INFO"


@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: s.__name__)
def test_every_section_is_valid_empty(section: type[pydantic.BaseModel]) -> None:
    assert section() == section()


def test_only_override_match_is_required() -> None:
    sections: list[type[pydantic.BaseModel]] = [*SECTIONS, StreamOverride]
    required = [
        f"{section.__name__}.{name}"
        for section in sections
        for name, field in section.model_fields.items()
        if field.is_required()
    ]
    assert required == ["StreamOverride.match"]


# --- strictness --------------------------------------------------------------------------------


@pytest.mark.parametrize("section", [*SECTIONS, StreamOverride], ids=lambda s: s.__name__)
def test_sections_forbid_unknown_keys_and_are_frozen(section: type[pydantic.BaseModel]) -> None:
    config = section.model_config
    assert config.get("extra") == "forbid"
    assert config.get("frozen") is True
    assert config.get("strict") is True


def test_unknown_key_is_rejected() -> None:
    error = _error(KafkaConfig, grup_id="x")
    assert error.errors()[0]["type"] == "extra_forbidden"
    assert error.errors()[0]["loc"] == ("grup_id",)


@pytest.mark.parametrize(
    ("model", "kwargs", "error_type"),
    [
        (MetricsConfig, {"port": "9108"}, "int_type"),
        (MetricsConfig, {"port": 9108.0}, "int_type"),
        (MetricsConfig, {"port": True}, "int_type"),
        (KafkaConfig, {"group_id": 7}, "string_type"),
        (KafkaConfig, {"group_id": ["a"]}, "string_type"),
        (KafkaConfig, {"topics": "metrics"}, "tuple_type"),
        (KafkaConfig, {"create_topics": "yes"}, "bool_type"),
        (KafkaConfig, {"create_topics": 1}, "bool_type"),
        (KafkaConfig, {"format": "avro"}, "literal_error"),
        (KafkaConfig, {"topic_formats": {"t": "json"}}, "literal_error"),
        (KafkaConfig, {"security_protocol": "TLS"}, "literal_error"),
        (KafkaConfig, {"sasl_mechanism": "GSSAPI"}, "literal_error"),
        (LoggingConfig, {"level": "info"}, "literal_error"),
        (DetectorConfig, {"sensitivity": "0.5"}, "float_type"),
    ],
)
def test_wrong_types_are_rejected(
    model: type[pydantic.BaseModel], kwargs: dict[str, Any], error_type: str
) -> None:
    assert _error(model, **kwargs).errors()[0]["type"] == error_type


def test_int_is_accepted_for_float() -> None:
    assert DetectorConfig(sensitivity=1).sensitivity == 1.0
    assert WeightsConfig(forecast=1, rolling=0, hst=0).forecast == 1.0


def test_frozen_assignment_raises() -> None:
    config = MonitorConfig()
    with pytest.raises(pydantic.ValidationError):
        config.metrics.port = 1  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        config.events = EventsConfig(topic="x")  # type: ignore[misc]
    assert MonitorConfig().metrics.port == 9108


# --- bounds ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "field", "good", "bad"),
    [
        (MetricsConfig, "port", [0, 1, 65_535], [-1, 65_536]),
        (KafkaConfig, "session_timeout_ms", [6_000, 300_000], [999, 300_001]),
        (KafkaConfig, "heartbeat_interval_ms", [100, 3_333], [99, 60_001]),
        (KafkaConfig, "max_poll_records", [1, 1_000_000], [0, 1_000_001]),
        (KafkaConfig, "poll_timeout_ms", [1, 60_000], [0, 60_001]),
        (KafkaConfig, "max_record_bytes", [64], [63]),
        (KafkaConfig, "bootstrap_servers", ["h:1"], [""]),
        (KafkaConfig, "group_id", ["g"], [""]),
        (EventsConfig, "topic", ["t"], [""]),
        (EventsConfig, "partitions", [1], [0]),
        (DeadLetterConfig, "partitions", [1], [0]),
        (ForecasterConfig, "alpha", [1e-9, 1.0], [0.0, 1.01]),
        (ForecasterConfig, "beta", [0.0, 1.0], [-0.01, 1.01]),
        (ForecasterConfig, "gamma", [0.0, 1.0], [-0.01, 1.01]),
        (ForecasterConfig, "seasonality", [0, 2, 10_080], [-1, 10_081]),
        (HalfSpaceTreesConfig, "n_trees", [1, 64], [0, 65]),
        (HalfSpaceTreesConfig, "height", [1, 12], [0, 13]),
        (HalfSpaceTreesConfig, "window_size", [10, 65_535], [9, 65_536]),
        (WeightsConfig, "forecast", [0.0, 5.0], [-0.1]),
        (ThresholdConfig, "tail_quantile", [0.5, 0.999], [0.49, 1.0]),
        (ThresholdConfig, "window", [2], [1]),
        (ThresholdConfig, "short_window", [1], [0]),
        (ThresholdConfig, "guard_quantile", [0.51, 0.9999], [0.5, 1.0]),
        (ThresholdConfig, "guard_step", [1e-6, 0.5], [0.0, 0.51]),
        (ThresholdConfig, "critical", [1e-6, 1.0], [0.0, 1.01]),
        (DetectorConfig, "warmup", [0], [-1]),
        (DetectorConfig, "sensitivity", [0.0, 1.0], [-0.01, 1.01, float("nan")]),
        (DetectorConfig, "rolling_window", [2, 4096], [1, 4097]),
        (DetectorConfig, "ew_fading", [1e-6, 1.0], [0.0, 1.01]),
        (DetectorConfig, "interval_z", [0.1], [0.0]),
        (StreamsConfig, "max_streams", [1], [0]),
        (StreamsConfig, "max_future_seconds", [0.0], [-1.0]),
    ],
)
def test_bounds(
    model: type[pydantic.BaseModel], field: str, good: list[Any], bad: list[Any]
) -> None:
    for value in good:
        assert getattr(model(**{field: value}), field) == value
    for value in bad:
        errors = _error(model, **{field: value}).errors()
        assert [e["loc"] for e in errors] == [(field,)], value


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        ("seasonality", [None, 0, 2, 10_080], [-1, 10_081]),
        ("sensitivity", [None, 0.0, 1.0], [-0.1, 1.5]),
        ("warmup", [None, 0, 10], [-1]),
    ],
)
def test_override_bounds(field: str, good: list[Any], bad: list[Any]) -> None:
    for value in good:
        assert getattr(StreamOverride(match="*", **{field: value}), field) == value
    for value in bad:
        assert _error(StreamOverride, match="*", **{field: value}).errors()[0]["loc"] == (field,)


def test_override_match_is_required_and_non_empty() -> None:
    assert _error(StreamOverride).errors()[0]["type"] == "missing"
    assert _error(StreamOverride, match="").errors()[0]["type"] == "string_too_short"
    assert StreamOverride(match="web-*").disabled is False


# --- cross-field rules -------------------------------------------------------------------------


def test_topics_or_pattern_needed() -> None:
    message = str(_error(KafkaConfig, topics=()))
    assert "give at least one topic in 'topics' or a 'topic_pattern'" in message
    assert KafkaConfig(topics=(), topic_pattern="^metrics-.*").topics == ()
    # A pattern alone is enough; topics are then ignored but still allowed.
    assert KafkaConfig(topics=("a",), topic_pattern="b").topics == ("a",)


@pytest.mark.parametrize("pattern", ["[", "(a|b", "*x", "a{2,1}", "(?P<x>a)(?P<x>b)"])
def test_invalid_topic_pattern(pattern: str) -> None:
    errors = _error(KafkaConfig, topic_pattern=pattern).errors()
    assert errors[0]["loc"] == ("topic_pattern",)
    assert "not a valid regular expression" in errors[0]["msg"]


@pytest.mark.parametrize("pattern", ["", ".*", r"^metrics\.[a-z]+$", "a|b"])
def test_valid_topic_pattern(pattern: str) -> None:
    assert KafkaConfig(topic_pattern=pattern).topic_pattern == pattern


@pytest.mark.parametrize(
    ("session", "heartbeat", "ok"),
    [
        (10_000, 2_000, True),
        (9_000, 3_000, True),
        (9_000, 3_001, False),
        (6_000, 2_001, False),
        (1_000, 333, True),
        (1_000, 334, False),
        (300_000, 60_000, True),
    ],
)
def test_heartbeat_at_most_a_third_of_session(session: int, heartbeat: int, ok: bool) -> None:
    kwargs: dict[str, Any] = {"session_timeout_ms": session, "heartbeat_interval_ms": heartbeat}
    if ok:
        KafkaConfig(**kwargs)
    else:
        assert "at most a third of session_timeout_ms" in str(_error(KafkaConfig, **kwargs))


def test_weights_need_one_positive() -> None:
    assert "at least one detector weight must be positive" in str(
        _error(WeightsConfig, forecast=0.0, rolling=0.0, hst=0.0, level=0.0, season=0.0)
    )
    assert WeightsConfig(forecast=0.0, rolling=0.0, hst=0.01, level=0.0, season=0.0).hst == 0.01


def _with(
    seasonality: int = 0, gamma: float = 0.1, overrides: tuple[StreamOverride, ...] = ()
) -> MonitorConfig:
    return MonitorConfig(
        detector=DetectorConfig(
            forecaster=ForecasterConfig(seasonality=seasonality, gamma=gamma),
        ),
        streams=StreamsConfig(overrides=overrides),
    )


def test_seasonality_edge_cases() -> None:
    assert _with(seasonality=0, gamma=0.0).detector.forecaster.gamma == 0.0
    assert _with(seasonality=2).detector.forecaster.seasonality == 2
    assert _with(seasonality=10_080, gamma=1.0).detector.forecaster.seasonality == 10_080
    with pytest.raises(pydantic.ValidationError, match="a seasonality of 1 is not a season"):
        _with(seasonality=1)
    with pytest.raises(pydantic.ValidationError, match="gamma must be > 0"):
        _with(seasonality=24, gamma=0.0)


def test_override_seasonality_edge_cases() -> None:
    season = (StreamOverride(match="a*", seasonality=24),)
    assert _with(overrides=season).streams.overrides == season
    with pytest.raises(pydantic.ValidationError, match="gamma must be > 0"):
        _with(gamma=0.0, overrides=season)
    with pytest.raises(pydantic.ValidationError, match="a seasonality of 1 is not a season"):
        _with(overrides=(StreamOverride(match="a*", seasonality=1),))
    # An override of 0 (no season) needs no gamma.
    _with(gamma=0.0, overrides=(StreamOverride(match="a*", seasonality=0),))


def test_monitor_config_validates_from_json_like_data() -> None:
    data = {
        "kafka": {"topics": ["a", "b"], "topic_formats": {"a": "telegraf"}},
        "metrics": {"stream_labels": ["host"]},
        "streams": {"overrides": [{"match": "x*", "warmup": 3}]},
    }
    config = MonitorConfig.model_validate_json(json.dumps(data))
    assert config.kafka.topics == ("a", "b")
    assert config.metrics.stream_labels == ("host",)
    assert config.streams.overrides[0].warmup == 3


def test_password_is_excluded_from_repr() -> None:
    kafka = KafkaConfig(sasl_password="p@ss-word-123")
    assert "p@ss-word-123" not in repr(kafka)
    assert "p@ss-word-123" not in repr(MonitorConfig(kafka=kafka))
    assert kafka.sasl_password == "p@ss-word-123"
