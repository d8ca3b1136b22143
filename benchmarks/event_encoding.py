"""Cost of one anomaly event's JSON, and of its id and times against the references.

Times, per event: ``event_id`` (hashlib) against ``uuid.uuid5`` (what it reproduces),
``iso_time`` of one time again and again (remembered) and of distinct times against
``datetime.isoformat``, and ``AnomalyEvent.encode`` with ``detected_at`` given as the
formatted text (as the daemon does once a batch) and as an epoch time.

Run: ``.venv/bin/python benchmarks/event_encoding.py [--number 20000]``
"""

from __future__ import annotations

import argparse
import timeit
import uuid
from datetime import UTC, datetime

from monitor.daemon.events import EVENT_NAMESPACE, AnomalyEvent, event_id, iso_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000, help="calls timed per figure")
    args = parser.parse_args()
    n = args.number
    event = AnomalyEvent(
        "bench.metric_3{host=h-00012}", "bench.metric_3", (("host", "h-00012"),),
        1.7e9, 9.5, 5.0, 4.0, 6.0, 0.93, 0.5, "critical",
        {"forecast": 0.5, "rolling": 0.2, "hst": 0.1, "level": 0.1, "season": 0.1},
        "metrics", 0, 7,
    )  # fmt: skip
    times = [1.7e9 + i * 0.001 for i in range(n)]
    distinct = iter(times)
    reference_times = iter(times)
    detected_at = iso_time(1.7e9 + 5)
    figures = {
        "event_id (hashlib)": lambda: event_id(event.stream, event.ts),
        "uuid.uuid5 (reference)": lambda: str(
            uuid.uuid5(EVENT_NAMESPACE, f"{event.stream}@{event.ts!r}")
        ),
        "iso_time, one time": lambda: iso_time(event.ts),
        "iso_time, distinct times": lambda: iso_time(next(distinct)),
        "datetime.isoformat (reference)": lambda: (
            datetime.fromtimestamp(next(reference_times), UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        ),
        "encode, detected_at as text": lambda: event.encode(detected_at),
        "encode, detected_at as epoch": lambda: event.encode(1.7e9 + 5),
    }
    for label, call in figures.items():
        seconds = timeit.timeit(call, number=n) / n
        print(f"{label:<32} {seconds * 1e6:6.2f} us")


if __name__ == "__main__":
    main()
