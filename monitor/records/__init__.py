"""Decoding and validation of input records, one decoder per record format.

>>> decode = get_decoder("native")
>>> decode(b'{"stream": "cpu", "ts": 1700000000, "value": 1}')[0].key
'cpu'
"""

from __future__ import annotations

from monitor.records.base import Decoder, Labels, Point, stream_key
from monitor.records.exceptions import RecordRejected, RecordSkipped
from monitor.records.native import decode_native
from monitor.records.prometheus_adapter import decode_prometheus_adapter
from monitor.records.telegraf import decode_telegraf
from monitor.records.timestamps import parse_timestamp
from monitor.records.validate import REASONS, SKIP_REASONS

__all__ = [
    "DECODERS",
    "FORMATS",
    "REASONS",
    "Decoder",
    "Labels",
    "Point",
    "RecordRejected",
    "RecordSkipped",
    "SKIP_REASONS",
    "decode_native",
    "decode_prometheus_adapter",
    "decode_telegraf",
    "get_decoder",
    "parse_timestamp",
    "stream_key",
]

FORMATS: tuple[str, ...] = ("native", "prometheus-kafka-adapter", "telegraf")
"""The record formats, as named by the ``kafka.format`` configuration key."""

DECODERS: dict[str, Decoder] = {
    "native": decode_native,
    "prometheus-kafka-adapter": decode_prometheus_adapter,
    "telegraf": decode_telegraf,
}
"""Format name -> decoder."""


def get_decoder(fmt: str) -> Decoder:
    """Return the decoder of the record format ``fmt``.

    Parameters
    ----------
    fmt
        One of :data:`FORMATS`.

    Raises
    ------
    ValueError
        If ``fmt`` is not a known format; the message lists the valid ones.

    Examples
    --------
    >>> get_decoder("telegraf") is decode_telegraf
    True
    >>> get_decoder("avro")
    Traceback (most recent call last):
    ...
    ValueError: unknown record format 'avro'; expected one of: native, \
prometheus-kafka-adapter, telegraf
    """
    decoder = DECODERS.get(fmt) if isinstance(fmt, str) else None
    if decoder is None:
        raise ValueError(f"unknown record format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    return decoder
