"""Half-space trees (Tan, Ting & Liu 2011) with one set of trees shared by every stream.

The random split structure of a half-space tree depends only on the feature
space, here [0, 1]^d, so every stream uses the same trees and keeps only its own
summary of the last complete window (the reference points are scored against) and,
for the window being filled, how many of its points reached each leaf.

A point's score in a tree depends only on the leaf it reaches: its walk adds the mass
of each node on the leaf's path times ``2**depth``, stopping after the first node whose
mass is under the size limit. So when a window completes, its node masses are summed
from the leaf counts (a point adds one to every ancestor of its leaf) and each leaf's
walk total is worked out once, top down; scoring a point is then one lookup per tree
instead of a walk through the masses. The root's mass is always the window size and
every deeper term is even, so a leaf keeps ``(total - window_size) / 2``: under 2**16
for the default trees (250 x 255 at height 8), as ``uint16``, the same bytes as the
node masses it replaces. The scores are exactly river's (``river.anomaly.HalfSpaceTrees``
per stream, same seed): the tests compare them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from monitor.state import ArraySpec, ArrayState, flat_view

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
        n_leaves = 2**height
        mass = np.uint8 if window_size <= 255 else np.uint16
        walk = np.uint16 if window_size * (n_leaves - 1) < 2**16 else np.uint32
        self.state = ArrayState(
            {
                "r_walk": ArraySpec((n_trees, n_leaves), walk, 0),
                "l_leaf": ArraySpec((n_trees, n_leaves), mass, 0),
                "counter": ArraySpec((), np.int32, 0),
                "first_window": ArraySpec((), np.bool_, True),
            },
            capacity,
        )
        self._n_leaves = n_leaves
        self._tree_index = np.arange(n_trees)
        # Every node of every tree numbered in one sequence, tree after tree (heap layout
        # within a tree): each internal node's split and the number of its left child
        # (the right one is next), read with ``take``.
        n_nodes, n_internal = self.trees.n_nodes, n_leaves - 1
        self._roots = self._tree_index * n_nodes
        internal = (self._roots[:, None] + np.arange(n_internal)).ravel()
        self._split_feature = np.zeros(n_trees * n_nodes, dtype=np.intp)
        self._split_feature[internal] = self.trees.feature.ravel()
        self._split_threshold = np.zeros(n_trees * n_nodes)
        self._split_threshold[internal] = self.trees.threshold.ravel()
        self._left_child = np.zeros(n_trees * n_nodes, dtype=np.intp)
        self._left_child[internal] = (self._roots[:, None] + 2 * np.arange(n_internal) + 1).ravel()
        self._first_leaves = self._roots + n_internal
        self._size_limit = 0.1 * window_size
        self._max_score = n_trees * window_size * (2 ** (height + 1) - 1)
        self._root_total = n_trees * window_size

    def leaves(self, rows: np.ndarray, features: np.ndarray) -> np.ndarray:
        """Flat index, in a stream's ``(rows, trees, leaves)`` arrays, of the leaf each
        point reaches in each tree; shape ``(n_points, n_trees)``.

        >>> hst = HalfSpaceTrees(n_features=2, n_trees=3, height=2, seed=1)
        >>> hst.leaves(np.array([1]), np.array([[0.2, 0.9]])).tolist()
        [[13, 19, 22]]
        """
        n, n_features = features.shape
        values = np.ascontiguousarray(features, dtype=np.float64).ravel()
        point_offset = (np.arange(n) * n_features)[:, None]
        node = np.repeat(self._roots[None, :], n, axis=0)
        for _ in range(self.height):
            split_on = point_offset + self._split_feature.take(node)
            go_right = values.take(split_on) >= self._split_threshold.take(node)
            node = self._left_child.take(node)
            node += go_right
        return (rows[:, None] * self.n_trees + self._tree_index) * self._n_leaves + (
            node - self._first_leaves
        )

    def score(
        self, rows: np.ndarray, features: np.ndarray, leaves: np.ndarray | None = None
    ) -> np.ndarray:
        """Anomaly score in [0, 1] of each point against its stream's reference window.

        Rows may repeat: scoring reads only the reference. ``leaves`` are the points'
        :meth:`leaves`, computed here when not given.
        """
        if leaves is None:
            leaves = self.leaves(rows, features)
        s = self.state
        walks = flat_view(s.r_walk).take(leaves).sum(axis=1, dtype=np.int64)
        out = 1.0 - (self._root_total + 2 * walks) / self._max_score
        return np.where(s.first_window[rows], 0.0, out)

    def learn(
        self, rows: np.ndarray, features: np.ndarray, leaves: np.ndarray | None = None
    ) -> None:
        """Add one point to each of ``rows`` (distinct), rolling windows that complete."""
        if len(rows):
            self.state.ensure(int(rows.max()) + 1)
        if leaves is None:
            leaves = self.leaves(rows, features)
        s = self.state
        # Rows are distinct, so no leaf cell repeats.
        flat_view(s.l_leaf)[leaves.ravel()] += 1
        counter = s.counter[rows] + 1
        rolled = counter >= self.window_size
        if rolled.any():
            done = rows[rolled]
            for chunk in np.array_split(done, -(-len(done) // _ROLL_CHUNK)):
                s.r_walk[chunk] = self.walks(s.l_leaf[chunk])
            s.l_leaf[done] = 0
            s.first_window[done] = False
            counter[rolled] = 0
        s.counter[rows] = counter

    def walks(self, leaf_counts: np.ndarray) -> np.ndarray:
        """Each leaf's walk total over a window, less the root's mass and halved, from
        the number of the window's points that reached each leaf: both of shape
        ``(streams, n_trees, 2**height)``, the totals in ``r_walk``'s dtype.

        A node's mass is the sum of the leaf counts below it. A walk adds each node's
        mass times ``2**depth`` and stops after the first node whose mass is under
        ``0.1 * window_size``. Here the window of 3 gives a limit of 0.3 and node masses
        3 (root), 1 and 2, then 1, 0, 0, 2: the walk to the first leaf adds 1 x 2 +
        1 x 4 (halved: 3), the one to the second stops at its empty self (1), the one
        to the last adds 2 x 2 + 2 x 4 (6).

        >>> hst = HalfSpaceTrees(n_features=1, n_trees=1, height=2, window_size=3)
        >>> hst.walks(np.array([[[1, 0, 0, 2]]], dtype=np.uint8)).tolist()
        [[[3, 1, 2, 6]]]
        """
        streams, n_trees, n_leaves = leaf_counts.shape
        dtype = self.state.r_walk.dtype
        # Node-major (heap order), so that each node's masses over every (stream, tree)
        # are one contiguous row; the children of node i are rows 2i+1 and 2i+2.
        mass = np.empty((self.trees.n_nodes, streams * n_trees), dtype=leaf_counts.dtype)
        mass[n_leaves - 1 :] = leaf_counts.reshape(streams * n_trees, n_leaves).T
        for depth in range(self.height - 1, -1, -1):
            first, width = 2**depth - 1, 2**depth
            children = mass[2 * first + 1 : 2 * first + 1 + 2 * width]
            np.add(children[0::2], children[1::2], out=mass[first : first + width])
        big = mass >= self._size_limit
        # For the nodes of one depth: the walks' totals so far, and whether they go on.
        total = np.zeros((1, streams * n_trees), dtype=dtype)
        walking = big[:1]
        for depth in range(1, self.height + 1):
            first, width = 2**depth - 1, 2**depth
            weight = walking.astype(dtype) << dtype.type(depth - 1)
            next_total = np.empty((width, streams * n_trees), dtype=dtype)
            next_walking = np.empty((width, streams * n_trees), dtype=np.bool_)
            for side in (0, 1):
                nodes = slice(first + side, first + width, 2)
                np.multiply(mass[nodes], weight, out=next_total[side::2])
                next_total[side::2] += total
                np.logical_and(walking, big[nodes], out=next_walking[side::2])
            total, walking = next_total, next_walking
        return total.T.reshape(streams, n_trees, n_leaves)

    def score_learn(self, rows: np.ndarray, features: np.ndarray) -> np.ndarray:
        """Score each point, then learn it (rows distinct): the online protocol."""
        if len(rows):
            self.state.ensure(int(rows.max()) + 1)
        leaves = self.leaves(rows, features)
        scores = self.score(rows, features, leaves)
        self.learn(rows, features, leaves)
        return scores


_ROLL_CHUNK = 256
"""Streams whose windows complete together are summarised this many at a time, so the
node masses and totals in between stay a few tens of MB."""
