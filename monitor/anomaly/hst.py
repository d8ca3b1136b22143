"""Half-space trees (Tan, Ting & Liu 2011) with one set of trees shared by every stream.

The random split structure of a half-space tree depends only on the feature
space, here [0, 1]^d, so every stream uses the same trees and keeps only its own
node masses of the last complete window (the reference masses points are scored
against) and, for the window being filled, how many of its points reached each leaf.
When that window completes, every node's mass is summed from the leaves below it: a
point adds one to every node on its path, which is every ancestor of its leaf. That is
the latest mass river keeps, for one update per tree and point instead of one per node
on the path (nine at height 8), and half its bytes. Masses never exceed the window
size, so they are stored as ``uint8`` (``uint16`` for windows above 255).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from monitor.state import ArraySpec, ArrayState

PADDING = 0.15
"""Splits are drawn away from the edges of a node's range, as in river."""


def _flat(array: np.ndarray) -> np.ndarray:
    """A 1-d view of a contiguous array (never a copy, so writes reach the array)."""
    view = array.view()
    view.shape = (array.size,)
    return view


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
        self.state = ArrayState(
            {
                "r_mass": ArraySpec((n_trees, self.trees.n_nodes), mass, 0),
                "l_leaf": ArraySpec((n_trees, 2**height), mass, 0),
                "counter": ArraySpec((), np.int32, 0),
                "first_window": ArraySpec((), np.bool_, True),
            },
            capacity,
        )
        n_internal = 2**height - 1
        self._tree_index = np.arange(n_trees)
        # Flattened (tree, internal node) split tables, read with ``take``.
        self._split_feature = self.trees.feature.astype(np.intp).ravel()
        self._split_threshold = self.trees.threshold.ravel()
        self._internal_offset = self._tree_index * n_internal
        self._row_cells = n_trees * self.trees.n_nodes
        self._tree_cells = self._tree_index * self.trees.n_nodes
        self._first_leaf = 2**height - 1
        self._depth_weight = 2.0 ** np.arange(height + 1)
        self._size_limit = 0.1 * window_size
        self._max_score = n_trees * window_size * (2 ** (height + 1) - 1)

    def cells(self, rows: np.ndarray, features: np.ndarray) -> np.ndarray:
        """Flat index, in a stream's ``(rows, trees, nodes)`` mass arrays, of each visited node.

        Shape ``(n_points, n_trees, height + 1)``: row ``r``, tree ``t`` and node ``k``
        are cell ``(r * n_trees + t) * n_nodes + k``; every walk starts at a root.

        >>> hst = HalfSpaceTrees(n_features=2, n_trees=3, height=2, seed=1)
        >>> cells = hst.cells(np.array([1]), np.array([[0.2, 0.9]]))
        >>> cells.shape, cells[0, :, 0].tolist()
        ((1, 3, 3), [21, 28, 35])
        """
        n, n_features = features.shape
        base = rows[:, None] * self._row_cells + self._tree_cells
        out = np.empty((n, self.n_trees, self.height + 1), dtype=np.intp)
        out[:, :, 0] = base
        values = np.ascontiguousarray(features, dtype=np.float64).ravel()
        point_offset = (np.arange(n) * n_features)[:, None]
        node = np.zeros((n, self.n_trees), dtype=np.intp)
        for depth in range(self.height):
            internal = node + self._internal_offset
            split_on = self._split_feature.take(internal)
            go_right = values.take(point_offset + split_on) >= self._split_threshold.take(internal)
            node = 2 * node + 1 + go_right
            out[:, :, depth + 1] = node + base
        return out

    def score(
        self, rows: np.ndarray, features: np.ndarray, cells: np.ndarray | None = None
    ) -> np.ndarray:
        """Anomaly score in [0, 1] of each point against its stream's reference masses.

        Rows may repeat: scoring reads only the reference masses. ``cells`` are the
        points' :meth:`cells`, computed here when not given.
        """
        if cells is None:
            cells = self.cells(rows, features)
        s = self.state
        # Depth-major copy: each depth is then one contiguous (points, trees) slice.
        mass = np.ascontiguousarray(_flat(s.r_mass).take(cells).transpose(2, 0, 1))
        # A walk adds each node's mass times 2**depth, and stops after the first node
        # whose mass is under the size limit.
        big = mass >= self._size_limit
        total = mass[0].astype(np.float64)
        walking = big[0].copy()
        for depth in range(1, self.height + 1):
            total += (mass[depth] * walking) * self._depth_weight[depth]
            if depth < self.height:
                walking &= big[depth]
        out = 1.0 - total.sum(axis=1) / self._max_score
        return np.where(s.first_window[rows], 0.0, out)

    def learn(
        self, rows: np.ndarray, features: np.ndarray, cells: np.ndarray | None = None
    ) -> None:
        """Add one point to each of ``rows`` (distinct), rolling windows that complete."""
        if len(rows):
            self.state.ensure(int(rows.max()) + 1)
        if cells is None:
            cells = self.cells(rows, features)
        s = self.state
        # Each walk's leaf, as a cell of the (rows, trees, leaves) counts.
        leaf_base = (rows[:, None] * self.n_trees + self._tree_index) * (2**self.height)
        leaf = cells[:, :, -1] - rows[:, None] * self._row_cells - self._tree_cells
        # Rows are distinct, so no cell repeats.
        _flat(s.l_leaf)[(leaf_base + leaf - self._first_leaf).ravel()] += 1
        counter = s.counter[rows] + 1
        rolled = counter >= self.window_size
        if rolled.any():
            done = rows[rolled]
            s.r_mass[done] = self.masses(s.l_leaf[done])
            s.l_leaf[done] = 0
            s.first_window[done] = False
            counter[rolled] = 0
        s.counter[rows] = counter

    def masses(self, leaf_counts: np.ndarray) -> np.ndarray:
        """Node masses, shape ``(streams, n_trees, n_nodes)``, from the number of points
        that reached each leaf, shape ``(streams, n_trees, 2**height)``.

        >>> hst = HalfSpaceTrees(n_features=1, n_trees=1, height=2, window_size=3)
        >>> hst.masses(np.array([[[1, 0, 0, 2]]], dtype=np.uint8)).tolist()
        [[[3, 1, 2, 1, 0, 0, 2]]]
        """
        streams, n_trees, n_leaves = leaf_counts.shape
        out = np.empty((streams, n_trees, self.trees.n_nodes), dtype=self.state.r_mass.dtype)
        out[:, :, n_leaves - 1 :] = leaf_counts
        for depth in range(self.height - 1, -1, -1):
            first, width = 2**depth - 1, 2**depth
            children = out[:, :, 2 * first + 1 : 2 * first + 1 + 2 * width]
            np.add(children[:, :, ::2], children[:, :, 1::2], out=out[:, :, first : first + width])
        return out

    def score_learn(self, rows: np.ndarray, features: np.ndarray) -> np.ndarray:
        """Score each point, then learn it (rows distinct): the online protocol."""
        if len(rows):
            self.state.ensure(int(rows.max()) + 1)
        cells = self.cells(rows, features)
        scores = self.score(rows, features, cells)
        self.learn(rows, features, cells)
        return scores
