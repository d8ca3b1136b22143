"""A real Prometheus scrapes ``/metrics`` over HTTPS with a client certificate and basic auth.

The scrape job is the commented example of ``deploy/prometheus/prometheus.yml`` with
the test's own files; the target is up only if TLS, the client certificate and the
password all pass.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter

from monitor.config import load_config_text
from monitor.kafka.ports import free_port
from monitor.metrics.http import serve_metrics
from tests.deploy.test_prometheus_e2e import Prometheus
from tests.security.conftest import Pki

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "prometheus", "scrape-pw-Nd48ur"


def test_prometheus_scrapes_tls_with_client_cert_and_basic_auth(pki: Pki, tmp_path: Path) -> None:
    assert shutil.which("prometheus"), "apt-get install prometheus (.ci/run does)"
    registry = CollectorRegistry()
    Counter("monitor_security_probe", "A sample to scrape.", registry=registry).inc()
    port = free_port()
    config = load_config_text(
        f"metrics:\n  port: {port}\n  address: 127.0.0.1\n"
        f"  tls_certfile: {pki.server.cert}\n  tls_keyfile: {pki.server.key}\n"
        f"  tls_client_cafile: {pki.ca.cafile}\n"
        f"  basic_auth_username: {USER}\n  basic_auth_password: ${{PW}}\n",
        env={"PW": PASSWORD},
    )
    server, _thread, _url = serve_metrics(config.metrics, registry)
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD, encoding="utf-8")
    prometheus = Prometheus(tmp_path, port)
    try:
        scrape = {
            "job_name": "monitor",
            "scheme": "https",
            "tls_config": {
                "ca_file": str(pki.ca.cafile),
                "cert_file": str(pki.client.cert),
                "key_file": str(pki.client.key),
            },
            "basic_auth": {"username": USER, "password_file": str(password_file)},
            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
        }
        settings = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
        settings["scrape_configs"] = [scrape]
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(settings))
        os.kill(prometheus.process.pid, signal.SIGHUP)  # reload the configuration
        up: list[float] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            result = prometheus.query('up{job="monitor"}')["data"]["result"]
            probe = prometheus.query("monitor_security_probe_total")["data"]["result"]
            up = [float(r["value"][1]) for r in result]
            if up == [1.0] and probe:
                break
            time.sleep(0.5)
        assert up == [1.0], prometheus.log_tail()
    finally:
        prometheus.stop()
        server.shutdown()
        server.server_close()
