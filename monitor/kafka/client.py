"""Settings shared by every Kafka client the monitor builds, from the typed config.

The settings carry the SASL password to the client library, which may log it:
kafka-python logs its whole configuration and every request it sends (the SASL
PLAIN token among them) at DEBUG. So building settings with a password also makes
the Kafka libraries' loggers mask it (:func:`redact_in_logs`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from monitor.config.schema import KafkaConfig

REDACTED = "***"
_LIBRARY_LOGGERS = ("kafka", "confluent_kafka", "monitor.kafka")


class SecretRedactor(logging.Filter):
    """A logging filter that replaces every known secret in a record's message by ``***``.

    The message is formatted first, so a secret passed as an argument (a dict, a
    request, the bytes sent) is caught too, in plain or in ``repr`` form.

    >>> redactor = SecretRedactor()
    >>> redactor.add("hunter2")
    >>> record = logging.makeLogRecord({"msg": "config %s", "args": ({"password": "hunter2"},)})
    >>> redactor.filter(record), record.getMessage()
    (True, "config {'password': '***'}")
    """

    def __init__(self) -> None:
        super().__init__()
        self._forms: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        """Mask ``secret`` (and its ``repr`` as bytes, as a logged ``bytes`` shows it)."""
        forms = {secret, repr(secret.encode("utf-8"))[2:-1], repr(secret)[1:-1]}
        with self._lock:
            self._forms = tuple(sorted(set(self._forms) | forms, key=len, reverse=True))

    def filter(self, record: logging.LogRecord) -> bool:
        forms = self._forms
        if not forms:
            return True
        message = record.getMessage()
        if any(form in message for form in forms):
            for form in forms:
                message = message.replace(form, REDACTED)
            record.msg, record.args = message, None
        return True


_REDACTOR = SecretRedactor()


def redact_in_logs(secret: str | None) -> None:
    """Mask ``secret`` in everything the Kafka client libraries log from now on.

    The filter is attached to every existing logger of kafka-python, confluent-kafka
    and :mod:`monitor.kafka` (a filter on a logger sees the records logged through
    that very logger, so each one gets it). Called by the settings functions below.
    """
    if not secret:
        return
    _REDACTOR.add(secret)
    manager = logging.Logger.manager
    names = [
        name
        for name in list(manager.loggerDict)
        if any(name == root or name.startswith(f"{root}.") for root in _LIBRARY_LOGGERS)
    ]
    for name in (*_LIBRARY_LOGGERS, *names):
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)


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
        redact_in_logs(kafka.sasl_password)
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
        "fetch_max_wait_ms": kafka.fetch_max_wait_ms,
    }


def producer_settings(kafka: KafkaConfig) -> dict[str, Any]:
    """Settings of the daemon's producer: acknowledged by all in-sync replicas, retried."""
    return {
        **client_settings(kafka),
        "acks": "all",
        "retries": 5,
        "linger_ms": 5,
        "max_in_flight_requests_per_connection": 1,
        # Not idempotent: after a lost connection an idempotent producer can end in a
        # fatal state (epoch bump refused) that fails every later send; the daemon retries
        # whole messages instead, and duplicates carry the same event_id.
        "enable_idempotence": False,
    }


_SECURITY_KEYS = {
    "sasl_mechanism": "sasl.mechanism",
    "sasl_username": "sasl.username",
    "sasl_password": "sasl.password",
    "ssl_cafile": "ssl.ca.location",
    "ssl_certfile": "ssl.certificate.location",
    "ssl_keyfile": "ssl.key.location",
}


def librdkafka_settings(kafka: KafkaConfig) -> dict[str, Any]:
    """librdkafka (confluent-kafka) properties for connection and security, common to all clients.

    The same settings as :func:`client_settings`, under librdkafka's names. Secrets are
    passed through, never logged: this dict must not be printed.

    >>> from monitor.config.schema import KafkaConfig
    >>> settings = librdkafka_settings(
    ...     KafkaConfig(bootstrap_servers="a:9092, b:9092", security_protocol="SASL_SSL",
    ...                 sasl_mechanism="PLAIN", sasl_username="u", ssl_cafile="/ca.pem")
    ... )
    >>> settings["bootstrap.servers"], settings["security.protocol"], settings["ssl.ca.location"]
    ('a:9092,b:9092', 'sasl_ssl', '/ca.pem')
    """
    settings: dict[str, Any] = {
        "bootstrap.servers": ",".join(
            s.strip() for s in kafka.bootstrap_servers.split(",") if s.strip()
        ),
        "client.id": kafka.client_id,
        "security.protocol": kafka.security_protocol.lower(),
    }
    for key, name in _SECURITY_KEYS.items():
        value = getattr(kafka, key)
        if value is not None and (key.startswith("ssl") or kafka.sasl_mechanism is not None):
            settings[name] = value
    if kafka.sasl_mechanism is not None:
        redact_in_logs(kafka.sasl_password)
    return settings
