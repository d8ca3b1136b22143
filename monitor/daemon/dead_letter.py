"""The envelope a rejected record is written in to the dead-letter topic."""

from __future__ import annotations

import base64

import orjson

MAX_VALUE_BYTES = 262_144
"""Bytes of a rejected record kept in its dead letter (base64 makes 350 KB of them at most),
so the envelope stays under the producer's 1 MB request limit: an oversize record must not
become an undeliverable dead letter that blocks the partition's commits."""


def dead_letter(
    payload: bytes | None,
    key: bytes | None,
    reason: str,
    detail: str,
    topic: str,
    partition: int,
    offset: int,
) -> bytes:
    """JSON envelope of a rejected record: where it came from, why, and the record itself.

    The record's bytes are kept as text when they are valid UTF-8, else as base64.
    Only the first :data:`MAX_VALUE_BYTES` of a longer value are kept, and
    ``value_bytes`` gives its full size.

    >>> import json
    >>> envelope = json.loads(dead_letter(b"\\xff", None, "not_json", "bad", "metrics", 0, 42))
    >>> envelope["reason"], envelope["offset"], envelope["value_base64"]
    ('not_json', 42, '/w==')
    """
    envelope: dict[str, object] = {
        "reason": reason,
        "detail": detail[:1000],
        "topic": topic,
        "partition": partition,
        "offset": offset,
    }
    if payload is not None and len(payload) > MAX_VALUE_BYTES:
        envelope["value_bytes"] = len(payload)
        payload = payload[:MAX_VALUE_BYTES]
    for name, raw in (("key", key), ("value", payload)):
        if raw is None:
            envelope[name] = None
            continue
        try:
            envelope[name] = raw.decode("utf-8")
        except UnicodeDecodeError:
            envelope[f"{name}_base64"] = base64.b64encode(raw).decode("ascii")
    return orjson.dumps(envelope)
