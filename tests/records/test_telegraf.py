from __future__ import annotations

import json
from typing import Any

import pytest

from monitor.records import Point, RecordRejected, decode_telegraf

TAGS = (("cpu", "cpu-total"), ("host", "h"))


def enc(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def metric(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "fields": {"usage_idle": 99.1},
        "name": "cpu",
        "tags": {"cpu": "cpu-total", "host": "h"},
        "timestamp": 1458229140,
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


def reject(payload: bytes) -> RecordRejected:
    with pytest.raises(RecordRejected) as info:
        decode_telegraf(payload)
    return info.value


def test_the_telegraf_documentation_example() -> None:
    payload = (
        b'{"fields": {"usage_idle": 99.1, "x": "str", "up": true}, "name": "cpu",'
        b' "tags": {"cpu": "cpu-total", "host": "h"}, "timestamp": 1458229140}'
    )
    assert decode_telegraf(payload) == [Point("cpu_usage_idle", TAGS, 1458229140.0, 99.1)]


def test_one_point_per_numeric_field_in_record_order() -> None:
    fields = {"z": 1, "s": "x", "a": 2.5, "b": True, "n": None, "l": [1], "o": {"x": 1}, "m": -3}
    assert decode_telegraf(enc(metric(fields=fields))) == [
        Point("cpu_z", TAGS, 1458229140.0, 1.0),
        Point("cpu_a", TAGS, 1458229140.0, 2.5),
        Point("cpu_m", TAGS, 1458229140.0, -3.0),
    ]


def test_tag_keys_are_renamed_like_telegrafs_prometheus_serializer() -> None:
    points = decode_telegraf(enc(metric(tags={"k8s.pod-name": "p-1", "2xx": "a", "host": "h"})))
    assert points[0].labels == (("_2xx", "a"), ("host", "h"), ("k8s_pod_name", "p-1"))
    assert points[0].key == "cpu_usage_idle{_2xx=a,host=h,k8s_pod_name=p-1}"


def test_tags_are_optional() -> None:
    assert decode_telegraf(enc(metric(tags=...))) == [
        Point("cpu_usage_idle", (), 1458229140.0, 99.1)
    ]
    assert decode_telegraf(enc(metric(tags={}))) == [
        Point("cpu_usage_idle", (), 1458229140.0, 99.1)
    ]


def test_unknown_members_are_ignored() -> None:
    assert decode_telegraf(enc(metric(extra={"a": 1}))) == [
        Point("cpu_usage_idle", TAGS, 1458229140.0, 99.1)
    ]


@pytest.mark.parametrize(
    "timestamp",
    [1458229140, 1458229140000, 1458229140000000, 1458229140000000000, "2016-03-17T15:39:00Z"],
)
def test_timestamp_units(timestamp: object) -> None:
    [point] = decode_telegraf(enc(metric(timestamp=timestamp)))
    assert point.ts == 1458229140.0


def test_big_unsigned_field() -> None:
    [point] = decode_telegraf(enc(metric(fields={"bytes": 2**64 - 1})))
    assert point.value == float(2**64 - 1)


def test_batch() -> None:
    payload = enc(
        {
            "metrics": [
                metric(fields={"usage_idle": 99.1, "usage_user": 0.5}),
                metric(name="mem", fields={"used": 10, "ok": True}, tags={"host": "h"}),
            ]
        }
    )
    assert decode_telegraf(payload) == [
        Point("cpu_usage_idle", TAGS, 1458229140.0, 99.1),
        Point("cpu_usage_user", TAGS, 1458229140.0, 0.5),
        Point("mem_used", (("host", "h"),), 1458229140.0, 10.0),
    ]


def test_batch_of_one() -> None:
    assert decode_telegraf(enc({"metrics": [metric()]})) == decode_telegraf(enc(metric()))


def test_one_bad_metric_rejects_the_batch_and_is_located() -> None:
    payload = enc({"metrics": [metric(), metric(), metric(fields={"s": "x"})]})
    err = reject(payload)
    assert err.reason == "no_numeric_fields"
    assert err.detail == "metrics[2]: metric 'cpu' has no numeric field"


@pytest.mark.parametrize(
    ("metrics", "reason"),
    [
        ([], "bad_batch"),
        ({}, "bad_batch"),
        ("x", "bad_batch"),
        (None, "bad_batch"),
        ([1], "bad_batch"),
        ([None], "bad_batch"),
        ([[]], "bad_batch"),
        ([{}], "missing_field"),
    ],
)
def test_bad_batches(metrics: object, reason: str) -> None:
    assert reject(enc({"metrics": metrics})).reason == reason


def test_no_numeric_fields() -> None:
    err = reject(enc(metric(fields={"state": "up", "ok": True})))
    assert err.reason == "no_numeric_fields"
    assert reject(enc(metric(fields={}))).reason == "no_numeric_fields"


@pytest.mark.parametrize("fields", [[], "x", 1, None])
def test_fields_not_an_object(fields: object) -> None:
    assert reject(enc(metric(fields=fields))).reason == "bad_value"


@pytest.mark.parametrize("value", [1e301, -1e308])
def test_huge_numeric_field_rejects_the_record(value: float) -> None:
    err = reject(enc(metric(fields={"ok": 1.0, "huge": value})))
    assert err.reason == "bad_value"
    assert err.detail.startswith("field 'huge': ")


def test_integer_beyond_float_range_is_not_json() -> None:
    # orjson refuses number literals that overflow a double.
    payload = enc(metric(fields={"big": 1})).replace(b'"big": 1', b'"big": 1e400')
    assert reject(payload).reason == "not_json"


@pytest.mark.parametrize("missing", ["name", "fields", "timestamp"])
def test_missing_field(missing: str) -> None:
    assert reject(enc(metric(**{missing: ...}))).reason == "missing_field"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"name": ""}, "bad_name"),
        ({"name": 1}, "bad_name"),
        ({"name": "c\npu"}, "bad_name"),
        ({"fields": {"a\x00": 1}}, "bad_name"),
        ({"name": "n" * 251, "fields": {"field": 1}}, "bad_name"),
        ({"tags": {"a-b": "x", "a.b": "y"}}, "bad_labels"),  # both become a_b
        ({"tags": {"__a": "x"}}, "bad_labels"),
        ({"tags": {"": "x"}}, "bad_labels"),
        ({"tags": {"a": 1}}, "bad_labels"),
        ({"tags": ["a"]}, "bad_labels"),
        ({"timestamp": "now"}, "bad_timestamp"),
        ({"timestamp": -5}, "bad_timestamp"),
        ({"timestamp": True}, "bad_timestamp"),
    ],
)
def test_invalid_parts(change: dict[str, Any], reason: str) -> None:
    assert reject(enc(metric(**change))).reason == reason


def test_field_and_measurement_may_hold_dots_and_dashes() -> None:
    [point] = decode_telegraf(enc(metric(name="net.if", fields={"rx-bytes.total": 3})))
    assert point.name == "net.if_rx-bytes.total"
