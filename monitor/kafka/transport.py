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

if TYPE_CHECKING:
    from monitor.daemon.loop import Consumer, Producer

FAST_EXTRA_HINT = "pip install 'monitor[fast]'"


def build_clients(config: MonitorConfig) -> tuple[Consumer, Producer]:
    """The daemon's consumer and producer, from the library ``kafka.transport`` names.

    Raises :class:`~monitor.kafka.exceptions.KafkaSetupError` when ``confluent`` is
    chosen and confluent-kafka is not installed, or when kafka-python's clients cannot
    bootstrap (no broker answers, or TLS/SASL fails); ``monitor run`` then exits 1
    with that message.

    >>> from monitor.config import MonitorConfig
    >>> kafka = {"transport": "confluent", "bootstrap_servers": "127.0.0.1:9"}
    >>> consumer, producer = build_clients(MonitorConfig.model_validate({"kafka": kafka}))
    >>> type(consumer).__name__, type(producer).__name__
    ('ConfluentConsumer', 'ConfluentProducer')
    >>> consumer.close(autocommit=False); producer.close(timeout=0)
    """
    kafka = config.kafka
    if kafka.transport == "confluent":
        if importlib.util.find_spec("confluent_kafka") is None:
            raise KafkaSetupError(
                "kafka.transport is 'confluent' but the confluent-kafka package is not "
                f"installed: {FAST_EXTRA_HINT}"
            )
        from monitor.kafka.confluent import ConfluentConsumer, ConfluentProducer

        return ConfluentConsumer.from_config(kafka), ConfluentProducer.from_config(kafka)
    try:
        consumer = KafkaConsumer(**consumer_settings(kafka))
        return consumer, KafkaProducer(**producer_settings(kafka))
    except KafkaError as exc:  # kafka-python bootstraps in the constructor
        raise KafkaSetupError(
            f"cannot connect to Kafka at {kafka.bootstrap_servers}: {exc} (check the "
            "address, kafka.security_protocol, TLS files and SASL credentials)"
        ) from exc
