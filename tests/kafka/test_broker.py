"""The embedded tansu broker: lifecycle, a real produce/consume round trip, failures."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

from monitor.kafka.broker import EmbeddedBroker
from monitor.kafka.exceptions import BrokerError, KafkaSetupError
from monitor.kafka.ports import free_port

pytestmark = pytest.mark.integration


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def test_start_and_stop_leave_no_process(tmp_path: Path) -> None:
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log")
    assert broker.pid is None and not broker.running
    broker.start()
    pid = broker.pid
    assert pid is not None and broker.running
    assert os.getpgid(pid) == pid, "the broker runs in its own process group"
    assert _accepts(broker.port)
    assert "listening on" in (tmp_path / "tansu.log").read_text()

    broker.stop()
    assert broker.pid is None and not broker.running
    assert _pid_gone(pid)
    assert not _accepts(broker.port)
    broker.stop()  # idempotent
    assert _pid_gone(pid)


def test_context_manager_stops_on_error() -> None:
    with pytest.raises(RuntimeError), EmbeddedBroker() as broker:
        pid = broker.pid
        assert pid is not None
        raise RuntimeError("boom")
    assert pid is not None and _pid_gone(pid)
    assert not broker.running


def test_restart_on_the_same_port() -> None:
    broker = EmbeddedBroker()
    with broker:
        first = broker.pid
    with broker:
        assert broker.pid != first
        assert _accepts(broker.port)
    assert broker.pid is None


def test_start_twice_is_an_error() -> None:
    with EmbeddedBroker() as broker, pytest.raises(BrokerError, match="already running"):
        broker.start()


def test_bootstrap_round_trip_with_consumer_group(broker: EmbeddedBroker, topic_name: str) -> None:
    assert broker.bootstrap_servers == f"127.0.0.1:{broker.port}"
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    try:
        for i in range(100):
            producer.send(topic_name, key=f"k{i % 7}".encode(), value=f"v{i}".encode())
        producer.flush()
    finally:
        producer.close()

    consumer = KafkaConsumer(
        topic_name,
        bootstrap_servers=broker.bootstrap_servers,
        group_id=f"g-{topic_name}",
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        enable_auto_commit=False,
    )
    received: list[Any] = []
    try:
        deadline = time.monotonic() + 20
        while len(received) < 100 and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=250).values():
                received.extend(batch)
    finally:
        consumer.close()
    assert sorted(r.value for r in received) == sorted(f"v{i}".encode() for i in range(100))
    # One key, one partition, send order kept.
    for key in {r.key for r in received}:
        values = [r.value for r in sorted(received, key=lambda r: r.offset) if r.key == key]
        expected = [f"v{i}".encode() for i in range(100) if f"k{i % 7}".encode() == key]
        assert values == expected


def test_occupied_port_raises_broker_error() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        with pytest.raises(BrokerError, match=str(port)) as info:
            EmbeddedBroker(port=port).start()
    assert isinstance(info.value, KafkaSetupError)


def test_port_taken_by_another_broker(broker: EmbeddedBroker) -> None:
    intruder = EmbeddedBroker(port=broker.port)
    with pytest.raises(BrokerError, match="in use"):
        intruder.start()
    assert intruder.pid is None
    assert broker.running


def test_broker_that_exits_at_once_reports_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "fake-tansu"
    fake.write_text("#!/bin/sh\necho 'fatal: storage engine unavailable' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(BrokerError, match="exited with code 3") as info:
        EmbeddedBroker(binary=str(fake), startup_timeout=5).start()
    assert "storage engine unavailable" in str(info.value)


def test_broker_that_never_answers_times_out(tmp_path: Path) -> None:
    fake = tmp_path / "silent-tansu"
    fake.write_text("#!/bin/sh\nexec sleep 60\n")
    fake.chmod(0o755)
    broker = EmbeddedBroker(binary=str(fake), startup_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(BrokerError, match="did not answer"):
        broker.start()
    assert time.monotonic() - started < 5
    assert broker.pid is None


def test_serve_forever_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    code = "import sys; from monitor.kafka.broker import serve_forever; sys.exit(serve_forever({}))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code.format(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"127.0.0.1:{port}" in line
        assert _accepts(port)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not _accepts(port)
    broker_pid = int(line.split("(pid ")[1].split(")")[0])
    assert _pid_gone(broker_pid)


def test_interpreter_exit_without_stop_kills_the_broker() -> None:
    code = (
        "from monitor.kafka.broker import EmbeddedBroker\n"
        "b = EmbeddedBroker().start()\n"
        "print(b.pid, b.log_path)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    pid, log_path = done.stdout.split()
    assert _pid_gone(int(pid))
    assert not Path(log_path).exists()
