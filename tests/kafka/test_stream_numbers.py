"""Stream numbers: the daemon gets back exactly the columns the child decoded."""

from __future__ import annotations

import pickle

import numpy as np

from monitor.kafka.stream_numbers import Numbering, Numbers
from monitor.records.batch import BatchDecoder


def record(stream: str, host: str, value: float = 1.0) -> bytes:
    return b'{"stream": "%s", "ts": 1700000000, "value": %r, "labels": {"host": "%s"}}' % (
        stream.encode(),
        value,
        host.encode(),
    )


def assert_same(got, want):
    assert (list(got.keys), list(got.names), list(got.labels)) == (
        list(want.keys),
        list(want.names),
        list(want.labels),
    )
    np.testing.assert_array_equal(got.ts, want.ts)
    np.testing.assert_array_equal(got.values, want.values)
    np.testing.assert_array_equal(got.records, want.records)
    assert (got.counts, got.rejected, got.skipped) == (want.counts, want.rejected, want.skipped)


def test_batches_come_back_as_decoded_through_a_pickle_each():
    decode = BatchDecoder({}, "native", 1000)
    child, daemon = Numbering(), Numbers()
    batches = [
        [("metrics", [record("cpu", "a"), b"{", record("cpu", "b")]), ("other", [])],
        [("metrics", [record("cpu", "b", 2.5), record("mem", "a"), record("cpu", "a")])],
        [("metrics", [])],
        [("metrics", [None, record("mem", "a", 7.0)])],
    ]
    new_counts = []
    for batch in batches:
        columns = decode(batch)
        sent = pickle.loads(pickle.dumps(child.encode(columns)))
        new_counts.append(len(sent.new))
        assert not sent.restart
        assert_same(daemon.decode(sent), columns)
    # Each stream's identity is sent once, with the first batch that has it.
    assert new_counts == [2, 1, 0, 0]


def test_both_sides_start_over_when_the_limit_is_reached():
    decode = BatchDecoder({}, "native", 1000)
    child, daemon = Numbering(limit=3), Numbers()
    first = decode([("metrics", [record("cpu", h) for h in "abc"])])
    second = decode([("metrics", [record("cpu", "a"), record("cpu", "d")])])
    third = decode([("metrics", [record("cpu", "d"), record("cpu", "a")])])
    sent = [child.encode(columns) for columns in (first, second, third)]
    assert [s.restart for s in sent] == [False, True, False]
    # After the restart only the streams of that batch are numbered, from 0.
    assert sent[1].numbers.tolist() == [0, 1] and len(sent[1].new) == 2
    assert sent[2].numbers.tolist() == [1, 0] and sent[2].new == []
    for columns, message in zip((first, second, third), sent, strict=True):
        assert_same(daemon.decode(message), columns)


def test_numbered_columns_carry_their_numbers_and_the_rows_known_by_number():
    decode = BatchDecoder({}, "native", 1000)
    child, daemon = Numbering(limit=2), Numbers()
    got = daemon.decode(child.encode(decode([("metrics", [record("cpu", "a")])])))
    assert got.numbers.tolist() == [0] and got.rows_by_number is daemon.rows
    daemon.rows.ensure(1)
    daemon.rows.rows[0] = 7  # the daemon's stream table put stream 0 in row 7
    daemon.decode(child.encode(decode([("metrics", [record("cpu", "b")])])))
    assert daemon.rows.rows[0] == 7
    # The child starts over: number 0 may be another stream now, so its row is forgotten.
    restarted = child.encode(decode([("metrics", [record("cpu", "c")])]))
    assert restarted.restart
    daemon.decode(restarted)
    assert daemon.rows.rows.tolist() == [-1] * len(daemon.rows.rows)
