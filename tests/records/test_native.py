from __future__ import annotations

import json
from typing import Any

import pytest

from monitor.records import Point, RecordRejected, decode_native

T = 1714564800.0  # 2024-05-01T12:00:00Z


def enc(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def record(**fields: Any) -> bytes:
    base: dict[str, Any] = {"stream": "cpu.host-1", "ts": 1700000000.0, "value": 0.93}
    base.update(fields)
    return enc({k: v for k, v in base.items() if v is not ...})


def reject(payload: bytes) -> RecordRejected:
    with pytest.raises(RecordRejected) as info:
        decode_native(payload)
    return info.value


# --- happy paths ---------------------------------------------------------------------


def test_the_documented_example() -> None:
    payload = (
        b'{"stream": "cpu.host-1", "ts": 1700000000.0, "value": 0.93, "labels": {"host": "host-1"}}'
    )
    assert decode_native(payload) == [
        Point("cpu.host-1", (("host", "host-1"),), 1700000000.0, 0.93)
    ]


def test_labels_are_optional() -> None:
    assert decode_native(record()) == [Point("cpu.host-1", (), 1700000000.0, 0.93)]


def test_null_labels_are_no_labels() -> None:
    assert decode_native(record(labels=None)) == [Point("cpu.host-1", (), 1700000000.0, 0.93)]


def test_labels_are_sorted_by_name() -> None:
    [point] = decode_native(record(labels={"z": "1", "a": "2", "m": "3", "A": "4", "_": "5"}))
    assert point.labels == (("A", "4"), ("_", "5"), ("a", "2"), ("m", "3"), ("z", "1"))
    assert point.key == "cpu.host-1{A=4,_=5,a=2,m=3,z=1}"


def test_iso_timestamp() -> None:
    [point] = decode_native(record(ts="2024-05-01T12:00:00Z"))
    assert point.ts == T


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (1700000000, 1700000000.0),
        (1700000000500, 1700000000.5),
        (1700000000500000, 1700000000.5),
        (1700000000500000000, 1700000000.5),
        ("2024-05-01T14:00:00+02:00", T),
        ("2024-05-01 12:00:00", T),
    ],
)
def test_timestamp_forms(ts: object, expected: float) -> None:
    [point] = decode_native(record(ts=ts))
    assert point.ts == expected


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0.0), (-3, -3.0), (1e300, 1e300), (-1e300, -1e300), (2.5, 2.5)]
)
def test_values_become_floats(value: float, expected: float) -> None:
    [point] = decode_native(record(value=value))
    assert type(point.value) is float
    assert point.value == expected


def test_label_values_may_hold_exposition_syntax() -> None:
    value = 'a"b}c{d\ne\\f'
    [point] = decode_native(record(labels={"x": value}))
    assert point.labels == (("x", value),)
    assert point.key == 'cpu.host-1{x=a\\"b\\}c{d\\ne\\\\f}'


def test_member_order_does_not_matter() -> None:
    payload = b'{"labels": {"b": "2", "a": "1"}, "value": 1, "ts": 2, "stream": "s"}'
    assert decode_native(payload) == [Point("s", (("a", "1"), ("b", "2")), 2.0, 1.0)]


def test_bytearray_and_memoryview_payloads() -> None:
    payload = record()
    expected = decode_native(payload)
    assert decode_native(bytearray(payload)) == expected  # type: ignore[arg-type]
    assert decode_native(memoryview(payload)) == expected  # type: ignore[arg-type]


# --- rejections ----------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"", None])
def test_empty(payload: bytes) -> None:
    assert reject(payload).reason == "empty"


@pytest.mark.parametrize(
    "payload", [b"{", b"nope", b'{"stream": "\xff"}', b"{'stream': 1}", b'{"value": NaN}']
)
def test_not_json(payload: bytes) -> None:
    assert reject(payload).reason == "not_json"


@pytest.mark.parametrize("payload", [b"[]", b"[{}]", b'"s"', b"1", b"null", b"false"])
def test_not_object(payload: bytes) -> None:
    err = reject(payload)
    assert err.reason == "not_object"
    assert "expected a JSON object" in err.detail


@pytest.mark.parametrize("missing", ["stream", "ts", "value"])
def test_missing_field(missing: str) -> None:
    err = reject(record(**{missing: ...}))
    assert err.reason == "missing_field"
    assert err.detail == f"field {missing!r} is required"


def test_unknown_field_is_named() -> None:
    err = reject(record(unit="s", host="h"))
    assert err.reason == "unknown_field"
    assert err.detail == "unknown field(s) 'host', 'unit'; allowed: labels, stream, ts, value"


@pytest.mark.parametrize(
    "stream", ["", 1, None, True, [], {}, "x" * 257, "a\x00", "a\nb", "\x7f", "\x9f"]
)
def test_bad_name(stream: object) -> None:
    assert reject(record(stream=stream)).reason == "bad_name"


@pytest.mark.parametrize(
    "labels",
    [
        [],
        "host=h",
        1,
        {"a b": "x"},
        {'a"': "x"},
        {"__x": "x"},
        {"1a": "x"},
        {"a": 1},
        {"a": None},
        {"a": "\x00"},
        {"a": "\t"},
        {"a": "x" * 1025},
        {f"l{i}": "v" for i in range(33)},
    ],
)
def test_bad_labels(labels: object) -> None:
    assert reject(record(labels=labels)).reason == "bad_labels"


@pytest.mark.parametrize("ts", ["soon", "1700000000", -1, True, None, [], "10000-01-01T00:00:00Z"])
def test_bad_timestamp(ts: object) -> None:
    assert reject(record(ts=ts)).reason == "bad_timestamp"


@pytest.mark.parametrize("value", ["1", "NaN", True, False, None, [], {}, 1e308, -1e301])
def test_bad_value(value: object) -> None:
    assert reject(record(value=value)).reason == "bad_value"


def test_first_problem_wins_in_documented_order() -> None:
    # unknown_field before missing_field
    assert reject(enc({"stream": "s", "value": 1, "x": 1})).reason == "unknown_field"
    # then name, labels, timestamp, value
    bad: dict[str, Any] = {"stream": "", "labels": [], "ts": None, "value": None}
    assert reject(enc(bad)).reason == "bad_name"
    assert reject(enc({**bad, "stream": "s"})).reason == "bad_labels"
    assert reject(enc({**bad, "stream": "s", "labels": {}})).reason == "bad_timestamp"
    assert reject(enc({**bad, "stream": "s", "labels": {}, "ts": 1})).reason == "bad_value"


def test_rejections_are_monitor_errors() -> None:
    from monitor.exceptions import MonitorError

    assert isinstance(reject(b"x"), MonitorError)
