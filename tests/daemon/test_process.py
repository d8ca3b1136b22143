"""``monitor run`` as a real process: SIGTERM finishes the batch, commits and exits 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from kafka import KafkaProducer

from monitor.kafka.admin import ensure_topics
from monitor.kafka.ports import free_port
from monitor.replay import encode_native
from tests.daemon_settings import TEST_CONSUMER
from tests.probes import committed_offsets, scraped_total

pytestmark = pytest.mark.integration


def consumed(port: int) -> float:
    return scraped_total(port, "monitor_records_consumed_total")


@pytest.mark.parametrize("transport", ["kafka-python", "confluent"])
def test_sigterm_commits_everything_and_exits_zero(broker, topic_name, tmp_path, transport):
    ensure_topics(broker.bootstrap_servers, {topic_name: 2})
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    n = 3000
    for t in range(n):
        stream = f"svc.{t % 10}"
        producer.send(
            topic_name,
            key=stream.encode(),
            value=encode_native(stream, (), 1_700_000_000.0 + 60 * (t // 10), 1.0 + t % 7),
        )
    producer.flush()
    producer.close()

    port = free_port()
    group = f"{topic_name}-g"
    config = tmp_path / "monitor.yaml"
    config.write_text(
        json.dumps(
            {
                "kafka": {
                    "group_id": group,
                    "transport": transport,
                    "topics": [topic_name],
                    **TEST_CONSUMER,
                },
                "events": {"topic": f"{topic_name}-events"},
                "dead_letter": {"topic": f"{topic_name}-dlq"},
                "metrics": {"port": port, "address": "127.0.0.1"},
            }
        )
    )
    env = {**os.environ, "MONITOR_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers}
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while consumed(port) < n and time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            time.sleep(0.3)
        assert consumed(port) == n
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert "received SIGTERM" in output and "stopped cleanly" in output

    committed = committed_offsets(broker.bootstrap_servers, group, topic_name, [0, 1])
    # Exactly the n records produced are committed (the embedded broker's end_offsets
    # answer can trail the true end, so the produced count is the reference).
    assert all(c and c > 0 for c in committed)
    assert sum(committed) == n
