"""Choosing the Kafka client library: ``kafka.transport`` in the configuration.

``kafka-python`` (the default) is pure Python. ``confluent`` wraps librdkafka through
confluent-kafka (several times faster); it is an extra, ``pip install 'monitor[fast]'``.
Both give clients with the same methods (the ``Consumer`` and ``Producer``
protocols of :mod:`monitor.daemon.loop`).
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError

from monitor.config.schema import MonitorConfig
from monitor.kafka.client import consumer_settings, producer_settings
from monitor.kafka.exceptions import KafkaSetupError
from monitor.kafka.reader import ProcessConsumer

if TYPE_CHECKING:
    from monitor.daemon.loop import Consumer, Producer

FAST_EXTRA_HINT = "pip install 'monitor[fast]'"


def build_clients(config: MonitorConfig) -> tuple[Consumer, Producer]:
    """The daemon's consumer and producer, from the library ``kafka.transport`` names;
    with ``kafka.reader: process`` the consumer runs in a child process
    (:class:`~monitor.kafka.reader.ProcessConsumer`).

    Raises :class:`~monitor.kafka.exceptions.KafkaSetupError` when ``confluent`` is
    chosen and confluent-kafka is not installed, or when kafka-python's clients cannot
    bootstrap (no broker answers, or TLS/SASL fails); ``monitor run`` then exits 1
    with that message.

    >>> from monitor.config import MonitorConfig
    >>> kafka = {"transport": "confluent", "bootstrap_servers": "127.0.0.1:9", "reader": "inline"}
    >>> consumer, producer = build_clients(MonitorConfig.model_validate({"kafka": kafka}))
    >>> type(consumer).__name__, type(producer).__name__
    ('ConfluentConsumer', 'ConfluentProducer')
    >>> consumer.close(autocommit=False); producer.close(timeout=0)
    >>> kafka["reader"] = "process"
    >>> consumer, producer = build_clients(MonitorConfig.model_validate({"kafka": kafka}))
    >>> type(consumer).__name__, type(producer).__name__
    ('ProcessConsumer', 'ConfluentProducer')
    >>> consumer.close(autocommit=False); producer.close(timeout=0)
    """
    producer = build_producer(config)
    try:
        if config.kafka.reader == "process":
            return ProcessConsumer(config), producer
        return build_consumer(config), producer
    except BaseException:
        producer.close(timeout=0)  # type: ignore[attr-defined]
        raise


def build_consumer(config: MonitorConfig) -> Consumer:
    """The consumer of ``kafka.transport``, in this process."""
    kafka = config.kafka
    if kafka.transport == "confluent":
        _need_confluent()
        from monitor.kafka.confluent import ConfluentConsumer

        return ConfluentConsumer.from_config(kafka)
    try:
        return KafkaConsumer(**consumer_settings(kafka))
    except KafkaError as exc:  # kafka-python bootstraps in the constructor
        raise _unreachable(config, exc) from exc


def build_producer(config: MonitorConfig) -> Producer:
    """The producer of ``kafka.transport``."""
    kafka = config.kafka
    if kafka.transport == "confluent":
        _need_confluent()
        from monitor.kafka.confluent import ConfluentProducer

        return ConfluentProducer.from_config(kafka)
    try:
        return KafkaProducer(**producer_settings(kafka))
    except KafkaError as exc:
        raise _unreachable(config, exc) from exc


def _need_confluent() -> None:
    if importlib.util.find_spec("confluent_kafka") is None:
        raise KafkaSetupError(
            "kafka.transport is 'confluent' but the confluent-kafka package is not "
            f"installed: {FAST_EXTRA_HINT}"
        )


def _unreachable(config: MonitorConfig, exc: KafkaError) -> KafkaSetupError:
    return KafkaSetupError(
        f"cannot connect to Kafka at {config.kafka.bootstrap_servers}: {exc} (check the "
        "address, kafka.security_protocol, TLS files and SASL credentials)"
    )
