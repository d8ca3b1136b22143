"""End to end: broker, daemon and a real Prometheus loaded with deploy/prometheus's rules.

Through Prometheus's HTTP API: every PromQL expression of both Grafana dashboards and
of every rule is accepted, the dashboard panels return data, the stream-anomalous
alert goes pending, then firing, for the planted stream and no other, and the Kafka and
checkpoint alerts stay quiet for a healthy daemon.

The rules are used as they are except for their ``for:`` durations, shortened so the
alert's life fits in a test (the scrape and evaluation intervals are 1 s).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from kafka import KafkaProducer

from monitor.config import MonitorConfig
from monitor.daemon.runner import run_daemon
from monitor.kafka.admin import ensure_topics
from monitor.kafka.ports import free_port
from monitor.replay import encode_native
from tests.daemon_settings import TEST_CONSUMER

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
PLANTED = "e2e.planted{host=e2e}"
FOR_IN_TEST = "4s"
WARMUP = 100


def grafana_exprs(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, expr) of every panel target and annotation query of a dashboard."""

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield f"panel {panel.get('title')!r} {target.get('refId')}", target["expr"]
    for annotation in dashboard.get("annotations", {}).get("list", []):
        expr = annotation.get("expr") or annotation.get("target", {}).get("expr")
        if expr:
            yield f"annotation {annotation.get('name')!r}", expr


def substitute(expr: str) -> str:
    """Grafana's variables, as Grafana would fill them for this test's data."""
    values = {"stream": PLANTED, "__rate_interval": "10s", "__interval": "2s", "__range": "1m"}
    for name, value in values.items():
        expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
    assert "$" not in expr, f"unsubstituted variable in {expr!r}"
    return expr


def rule_exprs() -> Iterator[tuple[str, str]]:
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                yield rule.get("alert") or rule.get("record"), rule["expr"]


class Prometheus:
    """A Prometheus server on a loopback port with a temporary data directory."""

    def __init__(self, workdir: Path, target_port: int) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus is not installed: apt-get install prometheus (.ci/run does)"
        rules_dir = workdir / "rules"
        rules_dir.mkdir()
        for path in RULES:
            text = re.sub(r"(?m)^(\s*)for:\s*\S+", rf"\1for: {FOR_IN_TEST}", path.read_text())
            (rules_dir / path.name).write_text(text)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules_dir / "*.yml")],
            "scrape_configs": [
                {
                    "job_name": "monitor",
                    "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
                }
            ],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.log = (workdir / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.workdir = workdir
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url("/-/ready"), timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError("prometheus did not become ready:\n" + self.log_tail())

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(self.url(f"/api/v1/{path}?{query}"), timeout=5) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            return json.loads(err.read())

    def query(self, expr: str) -> Any:
        return self.api("query", query=expr)

    def log_tail(self) -> str:
        self.log.flush()
        return (self.workdir / "prometheus.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def produce(servers: str, topic: str) -> int:
    """Five quiet streams and one whose last point is far off; a few records to reject."""
    rng = np.random.default_rng(2)
    producer = KafkaProducer(bootstrap_servers=servers, linger_ms=10)
    count = 0
    streams = [(f"e2e.quiet{i}", (("host", "e2e"),)) for i in range(5)]
    streams.append(("e2e.planted", (("host", "e2e"),)))
    for t in range(400):
        for name, labels in streams:
            value = 50 + rng.normal(0, 1)
            if name == "e2e.planted" and t == 399:
                value = 500.0
            key = f"{name}{{host=e2e}}".encode()
            producer.send(topic, key=key, value=encode_native(name, labels, 1.7e9 + 60 * t, value))
            count += 1
    for bad in (b"not json", b'{"stream": "x", "ts": 1, "value": "NaN"}'):
        producer.send(topic, value=bad)
        count += 1
    producer.flush()
    producer.close()
    return count


def test_rules_and_dashboards_against_a_real_prometheus(broker, topic_name, tmp_path):
    assert RULES and len(DASHBOARDS) == 2, "deploy/ must hold the rules and both dashboards"
    ensure_topics(broker.bootstrap_servers, {topic_name: 2})
    produced = produce(broker.bootstrap_servers, topic_name)
    metrics_port = free_port()
    config = MonitorConfig.model_validate_json(
        json.dumps(
            {
                "kafka": {
                    "bootstrap_servers": broker.bootstrap_servers,
                    "group_id": f"{topic_name}-g",
                    "topics": [topic_name],
                    **TEST_CONSUMER,
                },
                "events": {"topic": f"{topic_name}-events"},
                "dead_letter": {"topic": f"{topic_name}-dlq"},
                "metrics": {
                    "port": metrics_port,
                    "address": "127.0.0.1",
                    "stream_labels": ["host"],
                },
                "detector": {"warmup": WARMUP},
                # Checkpoints soon enough for the reliability panels to have data.
                "state": {"dir": str(tmp_path / "state"), "checkpoint_interval_seconds": 1},
            }
        )
    )
    stop = threading.Event()
    daemon = threading.Thread(target=run_daemon, args=(config, stop))
    daemon.start()
    prometheus = Prometheus(tmp_path, metrics_port)
    try:
        # The daemon has consumed everything, as Prometheus sees it.
        deadline = time.monotonic() + 90
        consumed = 0.0
        while time.monotonic() < deadline and consumed < produced:
            time.sleep(0.5)
            result = prometheus.query("sum(monitor_records_consumed_total)")["data"]["result"]
            consumed = float(result[0]["value"][1]) if result else 0.0
        assert consumed == produced, prometheus.log_tail()

        # The stream alert: pending, then firing, for the planted stream only.
        states: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "firing" not in states:
            alerts = prometheus.api("alerts")["data"]["alerts"]
            mine = [a for a in alerts if a["labels"]["alertname"] == "MonitorStreamAnomalous"]
            assert all(a["labels"]["stream"] == PLANTED for a in mine), mine
            for alert in mine:
                if not states or states[-1] != alert["state"]:
                    states.append(alert["state"])
            time.sleep(0.2)
        assert states[:2] == ["pending", "firing"], states
        firing = prometheus.query('ALERTS{alertname="MonitorStreamAnomalous",alertstate="firing"}')
        series = firing["data"]["result"]
        assert [s["metric"]["stream"] for s in series] == [PLANTED]
        assert series[0]["metric"]["severity"] == "critical"
        assert series[0]["metric"]["host"] == "e2e"

        # Every expression is valid PromQL to Prometheus; every dashboard panel has data.
        time.sleep(3)  # rates over the panels' windows need a few scrapes
        for name, expr in rule_exprs():
            answer = prometheus.query(expr)
            assert answer["status"] == "success", (name, expr, answer)
        empty = []
        for path in DASHBOARDS:
            for where, expr in grafana_exprs(json.loads(path.read_text())):
                answer = prometheus.query(substitute(expr))
                assert answer["status"] == "success", (path.name, where, expr, answer)
                if not answer["data"]["result"]:
                    empty.append((path.name, where, expr))
        assert not empty, f"panels without data: {empty}"
        down = prometheus.query('ALERTS{alertname=~"MonitorDown|MonitorNotScraped"}')
        assert down["data"]["result"] == []

        # The reliability figures of a healthy daemon, and none of their alerts.
        kafka_up = prometheus.query("monitor_kafka_up")["data"]["result"]
        assert [float(s["value"][1]) for s in kafka_up] == [1.0]
        checkpointed = prometheus.query("monitor_checkpoint_last_timestamp_seconds > 0")
        assert checkpointed["data"]["result"], "no checkpoint was written"
        reliability = prometheus.query('ALERTS{alertname=~"MonitorKafka.*|MonitorCheckpoint.*"}')
        assert reliability["data"]["result"] == []
    finally:
        prometheus.stop()
        stop.set()
        daemon.join(timeout=30)
