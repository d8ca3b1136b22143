"""The naive baseline: one river pipeline object per stream, score then learn per event.

Per stream: ``utils.Rolling(stats.Mean)`` and ``utils.Rolling(stats.Var)`` over the daemon's
rolling window, ``time_series.HoltWinters`` (the daemon's alpha and gamma, a small trend, the
data's season), and ``anomaly.QuantileFilter`` around ``anomaly.HalfSpaceTrees`` behind a
``preprocessing.MinMaxScaler`` over the value z-score, the forecast residual and the first
difference (the features the daemon's half-space trees see). Each record is decoded with the
daemon's decoder, scored, then learned, one at a time.

The records are those of :class:`bench_data.Fleet` with the same seed as the other benchmarks,
for the first ``--subset`` streams of ``--streams`` (river keeps about 1.3 MB per stream, so
10,000 streams would need about 13 GB; the rate per record does not depend on the count).
Prints one line, then the figures as JSON on the last line.

Run: ``.venv/bin/python benchmarks/river_pipeline.py [--streams 10000] [--subset 1000]``
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import time

from bench_data import SEASON, Fleet, rss_bytes
from river import anomaly, compose, preprocessing, stats, time_series, utils

from monitor.config import MonitorConfig
from monitor.records import get_decoder


class NaiveStream:
    """The per-event river pipeline of one stream.

    >>> stream = NaiveStream(window=60, seed=1)
    >>> [stream.score_then_learn(v) for v in (1.0, 1.1, 0.9)]
    [False, False, False]
    """

    def __init__(self, window: int, seed: int, alpha: float = 0.3, gamma: float = 0.1) -> None:
        self.mean = utils.Rolling(stats.Mean, window_size=window)
        self.var = utils.Rolling(stats.Var, window_size=window)
        self.forecaster = time_series.HoltWinters(
            alpha=alpha, beta=0.01, gamma=gamma, seasonality=SEASON
        )
        self.filter = anomaly.QuantileFilter(
            compose.Pipeline(preprocessing.MinMaxScaler(), anomaly.HalfSpaceTrees(seed=seed)),
            q=0.98,
        )
        self.last: float | None = None

    def score_then_learn(self, value: float) -> bool:
        """Score ``value`` against what was learned so far, then learn it; True if anomalous."""
        mean = self.mean.get()
        sd = math.sqrt(self.var.get()) or 1.0
        try:
            expected = self.forecaster.forecast(horizon=1)[0]
        except IndexError:  # not initialised yet: the first seasons
            expected = mean
        last = value if self.last is None else self.last
        x = {"z": (value - mean) / sd, "residual": (value - expected) / sd, "diff": value - last}
        anomalous = bool(self.filter.classify(self.filter.score_one(x)))
        self.filter.learn_one(x)
        self.mean.update(value)
        self.var.update(value)
        self.forecaster.learn_one(value)
        self.last = value
        return anomalous


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=10_000, help="streams of the data set")
    parser.add_argument("--subset", type=int, default=200, help="streams measured")
    parser.add_argument("--points", type=int, default=300, help="points per stream")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    fleet = Fleet(args.streams, seed=args.seed, quiet=max(args.points - 50, 0))
    subset = min(args.subset, args.streams)
    payloads: list[tuple[str, bytes]] = []
    for t in range(args.points):
        values, _spikes = fleet.values(t)
        payloads.extend(
            (fleet.keys[i].decode(), fleet.record(i, t, float(values[i]))) for i in range(subset)
        )
    detector = MonitorConfig().detector
    decode = get_decoder("native")
    gc.collect()
    before = rss_bytes()
    streams: dict[str, NaiveStream] = {}
    flagged = 0
    # river's half-space trees only score after their first window: time that part apart.
    steady_from = subset * min(MonitorConfig().detector.hst.window_size, args.points)
    started = time.perf_counter()
    steady_started = started
    for i, (key, payload) in enumerate(payloads):
        if i == steady_from:
            steady_started = time.perf_counter()
        point = decode(payload)[0]
        stream = streams.get(key)
        if stream is None:
            stream = streams[key] = NaiveStream(
                detector.rolling_window, seed=len(streams), alpha=detector.forecaster.alpha
            )
        flagged += stream.score_then_learn(point.value)
    finished = time.perf_counter()
    gc.collect()
    per_stream = (rss_bytes() - before) / len(streams)
    rate = len(payloads) / (finished - started)
    steady = (len(payloads) - steady_from) / (finished - steady_started)
    print(
        f"river per-event pipeline: {rate:,.0f} records/s on {subset:,} of {args.streams:,} "
        f"streams x {args.points} points, {steady:,.0f} records/s once the trees score (river "
        f"needs {per_stream / 1e6:.2f} MB per stream; {flagged} flagged)"
    )
    print(
        json.dumps(
            {
                "records_per_s": rate,
                "steady_records_per_s": steady,
                "records": len(payloads),
                "streams_measured": subset,
                "streams": args.streams,
                "points": args.points,
                "rss_bytes_per_stream": per_stream,
            }
        )
    )


if __name__ == "__main__":
    main()
