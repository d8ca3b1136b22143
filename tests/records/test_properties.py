"""Property tests: no input makes a decoder raise anything but RecordRejected,
and valid records round-trip exactly."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.records import (
    DECODERS,
    FORMATS,
    REASONS,
    SKIP_REASONS,
    Point,
    RecordRejected,
    RecordSkipped,
    decode_native,
    decode_prometheus_adapter,
    decode_telegraf,
)
from monitor.records.timestamps import MAX_TS

fmts = st.sampled_from(FORMATS)


def check_outcome(fmt: str, payload: bytes) -> list[Point] | None:
    """Decode; a rejection must carry a known reason; accepted points must be valid."""
    try:
        points = DECODERS[fmt](payload)
    except RecordSkipped as err:
        assert err.reason in SKIP_REASONS
        return None
    except RecordRejected as err:
        assert err.reason in REASONS
        assert err.detail
        return None
    assert isinstance(points, list) and points
    for p in points:
        assert type(p) is Point
        assert type(p.name) is str and 0 < len(p.name) <= 256
        assert type(p.ts) is float and 0 <= p.ts < MAX_TS
        assert type(p.value) is float and math.isfinite(p.value) and abs(p.value) <= 1e300
        assert isinstance(p.labels, tuple) and len(p.labels) <= 32
        assert list(p.labels) == sorted(p.labels)
        for k, v in p.labels:
            assert type(k) is str and type(v) is str and not k.startswith("__")
        p.key.encode("utf-8")  # everything is encodable for exposition
    return points


# --- arbitrary input never raises anything but RecordRejected ------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # includes NaN and +-inf: json.dumps writes NaN/Infinity tokens
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
# Objects with the members the decoders look for, holding anything.
known_keys = st.sampled_from(
    [
        "stream",
        "ts",
        "value",
        "labels",
        "name",
        "timestamp",
        "tags",
        "fields",
        "metrics",
        "__name__",
        "extra",
    ]
)
shaped_objects = st.recursive(
    st.dictionaries(known_keys, json_values, max_size=6),
    lambda children: st.dictionaries(
        known_keys, children | st.lists(children, max_size=3) | json_values, max_size=6
    ),
    max_leaves=10,
)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, allow_nan=True).encode("utf-8", "surrogatepass")


@settings(max_examples=300)
@given(fmt=fmts, payload=st.binary(max_size=200))
def test_arbitrary_bytes(fmt: str, payload: bytes) -> None:
    check_outcome(fmt, payload)


@given(fmt=fmts, obj=json_values)
def test_arbitrary_json(fmt: str, obj: Any) -> None:
    check_outcome(fmt, dumps(obj))


@settings(max_examples=300)
@given(fmt=fmts, obj=shaped_objects)
def test_arbitrary_objects_with_the_expected_members(fmt: str, obj: Any) -> None:
    check_outcome(fmt, dumps(obj))
    check_outcome(
        fmt, json.dumps(obj, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")
    )


@given(fmt=fmts, obj=shaped_objects, cut=st.integers(min_value=0, max_value=500))
def test_truncated_and_corrupted_json(fmt: str, obj: Any, cut: int) -> None:
    payload = dumps(obj)
    check_outcome(fmt, payload[:cut])
    if payload:
        i = cut % len(payload)
        check_outcome(fmt, payload[:i] + b"\xff" + payload[i + 1 :])


@given(
    fmt=fmts,
    name=st.text(max_size=300),
    labels=st.dictionaries(st.text(max_size=12), st.text(max_size=12), max_size=40),
    ts=json_scalars,
    value=json_scalars,
)
def test_near_valid_records(
    fmt: str, name: str, labels: dict[str, str], ts: Any, value: Any
) -> None:
    if fmt == "native":
        obj: dict[str, Any] = {"stream": name, "ts": ts, "value": value, "labels": labels}
    elif fmt == "telegraf":
        obj = {"name": name, "timestamp": ts, "fields": {"f": value}, "tags": labels}
    else:
        obj = {"name": name, "timestamp": ts, "value": value, "labels": labels}
    check_outcome(fmt, dumps(obj))


# --- valid records round-trip ---------------------------------------------------------

# Printable names: anything but control characters and surrogates.
names = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=256)
label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,40}", fullmatch=True).filter(
    lambda s: not s.startswith("__")
)
label_values = st.text(
    st.characters(exclude_categories=("Cc", "Cs")) | st.just("\n"), max_size=1024
)
labels_st = st.dictionaries(label_names, label_values, max_size=32)
finite_values = st.floats(
    min_value=-1e300, max_value=1e300, allow_nan=False, allow_infinity=False
) | st.integers(min_value=-(2**63), max_value=2**64 - 1)
epoch_seconds = st.floats(min_value=0, max_value=1e11, exclude_max=True) | st.integers(
    min_value=0, max_value=10**11 - 1
)
offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)
datetimes = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets
)


def expected_labels(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


@given(name=names, labels=labels_st, ts=epoch_seconds, value=finite_values)
def test_native_round_trip(name: str, labels: dict[str, str], ts: float, value: float) -> None:
    payload = dumps({"stream": name, "ts": ts, "value": value, "labels": labels})
    assert decode_native(payload) == [Point(name, expected_labels(labels), float(ts), float(value))]
    assert check_outcome("native", payload)


@given(name=names, dt=datetimes, value=finite_values)
def test_native_round_trip_iso_timestamps(name: str, dt: datetime, value: float) -> None:
    payload = dumps({"stream": name, "ts": dt.isoformat(), "value": value})
    assert decode_native(payload) == [Point(name, (), dt.timestamp(), float(value))]


@given(
    ms=st.integers(min_value=10**11, max_value=10**14 - 1),
    us=st.integers(min_value=10**14, max_value=10**17 - 1),
    ns=st.integers(min_value=10**17, max_value=2**64 - 1),
)
def test_native_round_trip_epoch_units(ms: int, us: int, ns: int) -> None:
    for raw, expected in [(ms, ms / 10**3), (us, us / 10**6), (ns, ns / 10**9)]:
        [point] = decode_native(dumps({"stream": "s", "ts": raw, "value": 1}))
        assert point.ts == expected


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(name=names, labels=labels_st, dt=datetimes, value=finite_values)
def test_prometheus_adapter_round_trip(
    name: str, labels: dict[str, str], dt: datetime, value: float
) -> None:
    utc = dt.astimezone(UTC).replace(microsecond=0)  # the adapter writes whole seconds
    obj = {
        "timestamp": utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "value": repr(float(value)),
        "name": name,
        "labels": {"__name__": name, **labels},
    }
    assert decode_prometheus_adapter(dumps(obj)) == [
        Point(name, expected_labels(labels), utc.timestamp(), float(value))
    ]


telegraf_keys = st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=100)
non_numeric = st.none() | st.booleans() | st.text(max_size=10)


@st.composite
def telegraf_metrics(draw: st.DrawFn) -> tuple[dict[str, Any], list[Point]]:
    name = draw(st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=100))
    tags = draw(labels_st)
    ts = draw(epoch_seconds)
    numeric = draw(st.dictionaries(telegraf_keys, finite_values, min_size=1, max_size=5))
    other = draw(st.dictionaries(telegraf_keys, non_numeric, max_size=5))
    fields = {**other, **numeric}
    labels = expected_labels(tags)
    points = [
        Point(f"{name}_{k}", labels, float(ts), float(v))
        for k, v in fields.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    return {"fields": fields, "name": name, "tags": tags, "timestamp": ts}, points


@given(metric=telegraf_metrics())
def test_telegraf_round_trip(metric: tuple[dict[str, Any], list[Point]]) -> None:
    obj, points = metric
    assert decode_telegraf(dumps(obj)) == points


@given(metrics=st.lists(telegraf_metrics(), min_size=1, max_size=4))
def test_telegraf_batch_round_trip(metrics: list[tuple[dict[str, Any], list[Point]]]) -> None:
    payload = dumps({"metrics": [obj for obj, _ in metrics]})
    assert decode_telegraf(payload) == [p for _, points in metrics for p in points]


# --- the batch decoder's inline native path agrees with decode_native -----------------

native_like = st.fixed_dictionaries(
    {
        "stream": st.sampled_from(["cpu", "mem"]) | json_scalars,
        "ts": st.sampled_from([1.7e9, 1_700_000_000, 1.7e12]) | json_scalars,
        "value": st.floats() | st.integers() | json_scalars,
    },
    optional={
        "labels": st.sampled_from([{"host": "a"}, {"host": "a", "dc": "x"}, None]) | json_values,
        "extra": json_scalars,
    },
)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=200)
@given(objs=st.lists(native_like, max_size=12))
def test_batches_of_native_records_decode_as_each_record_does_alone(objs):
    from tests.records.test_batch import assert_native_batch_matches_reference

    values = [dumps(obj) for obj in objs]
    # Every record twice: the second copy meets the identities the first left.
    assert_native_batch_matches_reference(values + values)


known_like = st.fixed_dictionaries(
    {
        "stream": st.sampled_from(["cpu", "mem"]),
        "ts": st.sampled_from([1.7e9, 1_700_000_000, 1.7e12, -1, 0, True, 2e9, 9.9e10, 1e11])
        | json_scalars,
        "value": st.sampled_from([1e300, -1e300, 1e301, 2**70, -(2**63), False])
        | st.floats(allow_nan=False)
        | st.integers()
        | json_scalars,
    },
    optional={
        "labels": st.sampled_from([{"host": "a"}, {"host": "a", "dc": "x"}, None, [], "a"]),
        "extra": json_scalars,
    },
)
KNOWN = [
    dumps({"stream": stream, "ts": 1.7e9, "value": 1, **extra})
    for stream in ("cpu", "mem")
    for extra in ({}, {"labels": {"host": "a"}}, {"labels": {"host": "a", "dc": "x"}})
]


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(objs=st.lists(known_like, max_size=8))
def test_batches_of_known_streams_decode_as_each_record_does_alone(objs):
    """Every stream is known, so a partition is taken at once unless a record breaks a
    rule, and then record by record: the same either way."""
    from tests.records.test_batch import assert_native_batch_matches_reference

    assert_native_batch_matches_reference([dumps(obj) for obj in objs], known=KNOWN)
