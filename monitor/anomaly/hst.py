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
from typing import Literal

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
        self.table = leaf_table(self.trees)
        """The trees' :class:`LeafTable` (shared by every instance with the same trees),
        or False: too large, the points walk down the trees."""
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
        local = self.table.leaves(features) if self.table else self.walk(features)
        return (rows[:, None] * self.n_trees + self._tree_index) * self._n_leaves + local

    def walk(self, features: np.ndarray) -> np.ndarray:
        """The leaf (0 .. 2**height - 1) each point reaches in each tree, by walking
        down the trees a depth at a time; shape ``(n_points, n_trees)``. The reference
        of :class:`LeafTable`, used where there is none.

        >>> hst = HalfSpaceTrees(n_features=2, n_trees=3, height=2, seed=1)
        >>> hst.walk(np.array([[0.2, 0.9]])).tolist()
        [[1, 3, 2]]
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
        return node - self._first_leaves

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


MAX_TABLE_CELLS = 1 << 24
"""Most cells of a :class:`LeafTable` (one byte each for trees of height 8 or less)."""

_MAX_PER_BUCKET = 2
"""Most thresholds of one feature in one bucket of :class:`LeafTable`'s grid."""

_LEAF_TABLES: dict[tuple[bytes, bytes, int], LeafTable | Literal[False]] = {}
"""Leaf tables built in this process, by the trees' splits (trees are shared)."""


def leaf_table(trees: Trees) -> LeafTable | Literal[False]:
    """The :class:`LeafTable` of ``trees``, built once per process; False when it would
    take more than :data:`MAX_TABLE_CELLS` cells."""
    key = (trees.feature.tobytes(), trees.threshold.tobytes(), trees.height)
    table = _LEAF_TABLES.get(key)
    if table is None:
        cells = int(_rank_counts(trees).prod(axis=1).sum())
        table = False if cells > MAX_TABLE_CELLS else LeafTable(trees)
        _LEAF_TABLES[key] = table
    return table


def _rank_counts(trees: Trees) -> np.ndarray:
    """How many ranks each feature has in each tree (its thresholds there, plus one):
    the shape of the tree's table; ``(n_trees, n_features)``, features up to the last
    any tree splits on."""
    n_features = int(trees.feature.max()) + 1
    return np.stack([np.bincount(row, minlength=n_features) for row in trees.feature]) + 1


class LeafTable:
    """The leaf each point reaches in each tree, found with lookups instead of a walk.

    Within a tree, a point's path depends only on how many of the tree's thresholds on
    each feature the point's value reaches (its rank on that feature: 0 .. the number
    of such thresholds). So each tree has a table from the ranks of its features to a
    leaf, filled once by walking the tree from a value of every rank (for three
    features and height 8, about 86**3 cells a tree, a byte each). A point's rank in a
    tree comes from its rank among the thresholds of every tree on the feature, found
    on a grid of equal buckets over [0, 1] (the thresholds below its bucket counted in
    advance, the few in it compared), then turned into each tree's by a small table.

    The leaves are exactly the walk's (:meth:`HalfSpaceTrees.walk`): a value is
    compared with thresholds as in the walk (``>=``); NaN reaches none, as it goes left
    everywhere there; values below 0 or above 1 fall in the first or last bucket.

    >>> trees = build_trees(n_features=2, n_trees=3, height=2, seed=1)
    >>> LeafTable(trees).leaves(np.array([[0.2, 0.9]])).tolist()
    [[1, 3, 2]]
    """

    def __init__(self, trees: Trees) -> None:
        n_trees = trees.n_trees
        sizes = _rank_counts(trees)
        n_features = self.n_features = sizes.shape[1]
        own = [
            [np.sort(trees.threshold[t][trees.feature[t] == f]) for f in range(n_features)]
            for t in range(n_trees)
        ]
        cells = sizes.prod(axis=1)
        offsets = np.concatenate([[0], np.cumsum(cells)[:-1]])
        strides = np.ones((n_trees, n_features), dtype=np.int64)
        for f in range(n_features - 2, -1, -1):
            strides[:, f] = strides[:, f + 1] * sizes[:, f + 1]
        self.grids = [
            _RankGrid(np.unique(trees.threshold[trees.feature == f])) for f in range(n_features)
        ]
        # Cell (in the table of every tree, one after the other) of each feature's rank:
        # the sum over the features of cell_parts[f][rank among every tree's thresholds].
        self.cell_parts = []
        for f, grid in enumerate(self.grids):
            value_of_rank = np.concatenate([[-np.inf], grid.thresholds])
            part = np.empty((len(value_of_rank), n_trees), dtype=np.int64)
            for t in range(n_trees):
                ranks = np.searchsorted(own[t][f], value_of_rank, side="right")
                part[:, t] = ranks * strides[t, f] + (offsets[t] if f == 0 else 0)
            self.cell_parts.append(part)
        self.table = np.empty(int(cells.sum()), dtype=np.uint8 if trees.height <= 8 else np.uint16)
        n_internal = 2**trees.height - 1
        for t in range(n_trees):
            ranks = np.indices(sizes[t]).reshape(n_features, -1)
            values = np.stack(
                [np.concatenate([[-np.inf], own[t][f]])[ranks[f]] for f in range(n_features)],
                axis=1,
            )
            node = np.zeros(len(values), dtype=np.intp)
            for _ in range(trees.height):
                go_right = values[
                    np.arange(len(values)), trees.feature[t].take(node)
                ] >= trees.threshold[t].take(node)
                node = 2 * node + 1 + go_right
            self.table[offsets[t] : offsets[t] + cells[t]] = node - n_internal

    def leaves(self, features: np.ndarray) -> np.ndarray:
        """The leaf (0 .. 2**height - 1) of each point (a row of ``features``) in each
        tree; shape ``(n_points, n_trees)``, in the table's unsigned dtype."""
        # take(axis=0) gathers whole rows several times faster than indexing with [].
        cell = self.cell_parts[0].take(self.grids[0].ranks(features[:, 0]), axis=0)
        for f in range(1, self.n_features):
            cell += self.cell_parts[f].take(self.grids[f].ranks(features[:, f]), axis=0)
        return self.table.take(cell)


class _RankGrid:
    """How many of some sorted thresholds each value reaches (``threshold <= value``),
    from a grid of equal buckets over [0, 1]: the count below each bucket, then the
    thresholds in the value's bucket compared (at most :data:`_MAX_PER_BUCKET`).

    >>> grid = _RankGrid(np.array([0.25, 0.5, 0.5000001]))
    >>> grid.ranks(np.array([0.1, 0.25, 0.5, 0.6, 1.5, -1.0, np.nan, np.inf])).tolist()
    [0, 1, 2, 3, 3, 0, 0, 3]
    """

    def __init__(self, thresholds: np.ndarray) -> None:
        self.thresholds = thresholds
        buckets = 1024
        while True:
            bucket = self._bucket(thresholds, buckets)
            per_bucket = np.bincount(bucket, minlength=buckets)
            if per_bucket.max(initial=0) <= _MAX_PER_BUCKET or buckets >= 1 << 22:
                break
            buckets *= 2
        self.buckets = buckets
        self.below = np.concatenate([[0], np.cumsum(per_bucket)[:-1]])
        """Thresholds below each bucket."""
        depth = max(int(per_bucket.max(initial=0)), 1)
        self.inside = np.full((depth, buckets), np.nan)
        """The thresholds in each bucket, NaN (reached by no value) where there are fewer."""
        for i, (b, at) in enumerate(zip(bucket, thresholds, strict=True)):
            self.inside[i - self.below[b], b] = at

    def _bucket(self, values: np.ndarray, buckets: int) -> np.ndarray:
        # fmax/fmin drop NaN (to bucket 0, where it reaches nothing) and clip the rest.
        return np.fmin(np.fmax(values * buckets, 0.0), buckets - 1).astype(np.intp)

    def ranks(self, values: np.ndarray) -> np.ndarray:
        bucket = self._bucket(values, self.buckets)
        rank = self.below.take(bucket)
        for inside in self.inside:
            rank += inside.take(bucket) <= values
        return rank
