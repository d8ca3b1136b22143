from __future__ import annotations

import json
from typing import Any

import pytest

from monitor.records import (
    REASONS,
    SKIP_REASONS,
    Point,
    RecordRejected,
    RecordSkipped,
    decode_prometheus_adapter,
)

T = 1714564800.0  # 2024-05-01T12:00:00Z


def enc(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def record(**fields: Any) -> bytes:
    base: dict[str, Any] = {
        "timestamp": "2024-05-01T12:00:00Z",
        "value": "42",
        "name": "up",
        "labels": {"__name__": "up", "job": "node"},
    }
    base.update(fields)
    return enc({k: v for k, v in base.items() if v is not ...})


def reject(payload: bytes) -> RecordRejected:
    with pytest.raises(RecordRejected) as info:
        decode_prometheus_adapter(payload)
    return info.value


def test_the_adapter_readme_example() -> None:
    payload = b"""{
      "timestamp": "1970-01-01T00:00:00Z",
      "value": "9876543210",
      "name": "up",

      "labels": {
        "__name__": "up",
        "label1": "value1",
        "label2": "value2"
      }
    }"""
    assert decode_prometheus_adapter(payload) == [
        Point("up", (("label1", "value1"), ("label2", "value2")), 0.0, 9876543210.0)
    ]


def test_the_adapter_serializer_test_output() -> None:
    # The serializer test of the adapter: value first, compact.
    payload = (
        b'{"value":"456","timestamp":"1970-01-01T00:00:00Z","name":"foo",'
        b'"labels":{"__name__":"foo","labelfoo":"label-bar"}}'
    )
    assert decode_prometheus_adapter(payload) == [
        Point("foo", (("labelfoo", "label-bar"),), 0.0, 456.0)
    ]
    payload = payload.replace(b'"456"', b'"+Inf"')
    assert reject(payload).reason == "bad_value"


def test_name_label_is_dropped() -> None:
    [point] = decode_prometheus_adapter(record())
    assert point == Point("up", (("job", "node"),), T, 42.0)


def test_labels_without_name_label_and_without_labels() -> None:
    [point] = decode_prometheus_adapter(record(labels={"job": "node"}))
    assert point.labels == (("job", "node"),)
    [point] = decode_prometheus_adapter(record(labels=...))
    assert point.labels == ()
    [point] = decode_prometheus_adapter(record(labels={"__name__": "up"}))
    assert point.labels == ()


def test_unknown_fields_are_ignored() -> None:
    [point] = decode_prometheus_adapter(record(extra=[1, {}], __value__="x", tenant=None))
    assert point == Point("up", (("job", "node"),), T, 42.0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("-0", -0.0),
        ("1.5", 1.5),
        ("-2.25", -2.25),
        ("+3", 3.0),
        ("1e+06", 1e6),
        ("1E-3", 1e-3),
        (".5", 0.5),
        ("5.", 5.0),
        ("9876543210", 9876543210.0),
        ("1" + "0" * 300, 1e300),  # FormatFloat('f', -1) of 1e300
        (7, 7.0),  # a JSON number is tolerated
        (0.5, 0.5),
    ],
)
def test_values(value: object, expected: float) -> None:
    [point] = decode_prometheus_adapter(record(value=value))
    assert type(point.value) is float
    assert point.value == expected


@pytest.mark.parametrize(
    "value",
    ["abc", "nan", "+Inf", "-Inf", "inf", "", " 1", "1_0", "0x1", "1e301", "\uff11", True, None],
)
def test_bad_values(value: object) -> None:
    assert reject(record(value=value)).reason == "bad_value"


def test_non_finite_detail_quotes_the_string() -> None:
    assert reject(record(value="+Inf")).detail == (
        "value must be finite with magnitude at most 1e+300, got '+Inf'"
    )


def test_a_nan_sample_is_skipped_not_rejected() -> None:
    # Prometheus sends NaN as a staleness marker when a series disappears; the
    # adapter writes it with Go's strconv.FormatFloat, as "NaN".
    with pytest.raises(RecordSkipped) as info:
        decode_prometheus_adapter(record(value="NaN"))
    assert info.value.reason == "nan" and info.value.reason in SKIP_REASONS
    assert info.value.reason not in REASONS
    assert isinstance(info.value, RecordRejected)  # callers that only know rejections


@pytest.mark.parametrize("missing", ["name", "timestamp", "value"])
def test_missing_field(missing: str) -> None:
    err = reject(record(**{missing: ...}))
    assert err.reason == "missing_field"
    assert missing in err.detail


def test_timestamps() -> None:
    [point] = decode_prometheus_adapter(record(timestamp="2024-05-01T14:00:00+02:00"))
    assert point.ts == T
    [point] = decode_prometheus_adapter(record(timestamp=int(T * 1000)))  # epoch ms tolerated
    assert point.ts == T
    assert reject(record(timestamp="0")).reason == "bad_timestamp"
    assert reject(record(timestamp="1969-12-31T23:59:59Z")).reason == "bad_timestamp"


def test_name_label_must_match_name() -> None:
    err = reject(record(labels={"__name__": "down"}))
    assert err.reason == "bad_labels"
    assert err.detail == "labels: __name__ 'down' differs from name 'up'"


@pytest.mark.parametrize(
    "labels",
    [
        {"__name__": "up", "__meta": "x"},
        {"__name__": 1},
        {"__name__": "up", "a-b": "x"},
        {"__name__": "up", "a": 1},
        ["__name__", "up"],
    ],
)
def test_bad_labels(labels: object) -> None:
    assert reject(record(labels=labels)).reason == "bad_labels"


def test_32_labels_besides_name_are_allowed() -> None:
    labels = {"__name__": "up", **{f"l{i:02d}": "v" for i in range(32)}}
    [point] = decode_prometheus_adapter(record(labels=labels))
    assert len(point.labels) == 32
    assert reject(record(labels={**labels, "l99": "v"})).reason == "bad_labels"


@pytest.mark.parametrize("name", ["", 5, None, "a\nb", "x" * 257])
def test_bad_name(name: object) -> None:
    assert reject(record(name=name, labels={"job": "node"})).reason == "bad_name"
