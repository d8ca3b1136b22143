"""Validation shared by every record decoder, and the list of reject reasons.

Every rejected record carries one of these stable ``lower_snake_case`` codes
as :attr:`RecordRejected.reason <monitor.records.exceptions.RecordRejected>`:

``empty``
    The payload is empty (zero bytes, or a Kafka tombstone with no value).
``not_json``
    The payload is not valid JSON: a syntax error, invalid UTF-8, a lone UTF-16
    surrogate escape, a UTF-8 byte order mark, a ``NaN``/``Infinity`` token, a
    number literal outside the double range (``1e400``), or nesting deeper than
    the parser's limit.
``not_object``
    The top level of the payload is valid JSON but not an object.
``missing_field``
    A required field is absent.
``unknown_field``
    A field the (strict) native format does not define is present.
``bad_name``
    The stream or metric name is not a string of 1 to 256 characters without
    control characters (Unicode category ``Cc``).
``bad_labels``
    The labels (or Telegraf tags) are not an object of at most 32 string to
    string entries; or a label name does not match ``[a-zA-Z_][a-zA-Z0-9_]*``,
    is longer than 256 characters or starts with ``__``; or a label value is
    longer than 1024 characters or contains a control character other than
    ``\\n``. Quotes, backslashes, braces and newlines in label *values* are
    legal: they are escaped at exposition.
``bad_value``
    The value is not a JSON number (booleans, strings, ``null`` are rejected;
    the Prometheus adapter's decimal strings are the one exception), is not
    finite, or its magnitude exceeds ``1e300``. Also a Telegraf ``fields``
    member that is not an object.
``bad_timestamp``
    The timestamp is not a number or an ISO-8601/RFC 3339 string, or it is
    negative, not finite, or after the year 9999
    (see :func:`monitor.records.timestamps.parse_timestamp`).
``no_numeric_fields``
    A Telegraf metric has no numeric field.
``bad_batch``
    The ``metrics`` member of a Telegraf batch is not a non-empty array of
    objects.

When a record has several problems the first one found is reported; the order
is: ``empty``, ``not_json``, ``not_object``, ``unknown_field``,
``missing_field``, then the fields in the order name, labels, timestamp, value.

Examples
--------
>>> sorted(REASONS)[:3]
['bad_batch', 'bad_labels', 'bad_name']
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from monitor.records.base import Labels
from monitor.records.exceptions import RecordRejected

REASONS: frozenset[str] = frozenset(
    {
        "empty",
        "not_json",
        "not_object",
        "missing_field",
        "unknown_field",
        "bad_name",
        "bad_labels",
        "bad_value",
        "bad_timestamp",
        "no_numeric_fields",
        "bad_batch",
    }
)
"""Every reason a decoder can reject a record with."""

SKIP_REASONS: frozenset[str] = frozenset({"nan"})
"""Every reason a decoder can skip a well-formed record with (:class:`RecordSkipped`):
``nan``, a Prometheus NaN sample (a staleness marker or a NaN result)."""

MAX_NAME_LEN = 256
"""Longest stream or metric name, in characters."""
MAX_LABELS = 32
"""Most labels per record."""
MAX_LABEL_NAME_LEN = 256
"""Longest label name, in characters."""
MAX_LABEL_VALUE_LEN = 1024
"""Longest label value, in characters."""
MAX_ABS_VALUE = 1e300
"""Largest accepted magnitude of a value."""

# Unicode category Cc: C0 controls, DEL and C1 controls.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# The same minus "\n", which label values may contain.
_VALUE_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_SHOW_LEN = 60


def show(value: object) -> str:
    """Return a short ``repr`` of ``value`` for a rejection detail.

    Long representations are cut so a hostile record cannot bloat logs or
    the dead-letter envelope.

    Examples
    --------
    >>> show("cpu")
    "'cpu'"
    >>> show("x" * 100)
    "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx..."
    """
    text = repr(value)
    if len(text) > _SHOW_LEN:
        return text[:_SHOW_LEN] + "..."
    return text


def kind(value: object) -> str:
    """Name the JSON type of a decoded value, for rejection details.

    Examples
    --------
    >>> kind(None), kind(True), kind(1), kind(1.5), kind("s"), kind([]), kind({})
    ('null', 'boolean', 'number', 'number', 'string', 'array', 'object')
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def load_object(payload: bytes) -> dict[str, Any]:
    """Parse ``payload`` as JSON whose top level is an object.

    Parameters
    ----------
    payload
        The raw record value. ``None`` (a Kafka tombstone) counts as empty.

    Returns
    -------
    dict
        The decoded object.

    Raises
    ------
    RecordRejected
        ``empty``, ``not_json`` or ``not_object``.

    Examples
    --------
    >>> load_object(b'{"a": 1}')
    {'a': 1}
    >>> load_object(b'[1]')
    Traceback (most recent call last):
    ...
    monitor.records.exceptions.RecordRejected: not_object: expected a JSON object, got array
    """
    if not payload:
        raise RecordRejected("empty", "the record has no payload")
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as err:  # also raised for a payload of the wrong type
        raise RecordRejected("not_json", f"invalid JSON: {err}") from None
    if type(obj) is not dict:
        raise RecordRejected("not_object", f"expected a JSON object, got {kind(obj)}")
    return obj


def check_name(name: object, field: str = "name") -> str:
    """Return ``name`` if it is a valid stream or metric name.

    A valid name is a string of 1 to :data:`MAX_NAME_LEN` characters without
    control characters.

    Parameters
    ----------
    name
        The decoded JSON value.
    field
        What ``name`` is, for the rejection detail.

    Raises
    ------
    RecordRejected
        ``bad_name``.

    Examples
    --------
    >>> check_name("cpu.host-1")
    'cpu.host-1'
    >>> check_name("cpu\\x00", "stream")
    Traceback (most recent call last):
    ...
    monitor.records.exceptions.RecordRejected: bad_name: stream contains a control character
    """
    if type(name) is not str:
        raise RecordRejected("bad_name", f"{field} must be a string, got {kind(name)}")
    if not 0 < len(name) <= MAX_NAME_LEN:
        raise RecordRejected(
            "bad_name",
            f"{field} must have 1 to {MAX_NAME_LEN} characters, got {len(name)}",
        )
    if not name.isprintable() and _CONTROL.search(name) is not None:
        raise RecordRejected("bad_name", f"{field} contains a control character")
    return name


def check_labels(
    labels: object, field: str = "labels", skip: str | None = None, rename: bool = False
) -> Labels:
    """Return ``labels`` as a sorted tuple of pairs if they are valid.

    Parameters
    ----------
    labels
        The decoded JSON value: an object of string label names to string values.
    field
        What ``labels`` is, for the rejection detail ("labels", "tags").
    skip
        A label name to leave out of the result without validating it (the
        Prometheus adapter's ``__name__``).
    rename
        Turn names that are not valid label names into valid ones, as Telegraf's
        Prometheus serializer does (:func:`label_name`), instead of rejecting them;
        two names that become the same are rejected.

    Raises
    ------
    RecordRejected
        ``bad_labels``.

    Examples
    --------
    >>> check_labels({"host": "h1", "dc": 'eu "west"'})
    (('dc', 'eu "west"'), ('host', 'h1'))
    >>> check_labels({'a"}': "x"})
    Traceback (most recent call last):
    ...
    monitor.records.exceptions.RecordRejected: bad_labels: labels: invalid label name 'a"}'
    """
    if type(labels) is not dict:
        raise RecordRejected("bad_labels", f"{field} must be an object, got {kind(labels)}")
    # A stream sends the same labels with every point: the result for the same items (in
    # the same order) is looked up instead of checked, and every point of the stream
    # shares one tuple. Besides the checks this saves the batch's surviving tuples, which
    # the garbage collector would otherwise traverse again and again.
    try:
        key: object = tuple(labels.items())
        if skip is not None or rename:
            key = (skip, rename, key)
        known = _VALID_LABELS.get(key)
    except TypeError:  # an unhashable value (array or object): invalid, reported below
        return _validate_labels(labels, field, skip)
    if known is not None:
        return known
    result = _validate_labels(_renamed(labels, field) if rename else labels, field, skip)
    if len(_VALID_LABELS) >= _MAX_VALID_LABELS:
        _VALID_LABELS.clear()
    _VALID_LABELS[key] = result
    return result


# Label sets already found valid -> their result. Cleared when full, so hostile records
# cannot grow it without limit: at most 131,072 entries of about 250 bytes.
_VALID_LABELS: dict[object, Labels] = {}
_MAX_VALID_LABELS = 1 << 17


def label_name(name: str) -> str:
    """A valid label name for ``name``: other characters become ``_``, a leading digit
    gets a ``_`` in front (Telegraf's Prometheus serializer does the same).

    >>> label_name("k8s.pod-name"), label_name("2xx"), label_name("host")
    ('k8s_pod_name', '_2xx', 'host')
    """
    renamed = _NOT_LABEL_CHAR.sub("_", name)
    return f"_{renamed}" if renamed[:1].isdigit() else renamed


_NOT_LABEL_CHAR = re.compile(r"[^a-zA-Z0-9_]")


def _renamed(labels: dict[Any, Any], field: str) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for k, v in labels.items():
        name = label_name(k) if type(k) is str and k else k
        if name in out:
            raise RecordRejected(
                "bad_labels", f"{field}: {show(k)} and another name both become {show(name)}"
            )
        out[name] = v
    return out


def _validate_labels(labels: dict[Any, Any], field: str, skip: str | None) -> Labels:
    has_skip = skip is not None and skip in labels
    count = len(labels) - has_skip
    if count > MAX_LABELS:
        raise RecordRejected(
            "bad_labels", f"{field}: at most {MAX_LABELS} labels are allowed, got {count}"
        )
    known = _KNOWN_LABEL_NAMES
    for k, v in labels.items():
        if k not in known:
            if has_skip and k == skip:
                continue
            _check_label_name(k, field)
        if type(v) is not str or len(v) > MAX_LABEL_VALUE_LEN:
            raise _bad_label_value(k, v, field)
        if not v.isprintable() and _VALUE_CONTROL.search(v) is not None:
            raise RecordRejected(
                "bad_labels", f"{field}: value of {k!r} contains a control character"
            )
    if has_skip:
        return tuple(sorted(item for item in labels.items() if item[0] != skip))
    if count < 2:
        return tuple(labels.items())
    return tuple(sorted(labels.items()))


# Label names already found valid: a set lookup instead of four string checks on
# the hot path. Bounded, so hostile records cannot grow it without limit.
_KNOWN_LABEL_NAMES: set[str] = set()
_MAX_KNOWN_LABEL_NAMES = 10_000


def _check_label_name(k: object, field: str) -> None:
    if (
        type(k) is not str
        or not k.isascii()
        or not k.isidentifier()  # for ASCII: [a-zA-Z_][a-zA-Z0-9_]*
        or k.startswith("__")
        or len(k) > MAX_LABEL_NAME_LEN
    ):
        raise RecordRejected("bad_labels", f"{field}: invalid label name {show(k)}")
    if len(_KNOWN_LABEL_NAMES) < _MAX_KNOWN_LABEL_NAMES:
        _KNOWN_LABEL_NAMES.add(k)


def _bad_label_value(k: str, v: object, field: str) -> RecordRejected:
    if type(v) is not str:
        return RecordRejected(
            "bad_labels", f"{field}: value of {k!r} must be a string, got {kind(v)}"
        )
    return RecordRejected(
        "bad_labels",
        f"{field}: value of {k!r} has {len(v)} characters, "
        f"at most {MAX_LABEL_VALUE_LEN} are allowed",
    )


def check_value(value: object, field: str = "value") -> float:
    """Return ``value`` as a float if it is a finite number of magnitude <= 1e300.

    Parameters
    ----------
    value
        The decoded JSON value; booleans and strings are not numbers.
    field
        What ``value`` is, for the rejection detail.

    Raises
    ------
    RecordRejected
        ``bad_value``.

    Examples
    --------
    >>> check_value(3), check_value(-0.5)
    (3.0, -0.5)
    >>> check_value(True)
    Traceback (most recent call last):
    ...
    monitor.records.exceptions.RecordRejected: bad_value: value must be a number, got boolean
    """
    t = type(value)
    if t is float or t is int:
        # Comparisons are False for NaN; an int compares exactly with 1e300.
        if -MAX_ABS_VALUE <= value <= MAX_ABS_VALUE:  # type: ignore[operator]
            return float(value)  # type: ignore[arg-type]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if -MAX_ABS_VALUE <= value <= MAX_ABS_VALUE:
            return float(value)
    else:
        raise RecordRejected("bad_value", f"{field} must be a number, got {kind(value)}")
    raise RecordRejected(
        "bad_value",
        f"{field} must be finite with magnitude at most {MAX_ABS_VALUE:g}, got {show(value)}",
    )
