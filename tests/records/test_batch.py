"""BatchDecoder: a batch's values decoded to columns, compared with the per-record decoders."""

from __future__ import annotations

import json

import numpy as np

from monitor.records import RecordRejected, RecordSkipped, get_decoder, stream_key
from monitor.records.batch import BatchDecoder

NATIVE = [
    b'{"stream": "cpu", "ts": 1700000000, "value": 1.5, "labels": {"host": "a"}}',
    b"",
    b'{"stream": "mem", "ts": 1700000060, "value": 2}',
    b'{"stream": "cpu", "value": 3}',
    b"x" * 300,
    None,
    b'{"stream": "cpu", "ts": "2023-11-14T22:14:20Z", "value": -4, "labels": {"host": "a"}}',
]
TELEGRAF = [
    json.dumps(
        {"name": "cpu", "fields": {"idle": 99.0, "user": 0.5}, "tags": {"h": "x"}, "timestamp": 7}
    ).encode(),
    b'{"name": "cpu"}',
    json.dumps({"name": "disk", "fields": {"free": 10}, "tags": {}, "timestamp": 9}).encode(),
]
PROMETHEUS = [
    json.dumps({"timestamp": "2024-05-01T12:00:00Z", "value": "NaN", "name": "up"}).encode(),
    json.dumps(
        {"timestamp": "2024-05-01T12:00:00Z", "value": "1", "name": "up", "labels": {"job": "n"}}
    ).encode(),
]
PARTITIONS = [("metrics", NATIVE), ("telegraf", TELEGRAF), ("metrics", []), ("prom", PROMETHEUS)]
FORMATS = {"telegraf": "telegraf", "prom": "prometheus-kafka-adapter"}


def points_of(partitions):
    """The points each value gives with its topic's decoder, in order."""
    points = []
    for topic, values in partitions:
        decode = get_decoder(FORMATS.get(topic, "native"))
        for value in values:
            try:
                points += decode(value or b"")
            except (RecordRejected, RecordSkipped):
                pass
    return points


def test_columns_hold_what_the_record_decoders_give_in_the_same_order():
    columns = BatchDecoder(FORMATS, "native", max_record_bytes=200)(PARTITIONS)
    points = points_of(PARTITIONS)
    assert len(points) == 7  # three native, three telegraf fields, one prometheus sample
    assert columns.keys == [stream_key(p.name, p.labels) for p in points]
    assert columns.names == [p.name for p in points]
    assert columns.labels == [p.labels for p in points]
    assert columns.ts.dtype == columns.values.dtype == np.float64
    assert columns.ts.tolist() == [p.ts for p in points]
    assert columns.values.tolist() == [p.value for p in points]
    # Positions count every record of the batch, partitions one after the other.
    assert columns.records.tolist() == [0, 2, 6, 7, 7, 9, 11]
    assert columns.counts == [3, 3, 0, 1]
    assert [position for _, _, position in columns.rejected] == [1, 3, 4, 5, 8]
    assert columns.rejected[2][1] == "300 bytes, limit 200"
    assert [reason for reason, _, _ in columns.rejected] == [
        "empty",
        "missing_field",
        "too_large",
        "empty",
        "missing_field",
    ]
    assert columns.skipped == ["nan"]


def test_select_keeps_the_chosen_points_and_recounts_each_partition():
    columns = BatchDecoder(FORMATS, "native", max_record_bytes=200)(PARTITIONS)
    keep = columns.records != 7  # drop both points of the first telegraf record
    kept = columns.select(keep)
    assert kept.records.tolist() == [0, 2, 6, 9, 11]
    assert kept.keys == [k for k, drop in zip(columns.keys, ~keep, strict=True) if not drop]
    assert kept.names[3:] == columns.names[5:] and kept.labels[3:] == columns.labels[5:]
    assert kept.identity(3) == columns.identity(5) == columns.identities[5]
    assert kept.values.tolist() == columns.values[keep].tolist()
    assert kept.counts == [3, 1, 0, 1]
    assert kept.rejected is columns.rejected and kept.skipped is columns.skipped


def test_an_empty_batch_gives_empty_columns():
    columns = BatchDecoder({}, "native", max_record_bytes=200)([])
    assert columns.keys == [] and columns.counts == [] and columns.rejected == []
    assert columns.ts.shape == columns.values.shape == columns.records.shape == (0,)


def reference_columns(values, limit):
    """What decoding each native value alone with decode_native gives, as column lists."""
    keys, ts, vals, records, rejected = [], [], [], [], []
    for position, value in enumerate(values):
        try:
            if not value:
                raise RecordRejected("empty", "the record has no value")
            if len(value) > limit:
                raise RecordRejected("too_large", f"{len(value)} bytes, limit {limit}")
            (point,) = get_decoder("native")(value)
        except RecordRejected as exc:
            rejected.append((exc.reason, exc.detail, position))
        else:
            keys.append((stream_key(point.name, point.labels), point.name, point.labels))
            ts.append(point.ts)
            vals.append(point.value)
            records.append(position)
    return keys, ts, vals, records, rejected


def assert_native_batch_matches_reference(values, limit=65_536, known=()):
    """Decoded twice by one decoder (the second time from its remembered identities),
    the batch gives exactly what decode_native gives record by record. The decoder
    meets the ``known`` values first."""
    decode = BatchDecoder({}, "native", max_record_bytes=limit)
    decode([("metrics", list(known))])
    expected = reference_columns(values, limit)
    for _ in range(2):
        columns = decode([("metrics", values)])
        identities = list(zip(columns.keys, columns.names, columns.labels, strict=True))
        assert identities == expected[0]
        assert [type(t) for t in columns.ts.tolist()] == [float] * len(expected[1])
        assert columns.ts.tolist() == expected[1]
        assert columns.values.tolist() == expected[2]
        assert columns.records.tolist() == expected[3]
        assert columns.rejected == expected[4]


def test_native_records_decoded_inline_match_decode_native_on_the_hostile_corpus():
    from tests.records.bad_records import BAD_RECORDS, TRICKY_GOOD_RECORDS

    values = [r.payload for r in BAD_RECORDS + TRICKY_GOOD_RECORDS if r.format == "native"]
    assert len(values) > 50
    assert_native_batch_matches_reference(values)


def test_a_partition_of_known_streams_is_decoded_at_once(monkeypatch):
    values = [
        b'{"stream": "cpu", "ts": 1700000000, "value": 1.5, "labels": {"host": "a"}}',
        b'{"value": 2, "labels": null, "stream": "mem", "ts": 1700000060.5}',
        b'{"stream": "disk", "ts": 1700000000, "value": -1e300}',
    ]
    decode = BatchDecoder({}, "native", max_record_bytes=200)
    first = decode([("metrics", values)])

    def one_by_one(*args):
        raise AssertionError("decoded record by record")

    monkeypatch.setattr(decode, "_native_each", one_by_one)
    again = decode([("metrics", values[::-1]), ("metrics", values)])
    assert again.keys == first.keys[::-1] + first.keys
    assert again.labels == first.labels[::-1] + first.labels
    assert again.values.tolist() == [-1e300, 2.0, 1.5, 1.5, 2.0, -1e300]
    assert again.records.tolist() == [0, 1, 2, 3, 4, 5] and again.counts == [3, 3]


def test_a_known_stream_too_far_in_the_future_is_rejected():
    decode = BatchDecoder({}, "native", 200, max_future_seconds=60, clock=lambda: 1700000000.0)
    now = b'{"stream": "cpu", "ts": 1700000060, "value": 1}'
    later = b'{"stream": "cpu", "ts": 1700000061, "value": 1}'
    assert decode([("metrics", [now])]).keys == ["cpu"]
    columns = decode([("metrics", [now, later, now])])
    assert columns.records.tolist() == [0, 2]
    assert [(reason, record) for reason, _, record in columns.rejected] == [
        ("timestamp_in_future", 1)
    ]


def test_a_known_stream_in_a_record_that_breaks_a_rule_is_still_rejected():
    good = b'{"stream": "cpu", "ts": 1700000000, "value": 1.5, "labels": {"host": "a"}}'
    values = [
        good,
        b'{"stream": "cpu", "ts": 1700000000, "value": 1.5, "labels": {"host": "a"}, "x": 1}',
        b'{"stream": "cpu", "ts": 1700000000, "value": true, "labels": {"host": "a"}}',
        b'{"stream": "cpu", "ts": 1700000000, "value": 1e301, "labels": {"host": "a"}}',
        b'{"stream": "cpu", "ts": -1, "value": 1, "labels": {"host": "a"}}',
        b'{"stream": "cpu", "ts": 1700000000000, "value": 1, "labels": {"host": "a"}}',
        b'{"stream": "cpu", "ts": "2023-11-14T22:13:20Z", "value": 1, "labels": {"host": "a"}}',
        b'{"stream": "cpu", "ts": 1700000000, "value": 1, "labels": [["host", "a"]]}',
        b'{"stream": "cpu", "ts": 1700000000, "value": 1, "labels": {"host": ["a"]}}',
        b'{"stream": "cpu", "ts": 1700000000, "value": 1, "labels": null}',
        b'{"stream": "cpu", "ts": 1700000000, "labels": {"host": "a"}, "stream2": 1}',
        b'{"ts": 1700000000, "value": 1, "labels": {"host": "a"}, "x": "cpu"}',
        b'{"stream": "cpu", "ts": NaN, "value": 1}',
        b'{"stream": "cpu", "ts": 1700000000, "value": 2, "labels": {"host": "a", "dc": "x"}}',
        b'{"labels": {"host": "a"}, "value": 3, "ts": 1700000000, "stream": "cpu"}',
    ]
    assert_native_batch_matches_reference(values)
    # Alone among records of known streams, so that the whole partition could be taken
    # at once (BatchDecoder._native_batch) but for the rule it breaks.
    for value in values:
        assert_native_batch_matches_reference([good, value, good], known=values)
    reasons = [reason for reason, _, _ in reference_columns(values, 65_536)[4]]
    assert reasons == [
        "unknown_field",
        "bad_value",
        "bad_value",
        "bad_timestamp",
        "bad_labels",
        "bad_labels",
        "unknown_field",
        "unknown_field",
        "not_json",
    ]


def test_partitions_decoded_at_once_and_one_by_one_keep_the_batch_order():
    known = [
        b'{"stream": "cpu", "ts": 1700000000, "value": 1.5, "labels": {"host": "a"}}',
        b'{"stream": "mem", "ts": 1700000000, "value": 2}',
    ]
    decode = BatchDecoder({}, "native", max_record_bytes=200)
    decode([("metrics", known)])
    partitions = [
        known,  # at once
        [known[1], b"{"],  # one by one: a bad record
        known[::-1],  # at once
        [b'{"stream": "new", "ts": 1700000001, "value": 3}'],  # one by one: a new stream
    ]
    columns = decode([("metrics", values) for values in partitions])
    assert columns.keys == ["cpu{host=a}", "mem", "mem", "mem", "cpu{host=a}", "new"]
    assert columns.values.tolist() == [1.5, 2.0, 2.0, 2.0, 1.5, 3.0]
    assert columns.ts.tolist() == [1.7e9, 1.7e9, 1.7e9, 1.7e9, 1.7e9, 1700000001.0]
    assert columns.records.tolist() == [0, 1, 2, 4, 5, 6]
    assert columns.counts == [2, 1, 2, 1]
    assert [(reason, position) for reason, _, position in columns.rejected] == [("not_json", 3)]


def test_labels_that_are_not_an_object_among_labelled_records_are_rejected_alone():
    good = b'{"stream": "cpu", "ts": 1700000000, "value": 1.5, "labels": {"host": "a"}}'
    values = [
        good,
        b'{"stream": "cpu", "ts": 1700000000, "value": 1.5, "labels": ["host", "a"]}',
        b'{"stream": "cpu", "ts": 1700000000, "value": 1.5, "labels": "host=a"}',
        good,
    ]
    assert_native_batch_matches_reference(values, known=[good])
