"""Would compiled code pay off for the half-space trees? numba against the numpy version.

Runs :meth:`monitor.anomaly.hst.HalfSpaceTrees.score_learn` (the daemon's numpy code)
and the same walk written as one numba kernel (every point: score against the reference
masses, add to the latest masses, roll the window) on two identical forests of
``--streams`` rows, ``--rounds`` rounds of ``--points`` distinct rows each. Checks the
scores are identical and prints points/s of each.

numba is not a dependency of the project: ``.venv/bin/pip install numba`` first (the
script says so and exits 1 without it).

Run: ``.venv/bin/python benchmarks/hst_numba.py [--streams 10000] [--points 5000]``
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

from monitor.anomaly.hst import HalfSpaceTrees

try:
    import numba
except ImportError:  # pragma: no cover - depends on the environment
    numba = None


def _kernel(
    rows: np.ndarray,
    features: np.ndarray,
    split_feature: np.ndarray,
    split_threshold: np.ndarray,
    r_mass: np.ndarray,
    l_mass: np.ndarray,
    counter: np.ndarray,
    first_window: np.ndarray,
    height: int,
    window: int,
    size_limit: float,
    max_score: float,
    out: np.ndarray,
) -> None:
    n_trees = r_mass.shape[1]
    n_nodes = 2 ** (height + 1) - 1
    for i in range(rows.shape[0]):
        r = rows[i]
        total = 0.0
        for t in range(n_trees):
            node = 0
            walking = True
            for depth in range(height + 1):
                mass = r_mass[r, t, node]
                if walking:
                    total += mass * (2.0**depth)
                    if mass < size_limit:
                        walking = False
                l_mass[r, t, node] += 1
                if depth < height:
                    k = t * n_nodes + node
                    right = features[i, split_feature[k]] >= split_threshold[k]
                    node = 2 * node + 1 + (1 if right else 0)
        out[i] = 0.0 if first_window[r] else 1.0 - total / max_score
        count = counter[r] + 1
        if count >= window:
            r_mass[r] = l_mass[r]
            l_mass[r] = 0
            first_window[r] = False
            count = 0
        counter[r] = count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=5_000, help="distinct rows per round")
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    if numba is None:
        print("numba is not installed: .venv/bin/pip install numba")
        sys.exit(1)
    kernel: Any = numba.njit(nogil=True)(_kernel)

    forests = [HalfSpaceTrees(3, seed=42, capacity=args.streams) for _ in range(2)]
    reference, compiled = forests
    split_feature = compiled._split_feature.astype(np.int64)
    split_threshold = compiled._split_threshold
    # The numpy version keeps each leaf's walk total over the reference window and the
    # leaves of the window being filled; the kernel keeps both windows' masses, as river.
    r_mass = np.zeros((args.streams, compiled.n_trees, compiled.trees.n_nodes), np.uint8)
    l_mass = np.zeros_like(r_mass)
    counter = np.zeros(args.streams, np.int32)
    first_window = np.ones(args.streams, np.bool_)
    out = np.empty(args.points)
    rng = np.random.default_rng(0)
    worst = 0.0
    numpy_seconds = numba_seconds = 0.0
    for r in range(args.rounds):
        rows = rng.choice(args.streams, args.points, replace=False).astype(np.int64)
        features = rng.random((args.points, 3))
        started = time.perf_counter()
        expected = reference.score_learn(rows, features)
        middle = time.perf_counter()
        kernel(
            rows,
            features,
            split_feature,
            split_threshold,
            r_mass,
            l_mass,
            counter,
            first_window,
            compiled.height,
            compiled.window_size,
            compiled._size_limit,
            compiled._max_score,
            out,
        )
        ended = time.perf_counter()
        worst = max(worst, float(np.abs(expected - out).max()))
        if r:  # the first round compiles the kernel
            numpy_seconds += middle - started
            numba_seconds += ended - middle
    timed = (args.rounds - 1) * args.points
    print(f"largest score difference numpy - numba: {worst:.1e}")
    print(
        f"score+learn at {args.streams:,} streams: numpy {timed / numpy_seconds:,.0f} points/s, "
        f"numba {timed / numba_seconds:,.0f} points/s"
    )


if __name__ == "__main__":
    main()
