"""``monitor broker`` and ``monitor replay`` as real processes."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from kafka import KafkaConsumer, KafkaProducer

from monitor.kafka.ports import free_port

pytestmark = pytest.mark.integration


def test_broker_command_serves_until_sigterm():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "broker", "--port", str(port), "--topic", "cli:2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"127.0.0.1:{port}" in line and "cli" in line, line
        servers = f"127.0.0.1:{port}"
        producer = KafkaProducer(bootstrap_servers=servers)
        producer.send("cli", b"hello").get(timeout=10)
        producer.close()
        consumer = KafkaConsumer(bootstrap_servers=servers)
        assert consumer.partitions_for_topic("cli") == {0, 1}
        consumer.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_replay_command_produces_the_csv_as_one_stream(broker, topic_name, tmp_path, read_topic):
    csv = tmp_path / "load.csv"
    csv.write_text(
        "timestamp,value\n2014-04-01 00:00:00,1.5\n2014-04-01 00:05:00,2.5\n"
        "2014-04-01 00:10:00,3.5\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "replay",
            str(csv),
            "--topic",
            topic_name,
            "--bootstrap-servers",
            broker.bootstrap_servers,
            "--label",
            "host=a",
            "--rate",
            "100",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "replayed 3 points" in result.stdout
    records = read_topic(topic_name, 3)
    assert [r.key for r in records] == [b"load{host=a}"] * 3
    assert b'"value":2.5' in records[1].value and b'"labels":{"host":"a"}' in records[1].value


def test_replay_rejects_a_malformed_label(tmp_path):
    csv = tmp_path / "x.csv"
    csv.write_text("timestamp,value\n2014-04-01 00:00:00,1\n")
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "replay", str(csv), "--label", "nolabel"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "KEY=VALUE" in result.stderr


def test_feed_command_produces_the_fleet(broker, topic_name, read_topic):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "monitor",
            "feed",
            "--bootstrap-servers",
            broker.bootstrap_servers,
            "--topic",
            topic_name,
            "--streams",
            "3",
            "--points",
            "400",
            "--season",
            "24",
            "--rate",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    words = result.stdout.split()
    sent, bad = int(words[1]), int(words[4])
    assert sent >= 3 * 400
    assert len(read_topic(topic_name, sent + bad)) == sent + bad
