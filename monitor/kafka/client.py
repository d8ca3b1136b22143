"""Settings shared by every Kafka client the monitor builds, from the typed config."""

from __future__ import annotations

from typing import Any

from monitor.config.schema import KafkaConfig


def client_settings(kafka: KafkaConfig) -> dict[str, Any]:
    """kafka-python keyword arguments for connection and security, common to all clients.

    Secrets are passed through, never logged: this dict must not be printed.

    >>> from monitor.config.schema import KafkaConfig
    >>> settings = client_settings(KafkaConfig(bootstrap_servers="a:9092, b:9092"))
    >>> settings["bootstrap_servers"], settings["security_protocol"]
    (['a:9092', 'b:9092'], 'PLAINTEXT')
    """
    settings: dict[str, Any] = {
        "bootstrap_servers": [s.strip() for s in kafka.bootstrap_servers.split(",") if s.strip()],
        "client_id": kafka.client_id,
        "security_protocol": kafka.security_protocol,
    }
    if kafka.sasl_mechanism is not None:
        settings["sasl_mechanism"] = kafka.sasl_mechanism
        settings["sasl_plain_username"] = kafka.sasl_username
        settings["sasl_plain_password"] = kafka.sasl_password
    for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        value = getattr(kafka, key)
        if value is not None:
            settings[key] = value
    return settings


def consumer_settings(kafka: KafkaConfig) -> dict[str, Any]:
    """Settings of the daemon's consumer.

    Manual commits; a new group starts at the earliest retained offset.
    """
    return {
        **client_settings(kafka),
        "group_id": kafka.group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": kafka.session_timeout_ms,
        "heartbeat_interval_ms": kafka.heartbeat_interval_ms,
        "max_poll_records": kafka.max_poll_records,
        "fetch_max_bytes": 52_428_800,
    }


def producer_settings(kafka: KafkaConfig) -> dict[str, Any]:
    """Settings of the daemon's producer: acknowledged by all in-sync replicas, retried."""
    return {
        **client_settings(kafka),
        "acks": "all",
        "retries": 5,
        "linger_ms": 5,
        "max_in_flight_requests_per_connection": 1,
    }
