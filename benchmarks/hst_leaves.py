"""How fast the half-space trees find each point's leaf: the table against the walk.

For ``--points`` points a round (uniform features in [0, 1]) and the default trees, times
:meth:`HalfSpaceTrees.walk` (down the trees a depth at a time) and :class:`LeafTable`
(ranks -> leaf lookups), checks that both give the same leaves, and prints ns a point
(best of ``--repeat``) and the table's size and build time.

Run: ``.venv/bin/python benchmarks/hst_leaves.py [--points 5000] [--repeat 7]``
"""

from __future__ import annotations

import argparse
import time
import timeit

import numpy as np

from monitor.anomaly.hst import HalfSpaceTrees, LeafTable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    trees = HalfSpaceTrees(n_features=3, seed=42).trees  # the default trees
    walker = HalfSpaceTrees(n_features=3, seed=42)
    started = time.process_time()
    table = LeafTable(trees)
    built = time.process_time() - started
    features = np.random.default_rng(0).random((args.points, 3))
    if not np.array_equal(table.leaves(features), walker.walk(features)):
        raise SystemExit("the table and the walk disagree")
    for name, find in (("walk", walker.walk), ("table", table.leaves)):
        best = min(timeit.repeat(lambda f=find: f(features), number=20, repeat=args.repeat))
        print(f"{name:5s}: {best / 20 / args.points * 1e9:6.1f} ns a point")
    print(f"table: {table.table.nbytes / 1e6:.1f} MB, built in {built:.2f} s of CPU")


if __name__ == "__main__":
    main()
