"""Wire a daemon to real Kafka clients, a metrics endpoint and signal handlers."""

from __future__ import annotations

import gc
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from prometheus_client import CollectorRegistry

from monitor.config.schema import MonitorConfig
from monitor.daemon.loop import Daemon
from monitor.kafka.admin import ensure_topics
from monitor.kafka.client import client_settings
from monitor.kafka.exceptions import KafkaSetupError
from monitor.kafka.transport import build_clients
from monitor.metrics import DaemonMetrics, StreamCollector
from monitor.metrics.http import serve_metrics

log = logging.getLogger("monitor.daemon")


def output_topics(config: MonitorConfig) -> dict[str, int]:
    """Topics the daemon writes to, with the partition count used when creating them."""
    topics = {config.events.topic: config.events.partitions}
    if config.dead_letter.enabled:
        topics[config.dead_letter.topic] = config.dead_letter.partitions
    return topics


def build_daemon(
    config: MonitorConfig, registry: CollectorRegistry
) -> tuple[Daemon, StreamCollector]:
    """A daemon with the clients of ``kafka.transport`` and its metrics registered in ``registry``.

    Also returns the per-stream collector registered there, which the ``/metrics``
    server writes in bulk (:func:`monitor.metrics.http.start_metrics_server`).
    """
    if config.kafka.create_topics:
        try:
            created = ensure_topics(
                config.kafka.bootstrap_servers, output_topics(config), **_admin_settings(config)
            )
        except KafkaSetupError as exc:
            log.warning("could not check or create output topics: %s", exc)
        else:
            if created:
                log.info("created topics %s", created)
    consumer, producer = build_clients(config)
    daemon = Daemon(config, consumer, producer, DaemonMetrics(registry))
    streams = StreamCollector.from_config(daemon.detector, daemon.lock, config.metrics)
    registry.register(streams)
    return daemon, streams


def _admin_settings(config: MonitorConfig) -> dict[str, Any]:
    settings = client_settings(config.kafka)
    settings.pop("bootstrap_servers")
    return settings


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` (nothing else) while the block runs.

    Outside the main thread (a daemon embedded in tests or another program) no
    handler can be installed; the caller stops the daemon through ``stop``.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("received %s: finishing the current batch", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_daemon(config: MonitorConfig, stop: threading.Event | None = None) -> int:
    """Run the daemon until SIGTERM/SIGINT (or ``stop``); return the exit code."""
    registry = CollectorRegistry()
    daemon, streams = build_daemon(config, registry)
    if stop is not None:
        daemon.stop = stop
    server = None
    if config.metrics.port:
        server, _thread, url = serve_metrics(config.metrics, registry, streams)
        log.info("metrics on %s", url)
    # Every batch allocates many short-lived objects (records, points, events): with the
    # default thresholds the collector walks the whole heap very often. Freeze what
    # start-up allocated and collect young objects less eagerly (+20% records/s,
    # benchmarks/pipeline.py --gc-threshold).
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    try:
        with stop_on_signals(daemon.stop):
            return daemon.run()
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        daemon.producer.close()  # type: ignore[attr-defined]
        if server is not None:
            server.shutdown()
            server.server_close()
