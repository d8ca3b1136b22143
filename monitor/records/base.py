"""The decoded form of an input record: one or more points of metric streams."""

from __future__ import annotations

from typing import NamedTuple, Protocol

Labels = tuple[tuple[str, str], ...]


def stream_key(name: str, labels: Labels) -> str:
    """Return the identity of a stream: its name plus its sorted labels.

    The form ``name{k=v,k2=v2}`` reads like a Prometheus series but has no quotes,
    so it can be written inside a PromQL string (``stream="cpu{host=h1}"``) and
    a Grafana variable as it is. Label values are backslash-escaped where they
    hold ``\\ , = } "`` or a newline, and names where they hold ``\\`` or ``{``,
    so two different streams never share a key.

    >>> stream_key("cpu", (("host", "h1"), ("dc", "eu")))
    'cpu{dc=eu,host=h1}'
    >>> stream_key("cpu", ())
    'cpu'
    >>> stream_key("cpu", (("a", "x,b=y"),)) != stream_key("cpu", (("a", "x"), ("b", "y")))
    True
    >>> print(stream_key("cpu{host=h1}", ()))  # a name that looks like a key is not one
    cpu\\{host=h1}
    """
    if not labels:
        return _escape_name(name)
    # Every point of a stream asks for the same key: look it up instead of building it.
    try:
        key = _KEYS.get((name, labels))
    except TypeError:  # labels given as a list: nothing to cache by
        return _make_key(name, labels)
    if key is None:
        key = _make_key(name, labels)
        if len(_KEYS) >= _MAX_KEYS:
            _KEYS.clear()
        _KEYS[(name, labels)] = key
    return key


# (name, labels) -> key. Cleared when full, so a flood of new stream names cannot grow it
# without limit: at most 131,072 entries (more than the default streams.max_streams), about
# 150 bytes each for live streams (the strings are the stream table's) and at most 50 MB
# when it holds only evicted ones.
_KEYS: dict[tuple[str, Labels], str] = {}
_MAX_KEYS = 1 << 17


def _make_key(name: str, labels: Labels) -> str:
    inner = ",".join(f"{k}={_escape(v)}" for k, v in sorted(labels))
    return f"{_escape_name(name)}{{{inner}}}"


def _escape_name(name: str) -> str:
    """``name`` with ``\\`` and ``{`` escaped: the first bare ``{`` of a key opens its labels."""
    if "{" not in name and "\\" not in name:
        return name
    return name.replace("\\", "\\\\").replace("{", "\\{")


_ESCAPES = str.maketrans(
    {"\\": "\\\\", ",": "\\,", "=": "\\=", "}": "\\}", '"': '\\"', "\n": "\\n"}
)


def _escape(value: str) -> str:
    return value.translate(_ESCAPES)


class Point(NamedTuple):
    """One observation of one metric stream.

    ``labels`` are sorted by name; ``ts`` is seconds since the Unix epoch (UTC);
    ``value`` is finite. Immutable; a named tuple rather than a frozen dataclass
    because every record makes one and a tuple is built in half the time
    (``benchmarks/decode_cost.py``).

    >>> p = Point("cpu.host-1", (("host", "host-1"),), 1700000000.0, 0.93)
    >>> p.key
    'cpu.host-1{host=host-1}'
    """

    name: str
    labels: Labels
    ts: float
    value: float

    @property
    def key(self) -> str:
        return stream_key(self.name, self.labels)


class Decoder(Protocol):
    """Turns the bytes of one Kafka record value into points.

    Raises :class:`monitor.records.exceptions.RecordRejected` when the record
    cannot be decoded or validated; never any other exception.
    """

    def __call__(self, payload: bytes) -> list[Point]: ...
