"""The one-line summary of ``make bench``, assembled from ``results/bench/pipeline.json``.

Prints exactly::

    bench: vs_client=R1 vs_river=R2 bytes_per_stream=B scrape_ms=M p99_ms=L fast_rps=F

R1 is the daemon's end-to-end rate over the bare client's (kafka-python), R2 the daemon's
(kafka-python) over the naive river pipeline's, B the bytes per stream at 100,000 streams
(resident memory growth, or the model arrays allocated where larger:
``memory_per_stream.py``), M the median ``/metrics`` scrape at the benchmark's stream count
(kafka-python daemon), L the p99 event-to-anomaly-event latency (kafka-python daemon) and F
the daemon's end-to-end rate with ``kafka.transport: confluent`` (``nan`` where a figure was
not measured).

>>> line({"kafka-python": {"vs_client": 0.5, "daemon_rps": 60000.0, "scrape_median_ms": 30.0,
...       "latency_p99_ms": 80.0}, "river": {"records_per_s": 3000.0},
...       "memory": {"100000": {"bytes_per_stream": 15000.0}}})
'bench: vs_client=0.50 vs_river=20.0 bytes_per_stream=15000 scrape_ms=30.0 p99_ms=80.0 fast_rps=nan'

Run: ``.venv/bin/python benchmarks/summary.py [results/bench/pipeline.json]``
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from bench_data import RESULTS

NAN = float("nan")


def line(figures: dict[str, Any]) -> str:
    """The summary line of the figures that ``pipeline.py`` wrote."""
    slow = figures.get("kafka-python", {})
    fast = figures.get("confluent", {})
    river = figures.get("river", {}).get("records_per_s", NAN)
    daemon = slow.get("daemon_rps", NAN)
    at_100k = figures.get("memory", {}).get("100000", {})
    memory = at_100k.get("bytes_per_stream", at_100k.get("rss_bytes_per_stream", NAN))
    vs_river = daemon / river if river and not math.isnan(river) else NAN
    return (
        f"bench: vs_client={slow.get('vs_client', NAN):.2f} vs_river={vs_river:.1f} "
        f"bytes_per_stream={memory:.0f} scrape_ms={slow.get('scrape_median_ms', NAN):.1f} "
        f"p99_ms={slow.get('latency_p99_ms', NAN):.1f} fast_rps={fast.get('daemon_rps', NAN):.0f}"
    )


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS / "pipeline.json"
    print(line(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
