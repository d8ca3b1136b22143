"""Records written by Telegraf's ``json`` serializer (``data_format = "json"``).

One metric:

.. code-block:: json

    {"fields": {"usage_idle": 99.1, "up": true}, "name": "cpu",
     "tags": {"cpu": "cpu-total", "host": "h"}, "timestamp": 1458229140}

or, with ``use_batch_format = true``, several: ``{"metrics": [{...}, {...}]}``.

Every numeric field becomes a point of the stream ``<name>_<field>`` (the naming
of Telegraf's Prometheus serializer), labelled with the tags (tag keys that are not
valid label names are renamed as that serializer does: ``k8s.pod-name`` becomes
``k8s_pod_name``). Booleans, strings
and other non-numeric fields are skipped. The timestamp is an epoch number in
whatever ``json_timestamp_units`` says (the unit is told by its magnitude) or,
with ``json_timestamp_format``, an RFC 3339 string. Members this module does
not know are ignored.
"""

from __future__ import annotations

from typing import Any

from monitor.records.base import Point
from monitor.records.exceptions import RecordRejected
from monitor.records.timestamps import parse_timestamp
from monitor.records.validate import check_labels, check_name, check_value, kind, load_object, show


def decode_telegraf(payload: bytes) -> list[Point]:
    """Decode one Telegraf JSON record (a metric or a batch) into points.

    Parameters
    ----------
    payload
        The record value: UTF-8 JSON ``{"name", "fields", "timestamp"[, "tags"]}``
        or ``{"metrics": [...]}`` of such objects.

    Returns
    -------
    list of Point
        One point per numeric field, metric by metric, fields in record order.

    Raises
    ------
    RecordRejected
        With one of the reasons of :mod:`monitor.records.validate`; never any
        other exception. In a batch, one invalid metric rejects the whole
        record, and the detail starts with ``metrics[i]:``.

    Examples
    --------
    >>> for p in decode_telegraf(b'{"fields": {"usage_idle": 99.1, "x": "str", "up": true,'
    ...                          b' "n": 3}, "name": "cpu", "tags": {"host": "h"},'
    ...                          b' "timestamp": 1458229140}'):
    ...     print(p)
    Point(name='cpu_usage_idle', labels=(('host', 'h'),), ts=1458229140.0, value=99.1)
    Point(name='cpu_n', labels=(('host', 'h'),), ts=1458229140.0, value=3.0)
    >>> decode_telegraf(b'{"fields": {"up": true}, "name": "cpu", "timestamp": 1458229140}')
    Traceback (most recent call last):
    ...
    monitor.records.exceptions.RecordRejected: no_numeric_fields: metric 'cpu' has no \
numeric field
    """
    obj = load_object(payload)
    points: list[Point] = []
    if "metrics" not in obj:
        _decode_metric(obj, points)
        return points
    metrics = obj["metrics"]
    if type(metrics) is not list or not metrics:
        raise RecordRejected(
            "bad_batch", f"'metrics' must be a non-empty array of objects, got {_describe(metrics)}"
        )
    for i, metric in enumerate(metrics):
        if type(metric) is not dict:
            raise RecordRejected("bad_batch", f"metrics[{i}] must be an object, got {kind(metric)}")
        try:
            _decode_metric(metric, points)
        except RecordRejected as err:
            raise RecordRejected(err.reason, f"metrics[{i}]: {err.detail}") from None
    return points


def _describe(value: object) -> str:
    return "an empty array" if value == [] else kind(value)


def _decode_metric(metric: dict[str, Any], out: list[Point]) -> None:
    try:
        name = metric["name"]
        fields = metric["fields"]
        ts = metric["timestamp"]
    except KeyError as err:
        raise RecordRejected("missing_field", f"field {err.args[0]!r} is required") from None
    name = check_name(name)
    tags = metric.get("tags")
    labels = () if tags is None else check_labels(tags, "tags", rename=True)
    seconds = parse_timestamp(ts)
    if type(fields) is not dict:
        raise RecordRejected("bad_value", f"'fields' must be an object, got {kind(fields)}")
    start = len(out)
    for key, value in fields.items():
        t = type(value)
        if t is float or t is int:  # not bool: type(True) is bool
            try:
                point = Point(
                    check_name(f"{name}_{key}", "stream name"), labels, seconds, check_value(value)
                )
            except RecordRejected as err:
                raise RecordRejected(err.reason, f"field {show(key)}: {err.detail}") from None
            out.append(point)
    if len(out) == start:
        raise RecordRejected("no_numeric_fields", f"metric {show(name)} has no numeric field")
