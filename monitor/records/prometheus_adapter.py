"""Records written by Telefonica's prometheus-kafka-adapter (JSON serialization).

.. code-block:: json

    {"timestamp": "1970-01-01T00:00:00Z", "value": "9876543210", "name": "up",
     "labels": {"__name__": "up", "job": "x"}}

The adapter formats the sample value with Go's ``strconv.FormatFloat`` into a
string, and the timestamp as RFC 3339. ``"NaN"`` is what Prometheus sends in
normal operation (staleness markers, NaN results): such a record is skipped
(:class:`RecordSkipped`, reason ``nan``), not rejected; ``"+Inf"`` and ``"-Inf"``
are rejected as ``bad_value``. ``labels.__name__`` repeats
``name`` and is dropped. Members this module does not know are ignored, since
newer adapter versions may add some.
"""

from __future__ import annotations

from monitor.records.base import Point
from monitor.records.exceptions import RecordRejected, RecordSkipped
from monitor.records.timestamps import parse_timestamp
from monitor.records.validate import (
    MAX_ABS_VALUE,
    check_labels,
    check_name,
    check_value,
    load_object,
    show,
)

_NAME_LABEL = "__name__"


def decode_prometheus_adapter(payload: bytes) -> list[Point]:
    """Decode one prometheus-kafka-adapter record into its single point.

    Parameters
    ----------
    payload
        The record value: UTF-8 JSON with ``name``, ``value`` (a decimal
        string, or a JSON number), ``timestamp`` (RFC 3339 string, or an epoch
        number) and optionally ``labels``.

    Returns
    -------
    list of Point
        Exactly one point.

    Raises
    ------
    RecordRejected
        With one of the reasons of :mod:`monitor.records.validate`; never any
        other exception. A ``labels.__name__`` that differs from ``name`` is
        ``bad_labels``. A ``"NaN"`` value raises its subclass :class:`RecordSkipped`
        (reason ``nan``): a Prometheus staleness marker, not an error.

    Examples
    --------
    >>> decode_prometheus_adapter(
    ...     b'{"timestamp": "2024-05-01T12:00:00Z", "value": "9876543210", "name": "up",'
    ...     b' "labels": {"__name__": "up", "job": "x"}}')
    [Point(name='up', labels=(('job', 'x'),), ts=1714564800.0, value=9876543210.0)]
    >>> decode_prometheus_adapter(
    ...     b'{"timestamp": "2024-05-01T12:00:00Z", "value": "+Inf", "name": "up"}')
    Traceback (most recent call last):
    ...
    monitor.records.exceptions.RecordRejected: bad_value: value must be finite \
with magnitude at most 1e+300, got '+Inf'
    """
    obj = load_object(payload)
    try:
        name = obj["name"]
        ts = obj["timestamp"]
        value = obj["value"]
    except KeyError as err:
        raise RecordRejected("missing_field", f"field {err.args[0]!r} is required") from None
    name = check_name(name)
    labels = obj.get("labels")
    if labels is None:
        pairs: tuple[tuple[str, str], ...] = ()
    else:
        if type(labels) is dict:
            dup = labels.get(_NAME_LABEL, name)
            if dup != name:
                raise RecordRejected(
                    "bad_labels",
                    f"labels: {_NAME_LABEL} {show(dup)} differs from name {show(name)}",
                )
        pairs = check_labels(labels, skip=_NAME_LABEL)
    return [Point(name, pairs, parse_timestamp(ts), _parse_value(value))]


def _parse_value(value: object) -> float:
    if type(value) is not str:
        return check_value(value)  # tolerate a JSON number
    if value == "NaN":  # as Go writes it: a staleness marker or a NaN result
        raise RecordSkipped("nan", "NaN sample (a Prometheus staleness marker or NaN result)")
    # Go's strconv.FormatFloat writes ASCII digits, sign, ".", "e", or
    # "NaN"/"+Inf"/"-Inf". Python's float() also takes "1_000", " 1 " and
    # non-ASCII digits, which the adapter never writes: reject those.
    if value.isascii() and "_" not in value and value.strip() == value:
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            if -MAX_ABS_VALUE <= number <= MAX_ABS_VALUE:  # False for NaN
                return number
            raise RecordRejected(
                "bad_value",
                f"value must be finite with magnitude at most {MAX_ABS_VALUE:g}, got {show(value)}",
            )
    raise RecordRejected("bad_value", f"value {show(value)} is not a decimal number")
