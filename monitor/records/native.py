"""The monitor's own record format: one JSON object per point.

.. code-block:: json

    {"stream": "cpu.host-1", "ts": 1700000000.0, "value": 0.93, "labels": {"host": "host-1"}}

``stream``, ``ts`` and ``value`` are required; ``labels`` is optional (``null``
counts as absent). The format is strict: any other member is rejected as
``unknown_field``.
"""

from __future__ import annotations

from typing import Any

from monitor.records.base import Point
from monitor.records.exceptions import RecordRejected
from monitor.records.timestamps import parse_timestamp
from monitor.records.validate import check_labels, check_name, check_value, load_object, show

_FIELDS = frozenset({"stream", "ts", "value", "labels"})


def decode_native(payload: bytes) -> list[Point]:
    """Decode one native record into its single point.

    Parameters
    ----------
    payload
        The record value: UTF-8 JSON ``{"stream", "ts", "value"[, "labels"]}``.
        ``ts`` is an epoch number (unit told by magnitude) or an ISO-8601 string,
        see :func:`monitor.records.timestamps.parse_timestamp`.

    Returns
    -------
    list of Point
        Exactly one point.

    Raises
    ------
    RecordRejected
        With one of the reasons of :mod:`monitor.records.validate`; never any
        other exception.

    Examples
    --------
    >>> decode_native(b'{"stream": "cpu.host-1", "ts": 1700000000.0, "value": 0.93,'
    ...               b' "labels": {"host": "host-1"}}')
    [Point(name='cpu.host-1', labels=(('host', 'host-1'),), ts=1700000000.0, value=0.93)]
    >>> decode_native(b'{"stream": "q", "ts": "2024-05-01T12:00:00Z", "value": 1}')
    [Point(name='q', labels=(), ts=1714564800.0, value=1.0)]
    >>> decode_native(b'{"stream": "q", "ts": 1, "value": 1, "unit": "s"}')
    Traceback (most recent call last):
    ...
    monitor.records.exceptions.RecordRejected: unknown_field: unknown field(s) 'unit'; \
allowed: labels, stream, ts, value
    """
    return [native_point(load_object(payload))]


def native_point(obj: dict[str, Any]) -> Point:
    """The point of a decoded native record (:func:`decode_native` after the JSON).

    >>> native_point({"stream": "q", "ts": 60, "value": 2})
    Point(name='q', labels=(), ts=60.0, value=2.0)
    """
    if not obj.keys() <= _FIELDS:
        extra = ", ".join(show(k) for k in sorted(obj.keys() - _FIELDS))
        raise RecordRejected(
            "unknown_field", f"unknown field(s) {extra}; allowed: {', '.join(sorted(_FIELDS))}"
        )
    try:
        stream = obj["stream"]
        ts = obj["ts"]
        value = obj["value"]
    except KeyError as err:
        raise RecordRejected("missing_field", f"field {err.args[0]!r} is required") from None
    labels = obj.get("labels")
    return Point(
        check_name(stream, "stream"),
        () if labels is None else check_labels(labels),
        parse_timestamp(ts),
        check_value(value),
    )
