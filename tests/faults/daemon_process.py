"""``monitor run`` as a child process for fault tests: config, start, scrape, stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from monitor.kafka.ports import free_port
from tests.probes import Samples, scrape, wait_for


class DaemonProcess:
    """A ``python -m monitor run`` child with its output in a file and its /metrics port.

    ``settings`` is the configuration as a dict; ``metrics.port`` is set to a free
    port. Use as a context manager: the process is killed on exit if still running.
    """

    def __init__(self, settings: dict[str, Any], workdir: Path) -> None:
        self.port = free_port()
        settings = {**settings, "metrics": {"port": self.port, "address": "127.0.0.1"}}
        self.config = workdir / "monitor.yaml"
        self.config.write_text(json.dumps(settings))
        self.log_path = workdir / "daemon.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> DaemonProcess:
        with open(self.log_path, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def scrape(self) -> Samples | None:
        """Every sample of /metrics (prometheus-client's parser), or ``None`` if unreachable."""
        assert self.alive, f"the daemon exited:\n{self.output()[-4000:]}"
        try:
            return scrape(self.port)
        except OSError:
            return None

    def wait_metric(
        self, predicate: Callable[[Samples], bool], timeout: float, what: str
    ) -> Samples:
        """Scrape until ``predicate(samples)`` holds; return those samples."""

        def check() -> Samples | None:
            samples = self.scrape()
            return samples if samples is not None and predicate(samples) else None

        try:
            result: Samples = wait_for(check, timeout, what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the daemon's output:\n{self.output()[-3000:]}") from None
        return result

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, wait, and return the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def __enter__(self) -> DaemonProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
