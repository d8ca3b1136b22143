"""Half-space trees (Tan, Ting & Liu 2011) with one set of trees shared by every stream.

The random split structure of a half-space tree depends only on the feature
space, here [0, 1]^d, so every stream uses the same trees and keeps only its own
node masses: a reference mass (the last complete window) and a latest mass (the
window being filled). Masses never exceed the window size, so they are stored as
``uint8`` (``uint16`` for windows above 255).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from monitor.state import ArraySpec, ArrayState

PADDING = 0.15
"""Splits are drawn away from the edges of a node's range, as in river."""


@dataclass(frozen=True)
class Trees:
    """Shared tree structure in heap layout: node ``i`` has children ``2i+1`` and ``2i+2``.

    ``feature`` and ``threshold`` have shape ``(n_trees, 2**height - 1)`` (internal nodes).
    """

    feature: np.ndarray
    threshold: np.ndarray
    height: int

    @property
    def n_trees(self) -> int:
        return int(self.feature.shape[0])

    @property
    def n_nodes(self) -> int:
        return 2 ** (self.height + 1) - 1


def build_trees(n_features: int, n_trees: int, height: int, seed: int | None) -> Trees:
    """Draw random half-space trees over [0, 1]^n_features.

    Uses the same random draws, in the same order, as river's
    ``HalfSpaceTrees(n_trees, height, seed=seed)`` fed with features that sort as
    ``0 .. n_features - 1``, so both build identical trees.

    >>> trees = build_trees(n_features=2, n_trees=3, height=2, seed=1)
    >>> trees.feature.shape, trees.n_nodes
    ((3, 3), 7)
    """
    rng = random.Random(seed)
    n_internal = 2**height - 1
    feature = np.zeros((n_trees, n_internal), dtype=np.int8)
    threshold = np.zeros((n_trees, n_internal), dtype=np.float64)
    features = list(range(n_features))

    def grow(tree: int, node: int, depth_left: int, limits: list[tuple[float, float]]) -> None:
        if depth_left == 0:
            return
        on = rng.choices(features, weights=[hi - lo for lo, hi in limits])[0]
        lo, hi = limits[on]
        at = rng.uniform(lo + PADDING * (hi - lo), hi - PADDING * (hi - lo))
        feature[tree, node] = on
        threshold[tree, node] = at
        limits[on] = (lo, at)
        grow(tree, 2 * node + 1, depth_left - 1, limits)
        limits[on] = (at, hi)
        grow(tree, 2 * node + 2, depth_left - 1, limits)
        limits[on] = (lo, hi)

    for tree in range(n_trees):
        grow(tree, 0, height, [(0.0, 1.0)] * n_features)
    return Trees(feature, threshold, height)


class HalfSpaceTrees:
    """Half-space trees anomaly detector over many streams; higher score = more anomalous.

    Scores agree with ``river.anomaly.HalfSpaceTrees`` run per stream with the same
    ``n_trees``, ``height``, ``window_size`` and ``seed``: 0 during a stream's first
    window, then ``1 - mass_score / max_score``. Features must lie in [0, 1].

    Parameters
    ----------
    n_features
        Number of features per point.
    n_trees, height, window_size, seed
        As in river.

    Examples
    --------
    >>> hst = HalfSpaceTrees(n_features=1, n_trees=5, height=3, window_size=3, seed=42)
    >>> row = np.array([0])
    >>> for x in [0.5, 0.45, 0.43, 0.44, 0.445, 0.45]:
    ...     hst.learn(row, np.array([[x]]))
    >>> float(hst.score(row, np.array([[0.45]]))[0].round(3))
    0.071
    >>> float(hst.score(row, np.array([[0.0]]))[0].round(3))
    0.853
    """

    def __init__(
        self,
        n_features: int,
        n_trees: int = 10,
        height: int = 8,
        window_size: int = 250,
        seed: int | None = None,
        capacity: int = 16,
    ) -> None:
        if n_features < 1:
            raise ValueError(f"n_features must be >= 1, got {n_features}")
        if n_trees < 1 or height < 1:
            raise ValueError(f"n_trees and height must be >= 1, got {n_trees}, {height}")
        if not 1 <= window_size <= 65_535:
            raise ValueError(f"window_size must be in [1, 65535], got {window_size}")
        self.n_features = n_features
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.seed = seed
        self.trees = build_trees(n_features, n_trees, height, seed)
        mass = np.uint8 if window_size <= 255 else np.uint16
        shape = (n_trees, self.trees.n_nodes)
        self.state = ArrayState(
            {
                "r_mass": ArraySpec(shape, mass, 0),
                "l_mass": ArraySpec(shape, mass, 0),
                "counter": ArraySpec((), np.int32, 0),
                "first_window": ArraySpec((), np.bool_, True),
            },
            capacity,
        )
        self._tree_index = np.arange(n_trees)
        self._depth_weight = 2.0 ** np.arange(height + 1)
        self._size_limit = 0.1 * window_size
        self._max_score = n_trees * window_size * (2 ** (height + 1) - 1)

    def paths(self, features: np.ndarray) -> np.ndarray:
        """Node visited at each depth of each tree: shape ``(n_points, n_trees, height + 1)``."""
        n = len(features)
        node = np.zeros((n, self.n_trees), dtype=np.int64)
        out = np.empty((n, self.n_trees, self.height + 1), dtype=np.int64)
        out[:, :, 0] = 0
        points = np.arange(n)[:, None]
        for depth in range(self.height):
            split_on = self.trees.feature[self._tree_index, node]
            at = self.trees.threshold[self._tree_index, node]
            go_right = features[points, split_on] >= at
            node = 2 * node + 1 + go_right
            out[:, :, depth + 1] = node
        return out

    def score(
        self, rows: np.ndarray, features: np.ndarray, paths: np.ndarray | None = None
    ) -> np.ndarray:
        """Anomaly score in [0, 1] of each point against its stream's reference masses.

        Rows may repeat: scoring reads only the reference masses.
        """
        if paths is None:
            paths = self.paths(features)
        s = self.state
        mass = s.r_mass[rows[:, None, None], self._tree_index[None, :, None], paths].astype(
            np.float64
        )
        # Walk stops after the first node whose mass falls under the size limit.
        small = mass < self._size_limit
        before_stop = np.cumsum(small, axis=2) - small == 0
        total = (mass * self._depth_weight * before_stop).sum(axis=(1, 2))
        out = 1.0 - total / self._max_score
        return np.where(s.first_window[rows], 0.0, out)

    def learn(
        self, rows: np.ndarray, features: np.ndarray, paths: np.ndarray | None = None
    ) -> None:
        """Add one point to each of ``rows`` (distinct), rolling windows that complete."""
        if len(rows):
            self.state.ensure(int(rows.max()) + 1)
        if paths is None:
            paths = self.paths(features)
        s = self.state
        s.l_mass[rows[:, None, None], self._tree_index[None, :, None], paths] += 1
        counter = s.counter[rows] + 1
        rolled = counter >= self.window_size
        if rolled.any():
            done = rows[rolled]
            s.r_mass[done] = s.l_mass[done]
            s.l_mass[done] = 0
            s.first_window[done] = False
            counter[rolled] = 0
        s.counter[rows] = counter

    def score_learn(self, rows: np.ndarray, features: np.ndarray) -> np.ndarray:
        """Score each point, then learn it (rows distinct): the online protocol."""
        if len(rows):
            self.state.ensure(int(rows.max()) + 1)
        paths = self.paths(features)
        scores = self.score(rows, features, paths)
        self.learn(rows, features, paths)
        return scores
