"""The benchmarks' data: S synthetic streams with seasonality, noise and planted spikes.

Every stream is a level (log-uniform 10..1000) plus a sine of ``SEASON`` points (2-8 % of
the level) plus Gaussian noise (0.5-2 % of the level), like ``monitor.demo.synthetic``, built
with numpy for all streams at once so 100,000 streams take a second. After ``quiet`` points a
point is a spike (+/- 8..15 times the stream's clean standard deviation) with probability
``spike_rate``. Stream ``i`` is ``demo.cpu``, ``demo.latency_ms`` or ``demo.requests`` of host
``h-<i // 3>``, as in the demo fleet. Records are native JSON, keyed by stream key, exactly as
the demo feed writes them (:func:`monitor.replay.encode_native`). Everything depends only on
the seed.

>>> data = Fleet(6, seed=1)
>>> data.keys[:2]
[b'demo.cpu{host=h-00000}', b'demo.latency_ms{host=h-00000}']
>>> keys, payloads, spiked = data.records(0, 2)
>>> len(payloads), payloads[0][:39]
(12, b'{"stream":"demo.cpu","ts":1700000000.0,')
>>> payloads[7] == data.record(1, 1, data.values(1)[0][1])
True
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from monitor.demo.synthetic import FLEET_METRICS
from monitor.records.base import stream_key
from monitor.replay import encode_native

SEASON = 24
"""Points per season of the synthetic streams."""
START_TS = 1_700_000_000.0
STEP = 60.0
RESULTS = Path(__file__).resolve().parent.parent / "results" / "bench"
"""Where the benchmark scripts write their figures as JSON (ignored by git)."""


def compact(payload: bytes) -> bytes:
    """A copy of ``payload`` in an allocation of its own size, for payloads kept by the million.

    Each ``orjson.dumps`` result (orjson 3.13) keeps a page-sized allocation: 3,000,000
    records of 97 bytes held 12.4 GB of resident memory (4,120 bytes each), enough for the
    OOM killer at ``--points 560``; copied as they are made, about 110 bytes each.

    >>> compact(b'{"a":1}')
    b'{"a":1}'
    """
    return bytes(memoryview(payload))


def native_payload(name: str, ts: float, value: float, labels: dict[str, str]) -> bytes:
    """``encode_native``'s bytes, from a labels dict the caller builds once per stream (10x
    faster than from label pairs), :func:`compact`.

    >>> native_payload("cpu", 1.0, 2.5, {"host": "a"})
    b'{"stream":"cpu","ts":1.0,"value":2.5,"labels":{"host":"a"}}'
    """
    return compact(orjson.dumps({"stream": name, "ts": ts, "value": value, "labels": labels}))


class Fleet:
    """``n_streams`` deterministic streams; :meth:`records` renders points ``t0..t1`` of all.

    Points are produced round-robin: point ``t`` of every stream, then point ``t + 1``.
    """

    def __init__(
        self, n_streams: int, seed: int = 0, spike_rate: float = 0.002, quiet: int = 30
    ) -> None:
        self.n_streams = n_streams
        self.spike_rate = spike_rate
        self.quiet = quiet
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.level = np.exp(rng.uniform(np.log(10.0), np.log(1000.0), n_streams))
        self.amplitude = self.level * rng.uniform(0.02, 0.08, n_streams)
        self.noise = self.level * rng.uniform(0.005, 0.02, n_streams)
        self.phase = rng.uniform(0.0, 2 * np.pi, n_streams)
        self.sigma = np.sqrt(self.amplitude**2 / 2 + self.noise**2)
        self.names = [FLEET_METRICS[i % 3] for i in range(n_streams)]
        self.labels = [(("host", f"h-{i // 3:05d}"),) for i in range(n_streams)]
        self.keys = [
            stream_key(n, lab).encode("utf-8")
            for n, lab in zip(self.names, self.labels, strict=True)
        ]

    def values(self, t: int, spikes: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The values of point ``t`` of every stream, and which of them are spikes."""
        rng = np.random.default_rng([self.seed, t])
        clean = self.level + self.amplitude * np.sin(2 * np.pi * t / SEASON + self.phase)
        values = clean + rng.normal(0.0, 1.0, self.n_streams) * self.noise
        spiked = np.zeros(self.n_streams, dtype=bool)
        if spikes and t >= self.quiet:
            spiked = rng.random(self.n_streams) < self.spike_rate
            size = rng.uniform(8.0, 15.0, self.n_streams) * self.sigma
            sign = np.where(rng.random(self.n_streams) < 0.5, -1.0, 1.0)
            values = np.where(spiked, clean + sign * size, values)
        return values, spiked

    def ts(self, t: int) -> float:
        return START_TS + STEP * t

    def record(self, i: int, t: int, value: float) -> bytes:
        """The native record of stream ``i`` at point ``t`` with ``value``."""
        return encode_native(self.names[i], self.labels[i], self.ts(t), value)

    def records(self, t0: int, t1: int) -> tuple[list[bytes], list[bytes], int]:
        """Keys and values of points ``t0 <= t < t1`` of every stream, and the spike count."""
        keys: list[bytes] = []
        payloads: list[bytes] = []
        spiked = 0
        label_dicts = [dict(lab) for lab in self.labels]
        for t in range(t0, t1):
            values, spikes = self.values(t)
            spiked += int(spikes.sum())
            ts = self.ts(t)
            keys.extend(self.keys)
            payloads.extend(
                native_payload(n, ts, v, lab)
                for n, lab, v in zip(self.names, label_dicts, values.tolist(), strict=True)
            )
        return keys, payloads, spiked


def rss_bytes() -> int:
    """Current resident set size of this process, from /proc (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def write_result(name: str, figures: dict[str, Any]) -> Path:
    """Write ``figures`` as ``results/bench/<name>.json``; return the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    return path


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` shows them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_python(script: str, *args: str) -> dict[str, Any]:
    """Run ``benchmarks/<script>`` in a fresh interpreter; return the JSON of its last line."""
    path = Path(__file__).resolve().parent / script
    done = subprocess.run(
        [sys.executable, str(path), *args], check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
