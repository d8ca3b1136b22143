"""The envelope a rejected record is written in to the dead-letter topic."""

from __future__ import annotations

import base64

import orjson


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
    for name, raw in (("key", key), ("value", payload)):
        if raw is None:
            envelope[name] = None
            continue
        try:
            envelope[name] = raw.decode("utf-8")
        except UnicodeDecodeError:
            envelope[f"{name}_base64"] = base64.b64encode(raw).decode("ascii")
    return orjson.dumps(envelope)
