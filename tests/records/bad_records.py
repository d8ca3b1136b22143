"""A corpus of hostile and malformed records, and of tricky records that are valid.

``BAD_RECORDS`` holds ``(description, format, payload, reason)`` tuples: each
payload must be rejected by the decoder of ``format`` with ``reason``.
``TRICKY_GOOD_RECORDS`` holds ``(description, format, payload, points)`` tuples:
each payload looks suspicious but is valid, and decodes to exactly ``points``.

Both are plain data so other tests (the daemon's integration test) can import
them::

    from tests.records.bad_records import BAD_RECORDS, TRICKY_GOOD_RECORDS
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from monitor.records.base import Point

NATIVE = "native"
ADAPTER = "prometheus-kafka-adapter"
TELEGRAF = "telegraf"


class BadRecord(NamedTuple):
    description: str
    format: str
    payload: bytes
    reason: str


class GoodRecord(NamedTuple):
    description: str
    format: str
    payload: bytes
    points: tuple[Point, ...]


def _dumps(obj: Any) -> bytes:
    # allow_nan: the standard library writes the bare NaN / Infinity tokens.
    return json.dumps(obj, allow_nan=True).encode()


_MISSING = object()


def _with(base: dict[str, Any], **changes: Any) -> bytes:
    record = dict(base)
    for key, value in changes.items():
        if value is _MISSING:
            del record[key]
        else:
            record[key] = value
    return _dumps(record)


_NATIVE_OK: dict[str, Any] = {
    "stream": "cpu.host-1",
    "ts": 1700000000.0,
    "value": 0.93,
    "labels": {"host": "host-1"},
}
_ADAPTER_OK: dict[str, Any] = {
    "timestamp": "2024-05-01T12:00:00Z",
    "value": "42",
    "name": "up",
    "labels": {"__name__": "up", "job": "node"},
}
_TELEGRAF_OK: dict[str, Any] = {
    "fields": {"usage_idle": 99.1},
    "name": "cpu",
    "tags": {"cpu": "cpu-total", "host": "h"},
    "timestamp": 1458229140,
}
_BASES = {NATIVE: _NATIVE_OK, ADAPTER: _ADAPTER_OK, TELEGRAF: _TELEGRAF_OK}
# Which member holds what, per format.
_NAME = {NATIVE: "stream", ADAPTER: "name", TELEGRAF: "name"}
_TS = {NATIVE: "ts", ADAPTER: "timestamp", TELEGRAF: "timestamp"}
_LABELS = {NATIVE: "labels", ADAPTER: "labels", TELEGRAF: "tags"}


def _bad(description: str, fmt: str, payload: bytes, reason: str) -> BadRecord:
    return BadRecord(f"{fmt}: {description}", fmt, payload, reason)


# Telegraf tag keys renamed as Telegraf's Prometheus serializer does, not rejected.
_RENAMED_TAGS = {
    'a"b': "a_b",
    "a}": "a_",
    "a{b": "a_b",
    "a\nb": "a_b",
    'a="x"}': "a__x__",
    'x="1",evil': "x__1__evil",
    "a=b": "a_b",
    "a b": "a_b",
    "a,b": "a_b",
    "a-b": "a_b",
    "a.b": "a_b",
    "a:b": "a_b",
    "1abc": "_1abc",
    "héllo": "h_llo",
    "a\x00": "a_",
}


def _for_all_formats() -> list[BadRecord]:
    """Records every decoder rejects the same way."""
    out: list[BadRecord] = []
    for fmt, base in _BASES.items():
        ok = _dumps(base)
        name, ts, labels = _NAME[fmt], _TS[fmt], _LABELS[fmt]
        out += [
            # --- not JSON, or not an object
            _bad("empty payload", fmt, b"", "empty"),
            _bad("plain text", fmt, b"cpu 0.93 1700000000", "not_json"),
            _bad("whitespace only", fmt, b"  \n", "not_json"),
            _bad("truncated JSON", fmt, ok[:-5], "not_json"),
            _bad("trailing garbage", fmt, ok + b"x", "not_json"),
            _bad("two JSON objects", fmt, ok + ok, "not_json"),
            _bad("single quotes", fmt, ok.replace(b'"', b"'"), "not_json"),
            _bad("invalid UTF-8 byte", fmt, _raw_name(base, name, b"\xff"), "not_json"),
            _bad("overlong UTF-8 encoding", fmt, _raw_name(base, name, b"\xc1\xa8"), "not_json"),
            _bad(
                "UTF-8 encoded surrogate", fmt, _raw_name(base, name, b"\xed\xa0\x80"), "not_json"
            ),
            _bad("truncated UTF-8 sequence", fmt, _raw_name(base, name, b"\xe2\x82"), "not_json"),
            _bad("UTF-16 encoded", fmt, ok.decode().encode("utf-16"), "not_json"),
            _bad("UTF-8 byte order mark", fmt, b"\xef\xbb\xbf" + ok, "not_json"),
            _bad("lone surrogate escape", fmt, _with(base, **{name: "a\ud800"}), "not_json"),
            _bad("deeply nested arrays", fmt, b"[" * 100_000 + b"]" * 100_000, "not_json"),
            _bad(
                "deeply nested objects",
                fmt,
                b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
                "not_json",
            ),
            _bad("JSON array top level", fmt, _dumps([base]), "not_object"),
            _bad("JSON string top level", fmt, b'"cpu"', "not_object"),
            _bad("JSON number top level", fmt, b"0.93", "not_object"),
            _bad("JSON true top level", fmt, b"true", "not_object"),
            _bad("JSON null top level", fmt, b"null", "not_object"),
            _bad("empty object", fmt, b"{}", "missing_field"),
            # --- missing fields
            _bad(f"missing {name!r}", fmt, _with(base, **{name: _MISSING}), "missing_field"),
            _bad(f"missing {ts!r}", fmt, _with(base, **{ts: _MISSING}), "missing_field"),
            # --- the value: JSON has no NaN/Infinity, so those tokens are not JSON
            _bad("value bare NaN token", fmt, _value(fmt, float("nan")), "not_json"),
            _bad("value bare Infinity token", fmt, _value(fmt, float("inf")), "not_json"),
            _bad("value bare -Infinity token", fmt, _value(fmt, float("-inf")), "not_json"),
            _bad("value 1e400 (overflows a double)", fmt, _value_raw(fmt, b"1e400"), "not_json"),
            _bad("value 1e308 (> 1e300)", fmt, _value(fmt, 1e308), "bad_value"),
            _bad("value -1e308 (< -1e300)", fmt, _value(fmt, -1e308), "bad_value"),
            _bad("value 1.0000001e300", fmt, _value(fmt, 1.0000001e300), "bad_value"),
            _bad(
                "value 10**301 as an integer", fmt, _value_raw(fmt, b"1" + b"0" * 301), "bad_value"
            ),
            # --- the name
            _bad("name empty", fmt, _with(base, **{name: ""}), "bad_name"),
            _bad("name a number", fmt, _with(base, **{name: 5}), "bad_name"),
            _bad("name null", fmt, _with(base, **{name: None}), "bad_name"),
            _bad("name an object", fmt, _with(base, **{name: {"a": "b"}}), "bad_name"),
            _bad("name an array", fmt, _with(base, **{name: ["cpu"]}), "bad_name"),
            _bad("name too long (257)", fmt, _with(base, **{name: "n" * 257}), "bad_name"),
            _bad("name with NUL", fmt, _with(base, **{name: "cpu\x00"}), "bad_name"),
            _bad("name with newline", fmt, _with(base, **{name: "cpu\nup 1"}), "bad_name"),
            _bad("name with CR", fmt, _with(base, **{name: "cpu\r"}), "bad_name"),
            _bad("name with tab", fmt, _with(base, **{name: "c\tpu"}), "bad_name"),
            _bad("name with ESC", fmt, _with(base, **{name: "\x1b[31mcpu"}), "bad_name"),
            _bad("name with DEL", fmt, _with(base, **{name: "cpu\x7f"}), "bad_name"),
            _bad("name with C1 control NEL", fmt, _with(base, **{name: "cpu\x85"}), "bad_name"),
            # --- the timestamp
            _bad("timestamp unparsable", fmt, _with(base, **{ts: "yesterday"}), "bad_timestamp"),
            _bad("timestamp empty string", fmt, _with(base, **{ts: ""}), "bad_timestamp"),
            _bad(
                "timestamp numeric string",
                fmt,
                _with(base, **{ts: "1700000000"}),
                "bad_timestamp",
            ),
            _bad(
                "timestamp ISO basic format",
                fmt,
                _with(base, **{ts: "20240501T120000Z"}),
                "bad_timestamp",
            ),
            _bad(
                "timestamp month 13",
                fmt,
                _with(base, **{ts: "2024-13-01T00:00:00Z"}),
                "bad_timestamp",
            ),
            _bad(
                "timestamp leap second",
                fmt,
                _with(base, **{ts: "2016-12-31T23:59:60Z"}),
                "bad_timestamp",
            ),
            _bad(
                "timestamp with padding",
                fmt,
                _with(base, **{ts: " 2024-05-01T12:00:00Z"}),
                "bad_timestamp",
            ),
            _bad("timestamp negative", fmt, _with(base, **{ts: -1}), "bad_timestamp"),
            _bad("timestamp negative float", fmt, _with(base, **{ts: -0.5}), "bad_timestamp"),
            _bad(
                "timestamp before 1970",
                fmt,
                _with(base, **{ts: "1969-12-31T23:59:59Z"}),
                "bad_timestamp",
            ),
            _bad(
                "timestamp year 10000",
                fmt,
                _with(base, **{ts: "10000-01-01T00:00:00Z"}),
                "bad_timestamp",
            ),
            _bad(
                "timestamp year 9999 with an offset that is year 10000 in UTC",
                fmt,
                _with(base, **{ts: "9999-12-31T23:30:00-01:00"}),
                "bad_timestamp",
            ),
            _bad(
                "timestamp year 10000 in nanoseconds",
                fmt,
                _with(base, **{ts: 253402300800 * 10**9}),
                "bad_timestamp",
            ),
            _bad("timestamp 1e300", fmt, _with(base, **{ts: 1e300}), "bad_timestamp"),
            _bad("timestamp true", fmt, _with(base, **{ts: True}), "bad_timestamp"),
            _bad("timestamp null", fmt, _with(base, **{ts: None}), "bad_timestamp"),
            _bad("timestamp an array", fmt, _with(base, **{ts: [1700000000]}), "bad_timestamp"),
            _bad("timestamp an object", fmt, _with(base, **{ts: {"s": 1}}), "bad_timestamp"),
            _bad("timestamp NaN token", fmt, _with(base, **{ts: float("nan")}), "not_json"),
            # --- the labels
            _bad("labels an array", fmt, _with(base, **{labels: [["a", "b"]]}), "bad_labels"),
            _bad("labels a string", fmt, _with(base, **{labels: 'a="b"'}), "bad_labels"),
            _bad("labels a number", fmt, _with(base, **{labels: 1}), "bad_labels"),
            _bad(
                "too many labels (33)",
                fmt,
                _with(base, **{labels: {f"l{i}": "v" for i in range(33)}}),
                "bad_labels",
            ),
            _bad(
                "label value too long (1025)",
                fmt,
                _with(base, **{labels: {"a": "v" * 1025}}),
                "bad_labels",
            ),
            _bad(
                "label name too long (257)",
                fmt,
                _with(base, **{labels: {"a" * 257: "v"}}),
                "bad_labels",
            ),
            _bad("label value a number", fmt, _with(base, **{labels: {"a": 1}}), "bad_labels"),
            _bad("label value null", fmt, _with(base, **{labels: {"a": None}}), "bad_labels"),
            _bad("label value a boolean", fmt, _with(base, **{labels: {"a": True}}), "bad_labels"),
            _bad("label value an array", fmt, _with(base, **{labels: {"a": ["b"]}}), "bad_labels"),
            _bad(
                "label value an object",
                fmt,
                _with(base, **{labels: {"a": {"b": "c"}}}),
                "bad_labels",
            ),
            _bad("label value with NUL", fmt, _with(base, **{labels: {"a": "\x00"}}), "bad_labels"),
            _bad("label value with CR", fmt, _with(base, **{labels: {"a": "x\ry"}}), "bad_labels"),
            _bad("label value with tab", fmt, _with(base, **{labels: {"a": "x\ty"}}), "bad_labels"),
            _bad(
                "label value with ESC",
                fmt,
                _with(base, **{labels: {"a": "\x1b[2J"}}),
                "bad_labels",
            ),
        ]
        # Label-name injection: anything outside [a-zA-Z_][a-zA-Z0-9_]*. (Telegraf tag
        # keys are renamed to valid names instead, see _RENAMED_TAGS; those that stay
        # invalid are rejected.)
        for label_name in [
            'a"b',
            "a}",
            "a{b",
            "a\nb",
            'a="x"}',
            'x="1",evil',
            "a=b",
            "a b",
            "a,b",
            "a-b",
            "a.b",
            "a:b",
            "1abc",
            "",
            "__reserved",
            "__name__x",
            "héllo",
            "a\x00",
        ]:
            if fmt == TELEGRAF and label_name in _RENAMED_TAGS:
                continue
            out.append(
                _bad(
                    f"label name {label_name!r}",
                    fmt,
                    _with(base, **{labels: {label_name: "v"}}),
                    "bad_labels",
                )
            )
    return out


def _raw_name(base: dict[str, Any], name: str, raw: bytes) -> bytes:
    """A valid record whose name contains the raw bytes ``raw``."""
    return _with(base, **{name: "cpu@@"}).replace(b"@@", raw)


def _value(fmt: str, value: Any) -> bytes:
    """A valid record of ``fmt`` whose value is ``value`` (as a JSON number)."""
    if fmt == TELEGRAF:
        return _with(_TELEGRAF_OK, fields={"f": value})
    return _with(_BASES[fmt], value=value)


def _value_raw(fmt: str, token: bytes) -> bytes:
    """A valid record of ``fmt`` whose value is the JSON number token ``token``."""
    return _value(fmt, 7.25).replace(b"7.25", token)


def _native_only() -> list[BadRecord]:
    b = _NATIVE_OK
    return [
        _bad("missing 'value'", NATIVE, _with(b, value=_MISSING), "missing_field"),
        _bad("extra field", NATIVE, _with(b, unit="percent"), "unknown_field"),
        _bad("extra field 'name'", NATIVE, _with(b, name="cpu"), "unknown_field"),
        _bad("extra field 'timestamp'", NATIVE, _with(b, timestamp=1), "unknown_field"),
        _bad("field name in upper case", NATIVE, _with(b, Value=1), "unknown_field"),
        _bad(
            "extra field wins over missing field",
            NATIVE,
            _dumps({"stream": "s", "tss": 1, "value": 1}),
            "unknown_field",
        ),
        _bad("value string 'NaN'", NATIVE, _with(b, value="NaN"), "bad_value"),
        _bad("value string 'inf'", NATIVE, _with(b, value="inf"), "bad_value"),
        _bad("value numeric string", NATIVE, _with(b, value="0.93"), "bad_value"),
        _bad("value true", NATIVE, _with(b, value=True), "bad_value"),
        _bad("value false", NATIVE, _with(b, value=False), "bad_value"),
        _bad("value null", NATIVE, _with(b, value=None), "bad_value"),
        _bad("value an array", NATIVE, _with(b, value=[1]), "bad_value"),
        _bad("value an object", NATIVE, _with(b, value={"v": 1}), "bad_value"),
    ]


def _adapter_only() -> list[BadRecord]:
    b = _ADAPTER_OK
    out = [
        _bad("missing 'value'", ADAPTER, _with(b, value=_MISSING), "missing_field"),
        _bad(
            "__name__ label differs from name",
            ADAPTER,
            _with(b, labels={"__name__": "down", "job": "node"}),
            "bad_labels",
        ),
        _bad(
            "__name__ label not a string",
            ADAPTER,
            _with(b, labels={"__name__": 1, "job": "node"}),
            "bad_labels",
        ),
        _bad(
            "another __ label",
            ADAPTER,
            _with(b, labels={"__name__": "up", "__meta_x": "y"}),
            "bad_labels",
        ),
        _bad(
            "33 labels besides __name__",
            ADAPTER,
            _with(b, labels={"__name__": "up", **{f"l{i}": "v" for i in range(33)}}),
            "bad_labels",
        ),
        _bad("value true", ADAPTER, _with(b, value=True), "bad_value"),
        _bad("value null", ADAPTER, _with(b, value=None), "bad_value"),
        _bad("value an array", ADAPTER, _with(b, value=["1"]), "bad_value"),
    ]
    for text in [  # "NaN" itself is a Prometheus sample, skipped: test_prometheus_adapter.py
        "abc",
        "nan",
        "+Inf",
        "-Inf",
        "Infinity",
        "inf",
        "1e309",
        "-1e309",
        "1e308",
        "-1e301",
        "",
        " ",
        " 1",
        "1 ",
        "1\n",
        "1_000",
        "0x10",
        "1,5",
        "1.2.3",
        "\uff11",  # FULLWIDTH DIGIT ONE: float() takes it, Go never writes it
        "\u0661",  # ARABIC-INDIC DIGIT ONE
    ]:
        out.append(_bad(f"value string {text!r}", ADAPTER, _with(b, value=text), "bad_value"))
    return out


def _telegraf_only() -> list[BadRecord]:
    b = _TELEGRAF_OK
    metric2 = {**b, "fields": {"load1": 0.5}}
    return [
        _bad("missing 'fields'", TELEGRAF, _with(b, fields=_MISSING), "missing_field"),
        _bad(
            "no numeric fields",
            TELEGRAF,
            _with(b, fields={"state": "ok", "up": True, "down": False, "n": None}),
            "no_numeric_fields",
        ),
        _bad("empty fields", TELEGRAF, _with(b, fields={}), "no_numeric_fields"),
        _bad(
            "only nested fields",
            TELEGRAF,
            _with(b, fields={"a": [1], "b": {"c": 2}}),
            "no_numeric_fields",
        ),
        _bad("fields an array", TELEGRAF, _with(b, fields=[1.0]), "bad_value"),
        _bad("fields a number", TELEGRAF, _with(b, fields=1.0), "bad_value"),
        _bad("fields null", TELEGRAF, _with(b, fields=None), "bad_value"),
        _bad(
            "one numeric field of 1e308 among good ones",
            TELEGRAF,
            _with(b, fields={"ok": 1, "huge": 1e308}),
            "bad_value",
        ),
        _bad(
            "field name with a newline",
            TELEGRAF,
            _with(b, fields={"a\nb": 1}),
            "bad_name",
        ),
        _bad(
            "measurement + field name longer than 256",
            TELEGRAF,
            _with(b, name="m" * 200, fields={"f" * 56: 1}),
            "bad_name",
        ),
        _bad("batch: metrics empty", TELEGRAF, _dumps({"metrics": []}), "bad_batch"),
        _bad("batch: metrics an object", TELEGRAF, _dumps({"metrics": b}), "bad_batch"),
        _bad("batch: metrics null", TELEGRAF, _dumps({"metrics": None}), "bad_batch"),
        _bad("batch: metric a number", TELEGRAF, _dumps({"metrics": [b, 1]}), "bad_batch"),
        _bad("batch: metric an array", TELEGRAF, _dumps({"metrics": [[b]]}), "bad_batch"),
        _bad(
            "batch: second metric has no numeric field",
            TELEGRAF,
            _dumps({"metrics": [b, {**b, "fields": {"s": "x"}}]}),
            "no_numeric_fields",
        ),
        _bad(
            "batch: second metric misses its timestamp",
            TELEGRAF,
            _dumps({"metrics": [b, {k: v for k, v in metric2.items() if k != "timestamp"}]}),
            "missing_field",
        ),
        _bad(
            "batch: third metric has a bad tag",
            TELEGRAF,
            _dumps({"metrics": [b, metric2, {**b, "tags": {"__a": "c"}}]}),
            "bad_labels",
        ),
    ]


BAD_RECORDS: list[BadRecord] = [
    *_for_all_formats(),
    *_native_only(),
    *_adapter_only(),
    *_telegraf_only(),
]
"""``(description, format, payload, reason)`` of records that must be rejected."""


def _good(description: str, fmt: str, payload: bytes, *points: Point) -> GoodRecord:
    return GoodRecord(f"{fmt}: {description}", fmt, payload, points)


_TS_2024 = 1714564800.0  # 2024-05-01T12:00:00Z
_TRICKY_VALUES = [
    'say "hi"',
    "a}b{c",
    '"},evil="1',
    "line1\nline2",
    "back\\slash",
    'x",y="z',
    "\\n not a newline",
    "",
    " spaces ",
    "ünïcödé ✓ 🚀",
    "=,;:#/?&%",
    "v" * 1024,
]


def _tricky_good() -> list[GoodRecord]:
    out: list[GoodRecord] = []
    for value in _TRICKY_VALUES:
        out += [
            _good(
                f"label value {value[:20]!r}",
                NATIVE,
                _dumps({"stream": "s", "ts": 1, "value": 1, "labels": {"a": value}}),
                Point("s", (("a", value),), 1.0, 1.0),
            ),
            _good(
                f"label value {value[:20]!r}",
                ADAPTER,
                _dumps(
                    {
                        "timestamp": "2024-05-01T12:00:00Z",
                        "value": "1",
                        "name": "up",
                        "labels": {"__name__": "up", "a": value},
                    }
                ),
                Point("up", (("a", value),), _TS_2024, 1.0),
            ),
            _good(
                f"tag value {value[:20]!r}",
                TELEGRAF,
                _dumps({"fields": {"f": 1}, "name": "m", "tags": {"a": value}, "timestamp": 1}),
                Point("m_f", (("a", value),), 1.0, 1.0),
            ),
        ]
    many = {f"l{i:02d}": str(i) for i in range(32)}
    many_sorted = tuple(sorted(many.items()))
    n = {"stream": "s", "ts": 1, "value": 1}
    out += [
        # --- names: anything printable goes, even what looks like an injection
        _good(
            "stream name with quotes and braces",
            NATIVE,
            _dumps({**n, "stream": 'cpu{host="x"} 1'}),
            Point('cpu{host="x"} 1', (), 1.0, 1.0),
        ),
        _good(
            "stream name of 256 characters",
            NATIVE,
            _dumps({**n, "stream": "s" * 256}),
            Point("s" * 256, (), 1.0, 1.0),
        ),
        _good(
            "stream name in Unicode",
            NATIVE,
            _dumps({**n, "stream": "température.salle-1 ✓"}),
            Point("température.salle-1 ✓", (), 1.0, 1.0),
        ),
        _good(
            "stream name as raw UTF-8 (not \\u escapes)",
            NATIVE,
            '{"stream": "naïve", "ts": 1, "value": 1}'.encode(),
            Point("naïve", (), 1.0, 1.0),
        ),
        # --- labels
        _good(
            "32 labels, sorted by name",
            NATIVE,
            _dumps({**n, "labels": dict(reversed(list(many.items())))}),
            Point("s", many_sorted, 1.0, 1.0),
        ),
        _good(
            "label names with underscores and digits",
            NATIVE,
            _dumps({**n, "labels": {"_a": "1", "b_2": "2", "C": "3", "x" * 256: "4"}}),
            Point("s", (("C", "3"), ("_a", "1"), ("b_2", "2"), ("x" * 256, "4")), 1.0, 1.0),
        ),
        _good(
            "label names that are Python keywords",
            NATIVE,
            _dumps({**n, "labels": {"class": "a", "None": "b"}}),
            Point("s", (("None", "b"), ("class", "a")), 1.0, 1.0),
        ),
        _good("labels null", NATIVE, _dumps({**n, "labels": None}), Point("s", (), 1.0, 1.0)),
        _good("labels empty", NATIVE, _dumps({**n, "labels": {}}), Point("s", (), 1.0, 1.0)),
        # --- values
        _good("value 1e300", NATIVE, _dumps({**n, "value": 1e300}), Point("s", (), 1.0, 1e300)),
        _good("value -1e300", NATIVE, _dumps({**n, "value": -1e300}), Point("s", (), 1.0, -1e300)),
        _good("value 5e-324", NATIVE, _dumps({**n, "value": 5e-324}), Point("s", (), 1.0, 5e-324)),
        _good("value -0.0", NATIVE, _dumps({**n, "value": -0.0}), Point("s", (), 1.0, -0.0)),
        _good(
            "value 2**64-1",
            NATIVE,
            _dumps({**n, "value": 2**64 - 1}),
            Point("s", (), 1.0, float(2**64 - 1)),
        ),
        _good(
            "value 1e-400 (underflows to 0)",
            NATIVE,
            b'{"stream": "s", "ts": 1, "value": 1e-400}',
            Point("s", (), 1.0, 0.0),
        ),
        # --- timestamps
        _good("ts 0", NATIVE, _dumps({**n, "ts": 0}), Point("s", (), 0.0, 1.0)),
        _good(
            "ts in milliseconds",
            NATIVE,
            _dumps({**n, "ts": 1700000000123}),
            Point("s", (), 1700000000123 / 10**3, 1.0),
        ),
        _good(
            "ts in microseconds",
            NATIVE,
            _dumps({**n, "ts": 1700000000123456}),
            Point("s", (), 1700000000123456 / 10**6, 1.0),
        ),
        _good(
            "ts in nanoseconds",
            NATIVE,
            _dumps({**n, "ts": 1700000000123456789}),
            Point("s", (), 1700000000123456789 / 10**9, 1.0),
        ),
        _good(
            "ts ISO with an offset",
            NATIVE,
            _dumps({**n, "ts": "2024-05-01T14:00:00+02:00"}),
            Point("s", (), _TS_2024, 1.0),
        ),
        _good(
            "ts ISO naive with a space is UTC",
            NATIVE,
            _dumps({**n, "ts": "2024-05-01 12:00:00"}),
            Point("s", (), _TS_2024, 1.0),
        ),
        _good(
            "ts RFC 3339 in lower case",
            NATIVE,
            _dumps({**n, "ts": "2024-05-01t12:00:00.5z"}),
            Point("s", (), _TS_2024 + 0.5, 1.0),
        ),
        _good(
            "ts RFC 3339 with nanoseconds (truncated to microseconds)",
            NATIVE,
            _dumps({**n, "ts": "2024-05-01T12:00:00.123456789Z"}),
            Point("s", (), 1714564800123456 / 10**6, 1.0),
        ),
        _good(
            "ts last second of 9999",
            NATIVE,
            _dumps({**n, "ts": "9999-12-31T23:59:59Z"}),
            Point("s", (), 253402300799.0, 1.0),
        ),
        # --- prometheus-kafka-adapter
        _good(
            "adapter record with unknown extra fields",
            ADAPTER,
            _dumps({**_ADAPTER_OK, "extra": {"x": [1]}, "__value__": 5}),
            Point("up", (("job", "node"),), _TS_2024, 42.0),
        ),
        _good(
            "adapter record without labels",
            ADAPTER,
            _dumps({"timestamp": "1970-01-01T00:00:00Z", "value": "-1.5e3", "name": "up"}),
            Point("up", (), 0.0, -1500.0),
        ),
        _good(
            "adapter value formatted by Go with 'f' and -1 precision",
            ADAPTER,
            _dumps({**_ADAPTER_OK, "value": "123456789012345680000"}),
            Point("up", (("job", "node"),), _TS_2024, 1.2345678901234568e20),
        ),
        _good(
            "adapter value as a JSON number",
            ADAPTER,
            _dumps({**_ADAPTER_OK, "value": 0.25}),
            Point("up", (("job", "node"),), _TS_2024, 0.25),
        ),
        _good(
            "adapter metric name with colons (recording rule)",
            ADAPTER,
            _dumps({**_ADAPTER_OK, "name": "job:up:sum", "labels": {"__name__": "job:up:sum"}}),
            Point("job:up:sum", (), _TS_2024, 42.0),
        ),
        # --- telegraf
        _good(
            "telegraf fields of every type, only numbers kept, in record order",
            TELEGRAF,
            _dumps(
                {
                    "fields": {"b": 2, "s": "x", "t": True, "a": 1.5, "n": None, "l": [1]},
                    "name": "m",
                    "tags": {},
                    "timestamp": 1458229140,
                }
            ),
            Point("m_b", (), 1458229140.0, 2.0),
            Point("m_a", (), 1458229140.0, 1.5),
        ),
        _good(
            "telegraf without tags, timestamp in nanoseconds",
            TELEGRAF,
            _dumps({"fields": {"f": 1}, "name": "m", "timestamp": 1458229140000000000}),
            Point("m_f", (), 1458229140.0, 1.0),
        ),
        _good(
            "telegraf uint64 field",
            TELEGRAF,
            _dumps({"fields": {"f": 2**64 - 1}, "name": "m", "timestamp": 1}),
            Point("m_f", (), 1.0, float(2**64 - 1)),
        ),
        _good(
            "telegraf field and measurement names with dots and dashes",
            TELEGRAF,
            _dumps({"fields": {"rx.bytes-total": 7}, "name": "net.if", "timestamp": 1}),
            Point("net.if_rx.bytes-total", (), 1.0, 7.0),
        ),
        _good(
            "telegraf RFC 3339 timestamp (json_timestamp_format)",
            TELEGRAF,
            _dumps({"fields": {"f": 1}, "name": "m", "timestamp": "2024-05-01T12:00:00Z"}),
            Point("m_f", (), _TS_2024, 1.0),
        ),
        _good(
            "telegraf batch of two metrics",
            TELEGRAF,
            _dumps(
                {
                    "metrics": [
                        {**_TELEGRAF_OK, "fields": {"usage_idle": 99.1, "usage_user": 0.5}},
                        {"fields": {"load1": 0.25}, "name": "system", "timestamp": 1458229150},
                    ]
                }
            ),
            Point("cpu_usage_idle", (("cpu", "cpu-total"), ("host", "h")), 1458229140.0, 99.1),
            Point("cpu_usage_user", (("cpu", "cpu-total"), ("host", "h")), 1458229140.0, 0.5),
            Point("system_load1", (), 1458229150.0, 0.25),
        ),
        # --- far-future timestamps decode (the daemon rejects them as timestamp_in_future)
        _good(
            "adapter timestamp in year 9999",
            ADAPTER,
            _dumps({**_ADAPTER_OK, "timestamp": "9999-12-31T23:59:59Z"}),
            Point("up", (("job", "node"),), 253402300799.0, 42.0),
        ),
        _good(
            "telegraf RFC 3339 timestamp in year 9999",
            TELEGRAF,
            _dumps({"fields": {"f": 1}, "name": "m", "timestamp": "9999-12-31T23:59:59Z"}),
            Point("m_f", (), 253402300799.0, 1.0),
        ),
        # --- names that look like exposition injections are only names
        _good(
            "adapter metric name with quotes, braces and a space",
            ADAPTER,
            _dumps({**_ADAPTER_OK, "name": 'up{job="x"} 1', "labels": {}}),
            Point('up{job="x"} 1', (), _TS_2024, 42.0),
        ),
        _good(
            "telegraf measurement name with quotes and braces",
            TELEGRAF,
            _dumps({"fields": {"f": 1}, "name": 'm{a="}', "timestamp": 1}),
            Point('m{a="}_f', (), 1.0, 1.0),
        ),
    ]
    out += [
        _good(
            f"telegraf tag key {key!r} renamed",
            TELEGRAF,
            _dumps({"fields": {"f": 1}, "name": "m", "tags": {key: "v"}, "timestamp": 1}),
            Point("m_f", ((renamed, "v"),), 1.0, 1.0),
        )
        for key, renamed in _RENAMED_TAGS.items()
    ]
    return out


TRICKY_GOOD_RECORDS: list[GoodRecord] = _tricky_good()
"""``(description, format, payload, points)`` of suspicious-looking valid records."""


def _oversize(fmt: str, size: int) -> bytes:
    """A record of ``fmt`` padded past ``size`` bytes with one long label value."""
    base = _BASES[fmt]
    labels = {k: v for k, v in (base.get(_LABELS[fmt]) or {}).items()}
    return _with(base, **{_LABELS[fmt]: {**labels, "pad": "x" * size}})


OVERSIZE_RECORDS: list[BadRecord] = [
    BadRecord(f"{fmt}: {size} bytes of label", fmt, _oversize(fmt, size), "bad_labels")
    for fmt in _BASES
    for size in (70_000, 1_100_000)
]
"""Records over 64 KiB (and over 1 MiB): the decoders reject them as ``bad_labels`` (a label
value over 1,024 characters); a daemon with ``kafka.max_record_bytes`` below their size
rejects them as ``too_large`` before decoding."""
