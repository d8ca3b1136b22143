"""Choosing the client library with ``kafka.transport``."""

from __future__ import annotations

import sys

import pytest
from kafka import KafkaConsumer, KafkaProducer

from monitor.config import MonitorConfig
from monitor.kafka.confluent import ConfluentConsumer, ConfluentProducer
from monitor.kafka.exceptions import KafkaSetupError
from monitor.kafka.transport import build_clients


def config(transport: str, bootstrap_servers: str = "127.0.0.1:9") -> MonitorConfig:
    return MonitorConfig.model_validate(
        {
            "kafka": {
                "transport": transport,
                "bootstrap_servers": bootstrap_servers,
                "reader": "inline",
            }
        }
    )


def test_default_transport_is_kafka_python_read_in_a_child_process() -> None:
    assert MonitorConfig().kafka.transport == "kafka-python"
    assert MonitorConfig().kafka.reader == "process"


@pytest.mark.integration
def test_each_transport_builds_its_own_clients(broker) -> None:
    consumer, producer = build_clients(config("kafka-python", broker.bootstrap_servers))
    try:
        assert isinstance(consumer, KafkaConsumer) and isinstance(producer, KafkaProducer)
    finally:
        consumer.close(autocommit=False)
        producer.close()  # type: ignore[attr-defined]
    consumer, producer = build_clients(config("confluent", broker.bootstrap_servers))
    try:
        assert isinstance(consumer, ConfluentConsumer) and isinstance(producer, ConfluentProducer)
    finally:
        consumer.close(autocommit=False)
        producer.close()  # type: ignore[attr-defined]


def test_confluent_without_the_package_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)  # as if not installed
    with pytest.raises(KafkaSetupError, match=r"pip install 'monitor\[fast\]'"):
        build_clients(config("confluent"))


def test_unknown_transport_is_a_config_error() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="'kafka-python' or 'confluent'"):
        config("librdkafka")
