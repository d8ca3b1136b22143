"""Whether the daemon can reach Kafka: the ``monitor_kafka_up`` gauge and the outage log lines.

The verdict comes from the daemon's own consumer, not from a separate probe: a
consumer in a group is never silent for long while a broker answers. Its fetches
are answered within ``fetch_max_wait_ms`` (500 ms) even when there is nothing to
read, and its heartbeats every ``kafka.heartbeat_interval_ms``. So:

* ``monitor_kafka_up`` reads **0** when the consumer's client has read no byte from
  any broker for ``down_after`` seconds: the larger of 10 s and the group's session
  timeout (``kafka.session_timeout_ms``). That is what a stopped or paused broker, a
  dropped network, connections reset on arrival, or a broker that accepts
  connections but never answers look like. Before the first byte, the silence is
  counted from the start of the daemon, so a cluster unreachable from the start
  also reads 0 after ``down_after``.
* It reads **1** as soon as a byte arrives again, and whenever the last one is
  younger than ``down_after``.

The verdict is taken at each scrape (the gauge is computed, so it is right even
while the loop is blocked retrying a delivery) and once per loop iteration. On
each change one line is logged: ``kafka unreachable since <time> (...)`` (error)
when it goes to 0, and ``kafka reachable again after N s`` (warning) when it goes
back to 1, where N counts from the last byte before the outage.

The time of the last read comes from the consumer and the producer: kafka-python's
``bytes-received`` sensor, or, with the confluent transport, librdkafka's per-broker
``rxidle`` statistics (reported every second, served by the consumer's poll and the
producer's flush).

Limits: a group join that the coordinator holds for longer than ``down_after``
(while another member is slow to rejoin) reads 0 too, and clients that report no
reads at all are not judged: the gauge stays 1.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from monitor.config.schema import KafkaConfig

log = logging.getLogger("monitor.daemon")

MIN_DOWN_AFTER_S = 10.0
"""Least silence, in seconds, that counts as an outage."""


class KafkaHealth:
    """Judges Kafka reachable or not from the time of the client's last read.

    Parameters
    ----------
    last_read
        Returns the time (on ``clock``) of the client's last read from any broker,
        or ``None`` before the first one.
    down_after
        Seconds of silence after which Kafka counts as unreachable.
    clock
        Monotonic clock in seconds, the one ``last_read`` uses.
    wall_clock
        Epoch seconds, only to print when the outage began.

    Examples
    --------
    >>> now = [100.0]
    >>> last = [None]
    >>> health = KafkaHealth(lambda: last[0], down_after=10.0, clock=lambda: now[0])
    >>> health.check()  # silent for 0 s since the start
    True
    >>> now[0] = 111.0
    >>> health.check(), health.up
    (False, False)
    >>> last[0] = 112.0; now[0] = 112.5
    >>> health.check()
    True
    """

    def __init__(
        self,
        last_read: Callable[[], float | None],
        down_after: float,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if not down_after > 0:
            raise ValueError(f"down_after must be > 0 seconds, got {down_after!r}")
        self.last_read = last_read
        self.down_after = down_after
        self.clock = clock
        self.wall_clock = wall_clock
        self.up = True
        self._started = clock()
        self._silent_since = self._started
        self._lock = threading.Lock()

    def check(self) -> bool:
        """Take the verdict now, log a change, and return whether Kafka is reachable."""
        with self._lock:
            now = self.clock()
            last = self.last_read()
            since = self._started if last is None else max(last, self._started)
            up = now - since < self.down_after
            if up == self.up:
                return up
            self.up = up
            if not up:
                self._silent_since = since
                began = self.wall_clock() - (now - since)
                log.error(
                    "kafka unreachable since %s (no answer from any broker for %.0f s)",
                    datetime.fromtimestamp(began, UTC).isoformat(timespec="seconds"),
                    now - since,
                )
            else:
                log.warning("kafka reachable again after %.0f s", since - self._silent_since)
            return up

    def value(self) -> float:
        """The gauge's value: 1.0 when reachable, 0.0 when not (takes the verdict)."""
        return 1.0 if self.check() else 0.0


def down_after(kafka: KafkaConfig) -> float:
    """Seconds of silence that count as an outage: the session timeout, 10 s at least.

    >>> down_after(KafkaConfig(session_timeout_ms=6000))
    10.0
    >>> down_after(KafkaConfig(session_timeout_ms=30000))
    30.0
    """
    return max(MIN_DOWN_AFTER_S, kafka.session_timeout_ms / 1000)


def kafka_python_last_read(client: Any) -> Callable[[], float | None] | None:
    """``last_read`` of a kafka-python client: its ``bytes-received`` sensor's last record.

    kafka-python records every read from a broker socket in that sensor, on
    ``time.monotonic``. Returns ``None`` for a client without kafka-python metrics.
    """
    metrics = getattr(client, "_metrics", None)
    if metrics is None or not hasattr(metrics, "get_sensor"):
        return None

    def last_read() -> float | None:
        sensor = metrics.get_sensor("bytes-received")
        recorded = getattr(sensor, "_last_record_time", None)
        if recorded is None or not math.isfinite(recorded):
            return None
        return float(recorded) / 1000

    return last_read


def client_last_read(client: Any) -> Callable[[], float | None] | None:
    """``last_read`` of a client: its own ``last_read`` (the confluent transport's
    :class:`~monitor.kafka.confluent.LastRead`), else kafka-python's metrics, else None."""
    own = getattr(client, "last_read", None)
    if callable(own):
        return own
    return kafka_python_last_read(client)


def watch_kafka(
    consumer: Any, kafka: KafkaConfig, gauge: Any, producer: Any = None
) -> KafkaHealth | None:
    """Judge the clients' reachability into ``gauge`` (a prometheus-client ``Gauge``).

    Kafka is reachable while the consumer or the producer has read from a broker
    recently. Returns the :class:`KafkaHealth` to :meth:`~KafkaHealth.check` once per
    loop iteration, or ``None`` (the gauge stays 1) when neither client can be judged.
    """
    readers = [r for r in map(client_last_read, (consumer, producer)) if r is not None]
    if not readers:
        gauge.set(1)
        return None

    def last_read() -> float | None:
        times = [t for t in (read() for read in readers) if t is not None]
        return max(times) if times else None

    health = KafkaHealth(last_read, down_after(kafka))
    gauge.set_function(health.value)
    return health
