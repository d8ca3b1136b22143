"""Settings every daemon started by a test shares."""

from __future__ import annotations

from typing import Any

TEST_CONSUMER: dict[str, Any] = {
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 1000,
    "poll_timeout_ms": 100,
}
"""Consumer timings of a test daemon's ``kafka`` section. The embedded broker holds a
group join for about half the session timeout (kafka-python's default 45 s would make
a 23 s join), so 6 s makes it 3 s, with a heartbeat every second; a poll returns
within 100 ms, so a stop is quick."""
