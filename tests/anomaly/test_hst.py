import numpy as np
import pytest
from river import anomaly

from monitor.anomaly import HalfSpaceTrees, build_trees
from monitor.anomaly import hst as hst_module
from monitor.anomaly.hst import LeafTable


def _river_structure(model):
    """Flatten a river HST tree into heap order: (feature, threshold) per internal node."""
    out = []
    for root in model.trees:
        nodes, level = [], [root]
        while level and hasattr(level[0], "feature"):
            nodes.extend((int(n.feature), n.threshold) for n in level)
            level = [child for n in level for child in n.children]
        out.append(nodes)
    return out


def test_trees_are_the_same_as_rivers_for_the_same_seed():
    ref = anomaly.HalfSpaceTrees(n_trees=4, height=3, window_size=10, seed=7)
    ref.learn_one({0: 0.5, 1: 0.5, 2: 0.5})
    trees = build_trees(n_features=3, n_trees=4, height=3, seed=7)
    for t, nodes in enumerate(_river_structure(ref)):
        assert [f for f, _ in nodes] == trees.feature[t].tolist()
        np.testing.assert_allclose([a for _, a in nodes], trees.threshold[t])


@pytest.mark.parametrize(
    ("n_trees", "height", "window_size"),
    [(10, 8, 250), (3, 4, 20), (5, 2, 7), (2, 3, 300), (2, 9, 30)],
)
def test_scores_agree_with_river_per_stream(n_trees, height, window_size):
    rng = np.random.default_rng(0)
    n_streams, n_points, n_features = 4, 3 * window_size + 17, 3
    data = np.clip(rng.normal(0.5, 0.1, (n_streams, n_points, n_features)), 0, 1)
    data[:, ::37] = rng.uniform(0, 1, (n_streams, len(range(0, n_points, 37)), n_features))
    ours = HalfSpaceTrees(n_features, n_trees, height, window_size, seed=42, capacity=1)
    refs = [anomaly.HalfSpaceTrees(n_trees, height, window_size, seed=42) for _ in range(n_streams)]
    rows = np.arange(n_streams)
    for t in range(n_points):
        scores = ours.score_learn(rows, data[:, t])
        expected = []
        for i, ref in enumerate(refs):
            x = dict(enumerate(data[i, t]))
            expected.append(ref.score_one(x))
            ref.learn_one(x)
        np.testing.assert_allclose(scores, expected, rtol=1e-12, atol=1e-12)


def test_scoring_repeated_rows_reads_reference_masses_only():
    hst = HalfSpaceTrees(n_features=1, n_trees=3, height=3, window_size=5, seed=1)
    row = np.array([0])
    for x in np.linspace(0.4, 0.6, 10):
        hst.learn(row, np.array([[x]]))
    twice = hst.score(np.array([0, 0]), np.array([[0.5], [0.99]]))
    assert twice[1] > twice[0]


def test_outlier_scores_higher_than_inlier():
    rng = np.random.default_rng(1)
    hst = HalfSpaceTrees(n_features=2, n_trees=10, height=6, window_size=100, seed=3)
    row = np.array([0])
    for x in np.clip(rng.normal(0.5, 0.05, (300, 2)), 0, 1):
        hst.learn(row, x[None, :])
    inlier, outlier = hst.score(np.array([0, 0]), np.array([[0.5, 0.5], [0.95, 0.05]]))
    assert outlier > inlier + 0.3


def test_walk_totals_take_the_smallest_dtype_that_holds_them():
    # At most window_size * (2**height - 1) once the root is left out and halved.
    assert HalfSpaceTrees(1, height=8, window_size=257).state.r_walk.dtype == np.uint16
    assert HalfSpaceTrees(1, height=8, window_size=258).state.r_walk.dtype == np.uint32
    assert HalfSpaceTrees(1, height=9, window_size=128).state.r_walk.dtype == np.uint16
    assert HalfSpaceTrees(1, height=9, window_size=129).state.r_walk.dtype == np.uint32


def test_walk_totals_match_a_walk_through_the_node_masses():
    rng = np.random.default_rng(3)
    hst = HalfSpaceTrees(n_features=1, n_trees=4, height=5, window_size=200, seed=0)
    counts = rng.multinomial(200, rng.dirichlet(np.full(32, 0.3)), size=(3, 4)).astype(np.uint8)
    walks = hst.walks(counts)

    def mass(stream, tree, depth, j):
        """The points of the window below node j of this depth: its leaves' counts."""
        width = 2 ** (5 - depth)
        return int(counts[stream, tree, j * width : (j + 1) * width].sum())

    for stream, tree, leaf in np.ndindex(walks.shape):
        total = 0
        for depth in range(6):
            m = mass(stream, tree, depth, leaf >> (5 - depth))
            total += m * 2**depth
            if m < 20:
                break
        assert total == 200 + 2 * int(walks[stream, tree, leaf])


def test_windows_completing_together_are_summarised_in_chunks(monkeypatch):
    monkeypatch.setattr("monitor.anomaly.hst._ROLL_CHUNK", 3)
    rng = np.random.default_rng(5)
    chunked = HalfSpaceTrees(n_features=2, n_trees=3, height=4, window_size=20, seed=1)
    data = rng.uniform(0, 1, (45, 10, 2))
    rows = np.arange(10)
    for x in data[:40]:
        chunked.learn(rows, x)
    monkeypatch.setattr("monitor.anomaly.hst._ROLL_CHUNK", 2048)
    whole = HalfSpaceTrees(n_features=2, n_trees=3, height=4, window_size=20, seed=1)
    for x in data[:40]:
        whole.learn(rows, x)
    np.testing.assert_array_equal(chunked.state.r_walk, whole.state.r_walk)
    np.testing.assert_array_equal(chunked.score(rows, data[44]), whole.score(rows, data[44]))


def test_leaf_counts_of_the_filling_window_have_the_mass_dtype():
    assert HalfSpaceTrees(1, height=9, window_size=250).state.l_leaf.shape == (16, 10, 512)
    assert HalfSpaceTrees(1, window_size=250).state.l_leaf.dtype == np.uint8
    assert HalfSpaceTrees(1, window_size=1000).state.l_leaf.dtype == np.uint16
    with pytest.raises(ValueError, match="window_size"):
        HalfSpaceTrees(1, window_size=70_000)


@pytest.mark.parametrize(
    ("n_features", "n_trees", "height", "seed"),
    [(3, 10, 8, 42), (3, 4, 5, 7), (1, 3, 9, 1), (2, 5, 6, 3), (4, 2, 4, 11)],
)
def test_leaf_table_finds_the_leaves_the_walk_finds(n_features, n_trees, height, seed):
    hst = HalfSpaceTrees(n_features, n_trees, height, seed=seed)
    rng = np.random.default_rng(seed)
    points = [rng.uniform(0, 1, (2_000, n_features))]
    # Every threshold itself, and the values next to it, on every feature.
    at = hst.trees.threshold.ravel()
    for near in (at, np.nextafter(at, 0), np.nextafter(at, 1)):
        points.append(np.repeat(near[:, None], n_features, axis=1))
    points.append(rng.choice([0.0, 1.0, -0.5, 2.0, np.nan, np.inf, -np.inf], (500, n_features)))
    features = np.concatenate(points)
    np.testing.assert_array_equal(LeafTable(hst.trees).leaves(features), hst.walk(features))


def test_trees_too_large_for_a_table_are_walked(monkeypatch):
    monkeypatch.setattr(hst_module, "MAX_TABLE_CELLS", 100)
    monkeypatch.setattr(hst_module, "_LEAF_TABLES", {})
    hst = HalfSpaceTrees(n_features=3, n_trees=2, height=6, seed=5)
    features = np.random.default_rng(0).uniform(0, 1, (50, 3))
    leaves = hst.leaves(np.zeros(50, dtype=np.intp), features)
    assert hst.table is False
    np.testing.assert_array_equal(leaves % hst._n_leaves, hst.walk(features))
