from __future__ import annotations

import math

import pytest

from monitor.records import RecordRejected
from monitor.records.timestamps import MAX_TS, parse_timestamp

T = 1714564800  # 2024-05-01T12:00:00Z


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # seconds: below 1e11
        (0, 0.0),
        (0.0, 0.0),
        (1, 1.0),
        (0.5, 0.5),
        (T, float(T)),
        (T + 0.25, T + 0.25),
        (99_999_999_999, 99_999_999_999.0),
        (99_999_999_999.5, 99_999_999_999.5),
        # milliseconds: from 1e11
        (100_000_000_000, 100_000_000.0),
        (1e11, 1e8),
        (T * 1000, float(T)),
        (T * 1000 + 250, T + 0.25),
        (T * 1000.0 + 250.0, T + 0.25),
        # microseconds: from 1e14
        (100_000_000_000_000, 100_000_000.0),
        (T * 10**6, float(T)),
        (T * 10**6 + 1, (T * 10**6 + 1) / 10**6),
        # nanoseconds: from 1e17
        (100_000_000_000_000_000, 100_000_000.0),
        (1e17, 1e8),
        (T * 10**9, float(T)),
        (T * 10**9 + 123_456_789, (T * 10**9 + 123_456_789) / 10**9),
        (2**63 - 1, (2**63 - 1) / 10**9),
        (2**64 - 1, (2**64 - 1) / 10**9),
        # the last second of the year 9999 is only reachable in ns (or as a string)
        (253402300799 * 10**9, 253402300799.0),
        (253402300799 * 10**6, 253402300799.0 / 1000),
    ],
)
def test_numbers_are_epoch_times_in_the_unit_their_magnitude_tells(
    raw: float, expected: float
) -> None:
    got = parse_timestamp(raw)
    assert type(got) is float
    assert got == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-05-01T12:00:00Z", T),
        ("2024-05-01T12:00:00+00:00", T),
        ("2024-05-01T12:00:00-00:00", T),
        ("2024-05-01T14:00:00+02:00", T),
        ("2024-05-01T06:30:00-05:30", T),
        ("2024-05-01T14:00:00+0200", T),
        ("2024-05-01T12:00:00", T),
        ("2024-05-01 12:00:00", T),
        ("2024-05-01 12:00:00Z", T),
        ("2024-05-01t12:00:00z", T),
        ("2024-05-01T12:00", T),
        ("2024-05-01T12:00:00.5Z", T + 0.5),
        ("2024-05-01T12:00:00.250Z", T + 0.25),
        ("2024-05-01T12:00:00.123456Z", (T * 10**6 + 123456) / 10**6),
        ("2024-05-01T12:00:00.123456789Z", (T * 10**6 + 123456) / 10**6),
        ("2024-05-01T14:00:00.5+02:00", T + 0.5),
        ("2024-05-01", T - 12 * 3600),
        ("1970-01-01T00:00:00Z", 0.0),
        ("1970-01-01T01:00:00+01:00", 0.0),
        ("9999-12-31T23:59:59Z", 253402300799.0),
    ],
)
def test_iso_8601_strings(raw: str, expected: float) -> None:
    got = parse_timestamp(raw)
    assert type(got) is float
    assert got == expected


@pytest.mark.parametrize(
    "raw",
    [
        True,
        False,
        None,
        [],
        [T],
        {},
        {"s": T},
        b"2024-05-01T12:00:00Z",
        float("nan"),
        float("inf"),
        float("-inf"),
        -1,
        -0.001,
        -(T * 1000),
        1e300,
        10**400,  # too large for a float, as only a Python caller can pass
        253402300800 * 10**9,  # 10000-01-01 in nanoseconds
        1e21,
        "",
        "now",
        "yesterday",
        "1700000000",
        "1700000000.5",
        "-1",
        "20240501",
        "20240501T120000Z",
        "2024-5-1T12:00:00Z",
        "2024/05/01 12:00:00",
        "2024-05-01X12:00:00",
        "2024-05-01T12:00:00ZZ",
        "2024-05-01T12:00:00 UTC",
        "2024-05-01T12:00:00+25:00",
        "2024-05-01T24:00:00Z",
        "2024-02-30T00:00:00Z",
        "2016-12-31T23:59:60Z",
        "2024-W18-3",
        "Wed, 01 May 2024 12:00:00 GMT",
        " 2024-05-01T12:00:00Z",
        "2024-05-01T12:00:00Z ",
        "２０２４-05-01T12:00:00Z",  # fullwidth digits
        "2024-05-01T12:00:00" + "0" * 100,
        "1969-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "10000-01-01T00:00:00Z",
        "9999-12-31T23:30:00-01:00",  # 10000-01-01T00:30:00Z
        "9999-12-31T23:59:59.999999Z",  # rounds to MAX_TS as a float
    ],
)
def test_rejects(raw: object) -> None:
    with pytest.raises(RecordRejected) as info:
        parse_timestamp(raw)
    assert info.value.reason == "bad_timestamp"


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (True, "got boolean"),
        (None, "got null"),
        ([1], "got list"),
        (float("nan"), "NaN"),
        (float("inf"), "infinity"),
        (-1, "before 1970"),
        ("1969-12-31T23:59:59Z", "before 1970"),
        (1e300, "after the year 9999"),
        ("9999-12-31T23:30:00-01:00", "after the year 9999"),
        ("x" * 1000, "is not an ISO-8601 date-time"),
    ],
)
def test_details_say_what_is_wrong(raw: object, words: str) -> None:
    with pytest.raises(RecordRejected) as info:
        parse_timestamp(raw)
    assert words in info.value.detail
    assert len(info.value.detail) < 200


def test_seconds_after_year_5138_read_as_milliseconds() -> None:
    # 10000-01-01 in seconds is >= 1e11, so it is taken for milliseconds (1978).
    assert parse_timestamp(253402300800) == 253402300.8


def test_float_subclass_is_a_number() -> None:
    class Seconds(float):
        pass

    assert parse_timestamp(Seconds(1.5)) == 1.5


def test_max_ts_is_year_10000() -> None:
    from datetime import UTC, datetime

    assert MAX_TS == datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp() + 1
    assert math.isfinite(MAX_TS)
