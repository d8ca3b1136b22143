"""Cost of decoding one record, per input format, and of the point it becomes.

For each format the daemon reads (native, prometheus-kafka-adapter, telegraf), it
builds ``--records`` records of ``--streams`` streams (the same labelled identities
as the other benchmarks, values varying), decodes them all once to fill the label
caches (as a running daemon has), then prints the best of ``--repeat`` timed passes
in nanoseconds per record, alone and in batches through the daemon's
:class:`~monitor.records.batch.BatchDecoder` (columns, as the daemon takes them). It
also prints the cost of building one :class:`monitor.records.Point` against a frozen
dataclass with the same fields (what ``Point`` was before it became a named tuple).

Run: ``.venv/bin/python benchmarks/decode_cost.py [--records 20000] [--repeat 7]``
"""

from __future__ import annotations

import argparse
import functools
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import orjson

from monitor.records import Point, get_decoder
from monitor.records.base import Decoder, Labels
from monitor.records.batch import BatchDecoder

TS = 1_700_000_000.0
BATCH = 5_000
"""Records per polled batch given to BatchDecoder (kafka.max_poll_records)."""


def native(i: int, t: int, value: float) -> bytes:
    return orjson.dumps(
        {
            "stream": f"bench.metric_{i % 7}",
            "ts": TS + 60 * t,
            "value": value,
            "labels": {"host": f"h-{i:05d}"},
        }
    )


def prometheus_adapter(i: int, t: int, value: float) -> bytes:
    name = f"bench_metric_{i % 7}"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(TS + 60 * t))
    return orjson.dumps(
        {
            "timestamp": stamp,
            "value": repr(value),
            "name": name,
            "labels": {"__name__": name, "host": f"h-{i:05d}", "job": "node"},
        }
    )


def telegraf(i: int, t: int, value: float) -> bytes:
    return orjson.dumps(
        {
            "fields": {"usage": value},
            "name": f"bench_{i % 7}",
            "tags": {"host": f"h-{i:05d}"},
            "timestamp": int(TS) + 60 * t,
        }
    )


FORMATS: dict[str, Callable[[int, int, float], bytes]] = {
    "native": native,
    "prometheus-kafka-adapter": prometheus_adapter,
    "telegraf": telegraf,
}


@dataclass(frozen=True, slots=True)
class FrozenPoint:
    """The fields of :class:`Point` as a frozen dataclass, the reference it is timed against."""

    name: str
    labels: Labels
    ts: float
    value: float


def decode_all(decode: Decoder, payloads: list[bytes]) -> None:
    for payload in payloads:
        decode(payload)


def build_all(kind: type[Point] | type[FrozenPoint], n: int) -> None:
    for _ in range(n):
        kind("cpu", (), TS, 1.0)


def best_ns(fn: Callable[[], object], per: int, repeat: int) -> float:
    """Best of ``repeat`` timed calls of ``fn``, in nanoseconds per item of ``per``."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times) / per * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    values = rng.normal(500.0, 50.0, args.records).tolist()
    gc.collect()
    gc.freeze()  # as `monitor run` does: the setup's objects are not traversed again
    for fmt, make in FORMATS.items():
        payloads = [make(i % args.streams, i // args.streams, v) for i, v in enumerate(values)]
        decode = get_decoder(fmt)
        points = [p for payload in payloads for p in decode(payload)]  # fills the caches
        ns = best_ns(functools.partial(decode_all, decode, payloads), len(payloads), args.repeat)
        print(f"decode {fmt:<26} {ns:6.0f} ns/record ({len(points) // len(payloads)} point each)")
        # The daemon decodes a polled batch at a time into columns (native: inline).
        batch = BatchDecoder({}, fmt, max_record_bytes=65_536)
        batches = [("metrics", payloads[i : i + BATCH]) for i in range(0, len(payloads), BATCH)]
        batch(batches)
        ns = best_ns(functools.partial(batch, batches), len(payloads), args.repeat)
        print(f"batch  {fmt:<26} {ns:6.0f} ns/record (BatchDecoder, into columns)")

    n = args.records
    for label, kind in (("Point (named tuple)", Point), ("frozen dataclass", FrozenPoint)):
        ns = best_ns(functools.partial(build_all, kind, n), n, args.repeat)
        print(f"build  {label:<26} {ns:6.0f} ns/point")


if __name__ == "__main__":
    main()
