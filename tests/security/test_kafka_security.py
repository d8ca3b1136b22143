"""The daemon against Kafka over TLS and SASL (PLAIN, SCRAM-SHA-256/512), real processes.

A tansu broker sits behind :class:`tests.security.kafka_proxy.KafkaSecurityProxy`,
which does the server side of TLS and SASL; the broker advertises the proxy, so
every connection of every client goes through it. Both transports (kafka-python
and confluent-kafka) run the daemon end to end with the settings the monitor maps
from its configuration; wrong credentials and a wrong CA fail, and the password
never reaches the logs.
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import MonitorConfig, load_config_text
from monitor.config.schema import KafkaConfig
from monitor.daemon.runner import run_daemon
from monitor.kafka.admin import ensure_topics
from monitor.kafka.client import client_settings, producer_settings
from monitor.kafka.exceptions import KafkaSetupError
from monitor.kafka.ports import free_port
from tests.daemon_settings import TEST_CONSUMER
from tests.security.conftest import Pki
from tests.security.kafka_proxy import KafkaSecurityProxy

pytestmark = pytest.mark.integration

USER = "monitor"
PASSWORDS = {
    "PLAIN": "plain-pw-Zq81xv",
    "SCRAM-SHA-256": "scram256-pw-Kd02mt",
    "SCRAM-SHA-512": "scram512-pw-Rw77bn",
}
WRONG_PASSWORD = "wrong-pw-Hc55ey"
POINTS, WARMUP = 400, 100
METRICS_USER, METRICS_PASSWORD = "prometheus", "metrics-pw-Ua93lo"


def users() -> dict[str, dict[str, str]]:
    return {mechanism: {USER: password} for mechanism, password in PASSWORDS.items()}


def kafka_section(
    proxy: KafkaSecurityProxy,
    pki: Pki,
    protocol: str,
    mechanism: str | None,
    password_ref: str | None = None,
) -> dict[str, Any]:
    section: dict[str, Any] = {
        "bootstrap_servers": f"127.0.0.1:{proxy_port(proxy)}",
        "security_protocol": protocol,
    }
    if protocol in ("SSL", "SASL_SSL"):
        section["ssl_cafile"] = str(pki.ca.cafile)
    if mechanism is not None:
        section.update(
            sasl_mechanism=mechanism, sasl_username=USER, sasl_password=password_ref or ""
        )
    return section


def proxy_port(proxy: KafkaSecurityProxy) -> int:
    return int(proxy._listener.getsockname()[1])


def points() -> list[bytes]:
    rng = np.random.default_rng(5)
    values = 20 + rng.normal(0, 0.5, POINTS)
    values[-1] = 80.0
    return [
        json.dumps(
            {"stream": "sec.final", "ts": 1_700_000_000 + 60 * i, "value": float(v)}
        ).encode()
        for i, v in enumerate(values)
    ]


def scrape(port: int, context: ssl.SSLContext | None, auth: str | None) -> dict[str, float]:
    scheme = "https" if context is not None else "http"
    request = urllib.request.Request(f"{scheme}://127.0.0.1:{port}/metrics")
    if auth is not None:
        request.add_header("Authorization", auth)
    with urllib.request.urlopen(request, timeout=5, context=context) as response:
        text = response.read().decode()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def read_all(kafka: KafkaConfig, topic: str, timeout: float = 20.0) -> list[Any]:
    """Every record of ``topic`` so far, read (without a group) through the proxy."""
    consumer = KafkaConsumer(**client_settings(kafka), group_id=None, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout
        partitions = consumer.partitions_for_topic(topic)
        while not partitions and time.monotonic() < deadline:
            time.sleep(0.1)
            partitions = consumer.partitions_for_topic(topic)
        assigned = [TopicPartition(topic, p) for p in sorted(partitions or ())]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        records: list[Any] = []
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=500)
            if not batch and records:
                break
            for partition_records in batch.values():
                records.extend(partition_records)
        return records
    finally:
        consumer.close()


def run_until(
    config: MonitorConfig, done: Callable[[], bool], timeout: float = 120.0
) -> list[int | Exception]:
    """Run the daemon in a thread until ``done()``; return its exit code or what it raised."""
    stop = threading.Event()
    codes: list[int | Exception] = []

    def run() -> None:
        try:
            codes.append(run_daemon(config, stop))
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            codes.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    try:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        stop.set()
        runner.join(timeout=60)
    assert not runner.is_alive()
    return codes


@pytest.mark.parametrize(
    ("protocol", "mechanism", "transport", "metrics_tls"),
    [
        ("SSL", None, "kafka-python", False),
        ("SASL_PLAINTEXT", "PLAIN", "kafka-python", False),
        ("SASL_PLAINTEXT", "SCRAM-SHA-256", "kafka-python", False),
        ("SASL_SSL", "SCRAM-SHA-512", "kafka-python", True),
        ("SASL_SSL", "PLAIN", "confluent", False),
        ("SASL_SSL", "SCRAM-SHA-256", "confluent", True),
    ],
)
def test_daemon_end_to_end(
    secure_kafka: KafkaSecurityProxy,
    pki: Pki,
    topic_name: str,
    tmp_path: Any,
    caplog: pytest.LogCaptureFixture,
    protocol: str,
    mechanism: str | None,
    transport: str,
    metrics_tls: bool,
) -> None:
    """Records in and an anomaly event out, through TLS and/or SASL only."""
    if transport == "confluent":
        pytest.importorskip("confluent_kafka")
    tls = pki.server_context() if protocol in ("SSL", "SASL_SSL") else None
    secure_kafka.configure(ssl_context=tls, users=users() if mechanism else None)
    events = f"{topic_name}-events"
    port = free_port()
    metrics: dict[str, Any] = {"port": port, "address": "127.0.0.1"}
    client_context, auth = None, None
    if metrics_tls:
        metrics.update(
            tls_certfile=str(pki.server.cert),
            tls_keyfile=str(pki.server.key),
            basic_auth_username=METRICS_USER,
            basic_auth_password="${METRICS_PASSWORD}",
        )
        client_context = ssl.create_default_context(cafile=str(pki.ca.cafile))
        token = base64.b64encode(f"{METRICS_USER}:{METRICS_PASSWORD}".encode()).decode()
        auth = f"Basic {token}"
    # The password goes the way an operator gives it: a ${ENV} reference in YAML.
    document = {
        "kafka": {
            **kafka_section(secure_kafka, pki, protocol, mechanism, "${KAFKA_PASSWORD}"),
            "group_id": f"{topic_name}-group",
            "topics": [topic_name],
            "transport": transport,
            **TEST_CONSUMER,
        },
        "events": {"topic": events, "partitions": 1},
        "dead_letter": {"topic": f"{topic_name}-dlq"},
        "metrics": metrics,
        "detector": {"warmup": WARMUP},
        "state": {"dir": str(tmp_path / "state")},
    }
    env = {
        "KAFKA_PASSWORD": PASSWORDS.get(mechanism or "", ""),
        "METRICS_PASSWORD": METRICS_PASSWORD,
    }
    config = load_config_text(json.dumps(document), env=env)
    kafka = config.kafka
    settings = client_settings(kafka)
    settings.pop("bootstrap_servers")
    ensure_topics(kafka.bootstrap_servers, {topic_name: 1, events: 1}, **settings)
    producer = KafkaProducer(**producer_settings(kafka))
    for value in points():
        producer.send(topic_name, value)
    producer.flush()
    producer.close()

    caplog.set_level(logging.DEBUG)
    seen: dict[str, float] = {}

    def consumed() -> bool:
        try:
            seen.update(scrape(port, client_context, auth))
        except OSError:
            return False
        return seen.get("monitor_records_consumed_total", 0) >= POINTS and bool(
            seen.get("monitor_events_emitted_total", 0)
        )

    assert run_until(config, consumed) == [0]
    assert seen["monitor_records_consumed_total"] == POINTS
    records = read_all(kafka, events)
    assert any(json.loads(r.value)["stream"] == "sec.final" for r in records), records
    if mechanism is not None:
        assert (mechanism, USER) in secure_kafka.log.authenticated
        assert not secure_kafka.log.rejected
    for password in (*PASSWORDS.values(), METRICS_PASSWORD):
        assert password not in caplog.text


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_wrong_password_fails_clearly_without_logging_it(
    secure_kafka: KafkaSecurityProxy,
    pki: Pki,
    topic_name: str,
    caplog: pytest.LogCaptureFixture,
    mechanism: str,
) -> None:
    secure_kafka.configure(ssl_context=pki.server_context(), users=users())
    section = kafka_section(secure_kafka, pki, "SASL_SSL", mechanism, WRONG_PASSWORD)
    kafka = KafkaConfig.model_validate(section)
    settings = client_settings(kafka)
    settings.pop("bootstrap_servers")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(KafkaSetupError, match="cannot connect"):
        ensure_topics(
            kafka.bootstrap_servers, {topic_name: 1}, bootstrap_timeout_ms=3000, **settings
        )
    assert secure_kafka.log.rejected and not secure_kafka.log.authenticated
    assert "SaslAuthenticationFailedError" in caplog.text
    assert f"invalid credentials with SASL mechanism {mechanism}" in caplog.text
    assert WRONG_PASSWORD not in caplog.text
    assert PASSWORDS[mechanism] not in caplog.text


def test_daemon_with_wrong_password_reports_it_and_stops_cleanly(
    secure_kafka: KafkaSecurityProxy,
    pki: Pki,
    topic_name: str,
    tmp_path: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client retries, says why, then the daemon stops with a clear error (``monitor
    run`` exits 1); the secret is never logged."""
    secure_kafka.configure(ssl_context=None, users=users())
    document = {
        "kafka": {
            **kafka_section(secure_kafka, pki, "SASL_PLAINTEXT", "SCRAM-SHA-512", "${PW}"),
            "topics": [topic_name],
            "group_id": f"{topic_name}-group",
            "create_topics": False,
            **TEST_CONSUMER,
        },
        "metrics": {"port": 0},
        "state": {"dir": str(tmp_path / "state")},
    }
    config = load_config_text(json.dumps(document), env={"PW": WRONG_PASSWORD})
    caplog.set_level(logging.DEBUG)
    outcome = run_until(config, lambda: len(secure_kafka.log.rejected) >= 2, timeout=60)
    assert len(secure_kafka.log.rejected) >= 2
    assert len(outcome) == 1 and isinstance(outcome[0], KafkaSetupError), outcome
    assert "cannot connect to Kafka" in str(outcome[0])
    assert WRONG_PASSWORD not in str(outcome[0])
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in caplog.text
    assert WRONG_PASSWORD not in caplog.text


def test_tls_with_the_wrong_ca_fails(
    secure_kafka: KafkaSecurityProxy,
    pki: Pki,
    topic_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secure_kafka.configure(ssl_context=pki.server_context(), users=None)
    section = kafka_section(secure_kafka, pki, "SSL", None)
    kafka = KafkaConfig.model_validate({**section, "ssl_cafile": str(pki.other_ca.cafile)})
    settings = client_settings(kafka)
    settings.pop("bootstrap_servers")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(KafkaSetupError, match="cannot connect"):
        ensure_topics(
            kafka.bootstrap_servers, {topic_name: 1}, bootstrap_timeout_ms=3000, **settings
        )
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
    assert secure_kafka.log.tls_failures


def test_plaintext_client_cannot_reach_a_tls_listener(
    secure_kafka: KafkaSecurityProxy, pki: Pki, topic_name: str
) -> None:
    secure_kafka.configure(ssl_context=pki.server_context(), users=None)
    kafka = KafkaConfig.model_validate(kafka_section(secure_kafka, pki, "PLAINTEXT", None))
    settings = client_settings(kafka)
    settings.pop("bootstrap_servers")
    with pytest.raises(KafkaSetupError):
        ensure_topics(
            kafka.bootstrap_servers, {topic_name: 1}, bootstrap_timeout_ms=3000, **settings
        )
    assert secure_kafka.log.tls_failures
