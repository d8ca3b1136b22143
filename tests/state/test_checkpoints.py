import io
import json
import zipfile

import numpy as np
import pytest

from monitor.detection import StreamSnapshot
from monitor.state.checkpoints import VERSION, CheckpointStore, read_checkpoint, write_npz
from monitor.state.exceptions import CheckpointError

MODELS = {"detectors": ["forecast"], "hst": [42, 10, 8]}


def snapshot(n=3, fill=1.0):
    return StreamSnapshot(
        keys=[f"cpu{{host=h{i}}}" for i in range(n)],
        names=["cpu"] * n,
        labels=[(("host", f"h{i}"),) for i in range(n)],
        arrays={
            "forecaster.level": np.full(n, fill),
            "trees.mass": np.full((n, 4, 8), 3, dtype=np.uint8),
        },
    )


def test_save_then_load_round_trips_every_array_and_identity(tmp_path):
    store = CheckpointStore(tmp_path, "group")
    original = snapshot()
    path = store.save("metrics", 2, 500, original, MODELS)
    assert path == tmp_path / "group" / "metrics" / "2" / f"{500:020d}.npz"
    loaded = store.load_latest("metrics", 2, MODELS)
    assert loaded is not None
    assert (loaded.topic, loaded.partition, loaded.offset) == ("metrics", 2, 500)
    assert loaded.snapshot.keys == original.keys
    assert loaded.snapshot.names == original.names
    assert loaded.snapshot.labels == original.labels
    for name, values in original.arrays.items():
        np.testing.assert_array_equal(loaded.snapshot.arrays[name], values)
        assert loaded.snapshot.arrays[name].dtype == values.dtype


def test_the_newest_checkpoint_wins_and_only_keep_files_remain(tmp_path):
    store = CheckpointStore(tmp_path, "group", keep=2)
    for offset in (10, 200, 30):
        store.save("metrics", 0, offset, snapshot(fill=offset), MODELS)
    assert [p.name for p in store.paths("metrics", 0)] == [f"{200:020d}.npz", f"{30:020d}.npz"]
    loaded = store.load_latest("metrics", 0, MODELS)
    assert loaded.offset == 200 and loaded.snapshot.arrays["forecaster.level"][0] == 200


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    store = CheckpointStore(tmp_path, "group")
    store.save("metrics", 0, 100, snapshot(fill=1.0), MODELS)
    newest = store.save("metrics", 0, 200, snapshot(fill=2.0), MODELS)
    newest.write_bytes(newest.read_bytes()[: len(newest.read_bytes()) // 2])
    skipped = []
    loaded = store.load_latest("metrics", 0, MODELS, skipped)
    assert loaded.offset == 100
    assert [(s.path, s.reason) for s in skipped] == [(newest, "corrupt")]


def test_other_versions_and_other_models_are_skipped_with_their_reason(tmp_path):
    store = CheckpointStore(tmp_path, "group")
    path = store.save("metrics", 0, 100, snapshot(), MODELS)
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(path, {**MODELS, "hst": [7, 10, 8]})
    assert error.value.reason == "incompatible"
    rewrite_meta(path, version=VERSION + 1)
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(path, MODELS)
    assert error.value.reason == "version"
    skipped = []
    assert store.load_latest("metrics", 0, MODELS, skipped) is None
    assert [s.reason for s in skipped] == ["version"]


def test_loading_never_unpickles(tmp_path):
    """An archive carrying a pickled object array is refused, not executed."""
    path = tmp_path / "group" / "metrics" / "0" / f"{1:020d}.npz"
    path.parent.mkdir(parents=True)
    meta = {"format": "monitor-checkpoint", "version": VERSION, "models": MODELS}
    np.savez(path, __meta__=np.array(json.dumps(meta)), evil=np.array([object()], dtype=object))
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(path, MODELS)
    assert error.value.reason == "corrupt"


def test_a_failed_write_leaves_no_temporary_file_and_raises(tmp_path):
    store = CheckpointStore(tmp_path, "group")
    store.save("metrics", 0, 100, snapshot(), MODELS)
    directory = store.directory("metrics", 0)
    # A directory squatting on the target name makes the final rename fail.
    (directory / f"{200:020d}.npz" / "occupied").mkdir(parents=True)
    with pytest.raises(CheckpointError, match="cannot write checkpoint"):
        store.save("metrics", 0, 200, snapshot(), MODELS)
    assert sorted(p.name for p in directory.iterdir()) == [f"{100:020d}.npz", f"{200:020d}.npz"]
    assert store.load_latest("metrics", 0, MODELS).offset == 100


def test_an_unwritable_store_raises_a_checkpoint_error(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    store = CheckpointStore(blocker, "group")
    with pytest.raises(CheckpointError, match="cannot write checkpoint"):
        store.save("metrics", 0, 1, snapshot(), MODELS)


def test_group_and_topic_names_cannot_escape_the_directory(tmp_path):
    store = CheckpointStore(tmp_path / "state", "../../etc")
    path = store.save("../x", 0, 1, snapshot(), MODELS)
    assert (tmp_path / "state") in path.parents


def rewrite_meta(path, **changes):
    with np.load(path, allow_pickle=False) as archive:
        contents = {name: archive[name] for name in archive.files}
    meta = json.loads(str(contents["__meta__"]))
    meta.update(changes)
    contents["__meta__"] = np.array(json.dumps(meta))
    with open(path, "wb") as file:
        np.savez(file, **contents)
    assert zipfile.is_zipfile(path)


def test_write_npz_writes_the_members_np_savez_writes():
    arrays = {
        "meta": np.array('{"format": 1}'),
        "keys": np.array(["cpu{host=a}", "é"], dtype=np.str_),
        "half": np.random.default_rng(0).random((7, 3)).astype(np.float16),
        "flags": np.array([True, False]),
        "empty": np.zeros((0, 4)),
        "strided": np.arange(12, dtype=np.uint16).reshape(3, 4)[:, ::2],
        "wide": np.arange(2 * 256 * 10, dtype=np.uint16).reshape(2, 10, 256),
    }
    ours, reference = io.BytesIO(), io.BytesIO()
    write_npz(ours, arrays)
    np.savez(reference, allow_pickle=False, **arrays)
    with zipfile.ZipFile(ours) as a, zipfile.ZipFile(reference) as b:
        assert a.namelist() == b.namelist()
        for name in b.namelist():
            assert a.read(name) == b.read(name), name
    ours.seek(0)
    with np.load(ours, allow_pickle=False) as loaded:
        for name, array in arrays.items():
            np.testing.assert_array_equal(loaded[name], array)
            assert loaded[name].dtype == array.dtype and loaded[name].shape == array.shape


def test_write_npz_refuses_object_arrays():
    with pytest.raises(ValueError, match="objects"):
        write_npz(io.BytesIO(), {"bad": np.array([{"a": 1}], dtype=object)})
