"""Parsing of record timestamps into seconds since the Unix epoch (UTC)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from monitor.records.exceptions import RecordRejected
from monitor.records.validate import show

MAX_TS = 253402300800.0
"""``10000-01-01T00:00:00Z``: every accepted timestamp is strictly before it."""

_NS = 1e17  # at or above: nanoseconds
_US = 1e14  # at or above: microseconds
MILLISECONDS_FROM = 1e11
"""Epoch numbers at or above this are milliseconds (or finer); below it, seconds."""
_MAX_STR_LEN = 64
_UTC = UTC


def parse_timestamp(raw: object) -> float:
    """Return the timestamp ``raw`` as seconds since the Unix epoch, UTC.

    Numbers are epoch times whose unit is told by their magnitude: at least
    ``1e17`` is nanoseconds, at least ``1e14`` microseconds, at least ``1e11``
    milliseconds, anything smaller seconds (``1e11`` seconds is the year 5138).

    Strings are ISO-8601 / RFC 3339 date-times in the extended form, starting
    ``YYYY-MM-DD``: ``"2024-05-01T12:00:00Z"``, ``"2024-05-01T12:00:00.25+02:00"``,
    ``"2024-05-01 12:00:00"``. A string without an offset is UTC; fractional
    seconds beyond microseconds are truncated; a date alone is midnight.
    Numeric strings such as ``"1700000000"`` are not timestamps.

    Parameters
    ----------
    raw
        The decoded JSON value.

    Returns
    -------
    float
        Seconds since 1970-01-01T00:00:00Z, in ``[0, MAX_TS)``. (The bound
        applies to the float: the last few microseconds of 9999 round to
        ``MAX_TS`` and are rejected.)

    Raises
    ------
    RecordRejected
        ``bad_timestamp`` for booleans, ``null``, other types, NaN or
        infinities, negative times, unparsable strings, and times after the
        year 9999.

    Examples
    --------
    >>> parse_timestamp(1700000000), parse_timestamp(1700000000500)
    (1700000000.0, 1700000000.5)
    >>> parse_timestamp(1_700_000_000_000_000_000)
    1700000000.0
    >>> parse_timestamp("2024-05-01T12:00:00Z"), parse_timestamp("2024-05-01 14:00:00+02:00")
    (1714564800.0, 1714564800.0)
    >>> parse_timestamp("1700000000")
    Traceback (most recent call last):
    ...
    monitor.records.exceptions.RecordRejected: bad_timestamp: '1700000000' is not an \
ISO-8601 date-time (YYYY-MM-DDThh:mm:ss[.f][Z|+hh:mm])
    """
    t = type(raw)
    if t is float or t is int:
        return _from_number(raw)  # type: ignore[arg-type]
    if t is str:
        return _from_string(raw)  # type: ignore[arg-type]
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return _from_number(raw)
    if isinstance(raw, str):
        return _from_string(raw)
    kind = "null" if raw is None else "boolean" if isinstance(raw, bool) else type(raw).__name__
    raise RecordRejected("bad_timestamp", f"expected a number or a string, got {kind}")


def _from_number(raw: int | float) -> float:
    # Comparisons are False for NaN, so NaN falls through to the error.
    if 0 <= raw < MILLISECONDS_FROM:
        return float(raw)
    if raw >= MILLISECONDS_FROM:
        try:
            if raw < _US:
                ts = raw / 1_000
            elif raw < _NS:
                ts = raw / 1_000_000
            else:
                ts = raw / 1_000_000_000  # int / int is correctly rounded, even for big ints
        except OverflowError:  # an int too large for a float
            ts = math.inf
        if ts < MAX_TS:
            return ts
    if raw != raw:
        problem = "NaN is not a timestamp"
    elif raw in (math.inf, -math.inf):
        problem = "infinity is not a timestamp"
    elif raw < 0:
        problem = f"{show(raw)} is before 1970"
    else:
        problem = f"{show(raw)} is after the year 9999"
    raise RecordRejected("bad_timestamp", problem)


def _from_string(raw: str) -> float:
    s = raw
    if not (
        10 <= len(s) <= _MAX_STR_LEN
        and s.isascii()
        and s[4] == "-"
        and s[7] == "-"
        and s[:4].isdigit()
        and (len(s) == 10 or s[10] in "Tt ")
    ):
        raise _bad_string(raw)
    if "t" in s or "z" in s:  # RFC 3339 allows lower case; fromisoformat does not
        s = s.upper()
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise _bad_string(raw) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_UTC)
    try:
        ts = dt.timestamp()
    except (OverflowError, ValueError):  # not expected for aware datetimes; be safe
        raise _bad_string(raw) from None
    if 0 <= ts < MAX_TS:
        return ts
    if ts < 0:
        raise RecordRejected("bad_timestamp", f"{show(raw)} is before 1970")
    raise RecordRejected("bad_timestamp", f"{show(raw)} is after the year 9999")


def _bad_string(raw: str) -> RecordRejected:
    return RecordRejected(
        "bad_timestamp",
        f"{show(raw)} is not an ISO-8601 date-time (YYYY-MM-DDThh:mm:ss[.f][Z|+hh:mm])",
    )
