"""``/metrics`` over HTTPS, with client certificates and basic auth, by real HTTPS requests."""

from __future__ import annotations

import base64
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import load_config_text
from monitor.kafka.ports import free_port
from monitor.metrics.http import serve_metrics, server_ssl_context, start_metrics_server
from tests.security.conftest import Pki

USER, PASSWORD = "prometheus", "metrics-pw-Xe42ko"


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("monitor_security_probe", "A sample to scrape.", registry=registry).inc(3)
    return registry


@pytest.fixture
def serve(registry: CollectorRegistry) -> Iterator[Any]:
    servers: list[Any] = []

    def start(**options: Any) -> int:
        port = free_port()
        server, _thread = start_metrics_server(port, "127.0.0.1", registry, **options)
        servers.append(server)
        return port

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def client_context(pki: Pki, cafile: Path | None = None, cert: Any = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cafile or pki.ca.cafile))
    if cert is not None:
        context.load_cert_chain(cert.cert, cert.key)
    return context


def get(port: int, context: ssl.SSLContext | None, auth: tuple[str, str] | None = None) -> str:
    scheme = "https" if context is not None else "http"
    request = urllib.request.Request(f"{scheme}://127.0.0.1:{port}/metrics")
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=5, context=context) as response:
        assert response.status == 200
        return response.read().decode()


def probe_value(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "monitor_security_probe_total":
                return sample.value
    raise AssertionError("probe sample missing")


def refused(port: int, context: ssl.SSLContext | None) -> OSError:
    """The error of a GET that must fail below HTTP (TLS or connection level)."""
    with pytest.raises(OSError) as caught:
        get(port, context)
    assert not isinstance(caught.value, urllib.error.HTTPError), caught.value
    return caught.value


def test_https_with_the_right_ca(serve: Any, pki: Pki) -> None:
    port = serve(ssl_context=server_ssl_context(str(pki.server.cert), str(pki.server.key)))
    assert probe_value(get(port, client_context(pki))) == 3


def test_https_refused_by_a_client_trusting_another_ca(serve: Any, pki: Pki) -> None:
    port = serve(ssl_context=server_ssl_context(str(pki.server.cert), str(pki.server.key)))
    error = refused(port, client_context(pki, cafile=pki.other_ca.cafile))
    assert "CERTIFICATE_VERIFY_FAILED" in str(error)
    assert probe_value(get(port, client_context(pki))) == 3  # still serving


def test_plain_http_to_the_https_port_gets_nothing(serve: Any, pki: Pki) -> None:
    port = serve(ssl_context=server_ssl_context(str(pki.server.cert), str(pki.server.key)))
    refused(port, None)
    assert probe_value(get(port, client_context(pki))) == 3


def test_client_certificate_required(serve: Any, pki: Pki) -> None:
    context = server_ssl_context(str(pki.server.cert), str(pki.server.key), str(pki.ca.cafile))
    port = serve(ssl_context=context)
    refused(port, client_context(pki))  # no certificate
    refused(port, client_context(pki, cert=pki.other_client))  # signed by another CA
    assert probe_value(get(port, client_context(pki, cert=pki.client))) == 3


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_basic_auth(serve: Any, pki: Pki, tls: bool) -> None:
    context = server_ssl_context(str(pki.server.cert), str(pki.server.key)) if tls else None
    port = serve(ssl_context=context, basic_auth=(USER, PASSWORD))
    client = client_context(pki) if tls else None
    for auth in (None, (USER, "wrong"), ("someone", PASSWORD), (USER, PASSWORD + "x")):
        with pytest.raises(urllib.error.HTTPError) as caught:
            get(port, client, auth)
        assert caught.value.code == 401
        assert caught.value.headers["WWW-Authenticate"].startswith('Basic realm="monitor"')
        assert PASSWORD not in caught.value.read().decode()
    assert probe_value(get(port, client, (USER, PASSWORD))) == 3


def test_serve_metrics_from_config(
    registry: CollectorRegistry, pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The configuration's keys, the password read from a file, as the daemon starts it."""
    secret = tmp_path / "metrics-password"
    secret.write_text(f"{PASSWORD}\n", encoding="utf-8")
    port = free_port()
    text = (
        f"metrics:\n  port: {port}\n  address: 127.0.0.1\n"
        f"  tls_certfile: {pki.server.cert}\n  tls_keyfile: {pki.server.key}\n"
        f"  tls_client_cafile: {pki.ca.cafile}\n"
        f"  basic_auth_username: {USER}\n  basic_auth_password_file: {secret}\n"
    )
    config = load_config_text(text, env={})
    assert config.metrics.basic_auth_password == PASSWORD
    assert PASSWORD not in repr(config)
    server, _thread, url = serve_metrics(config.metrics, registry)
    try:
        assert url == f"https://127.0.0.1:{port}/metrics"
        with_cert = client_context(pki, cert=pki.client)
        assert probe_value(get(port, with_cert, (USER, PASSWORD))) == 3
        with pytest.raises(urllib.error.HTTPError) as caught:
            get(port, with_cert)
        assert caught.value.code == 401
        refused(port, client_context(pki))
    finally:
        server.shutdown()
        server.server_close()
    assert PASSWORD not in caplog.text
