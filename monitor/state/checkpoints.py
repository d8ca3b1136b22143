"""Checkpoints of a partition's streams: versioned ``.npz`` files, written atomically.

One file holds everything learned about the streams fed by one Kafka partition,
and the partition offset it covers (the next offset to consume). Files are plain
numpy archives: strings as unicode arrays and numbers as numeric arrays, loaded
with ``allow_pickle=False``, so reading a checkpoint never executes code.

Layout: ``<dir>/<group>/<topic>/<partition>/<offset, 20 digits>.npz``. A file is
written to a temporary name in the same directory, fsynced, renamed into place and
the directory fsynced, so a crash leaves either the old set of files or the new
one, never a torn file under a checkpoint name.

>>> import tempfile
>>> from monitor.detection import StreamSnapshot
>>> store = CheckpointStore(tempfile.mkdtemp(), group="monitor", keep=2)
>>> snapshot = StreamSnapshot(["cpu"], ["cpu"], [()], {"detector.count": np.array([7])})
>>> path = store.save("metrics", 0, 1234, snapshot, models={"seed": 42})
>>> loaded = store.load_latest("metrics", 0, models={"seed": 42})
>>> loaded.offset, loaded.snapshot.keys, loaded.snapshot.arrays["detector.count"].tolist()
(1234, ['cpu'], [7])
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from monitor.detection.detector import StreamSnapshot
from monitor.state.exceptions import CheckpointError

log = logging.getLogger("monitor.state")

FORMAT = "monitor-checkpoint"
VERSION = 3
"""Bumped whenever the layout of a checkpoint file changes incompatibly (2: the
half-space trees keep the leaves of the window being filled instead of its masses;
3: and each leaf's walk total over the reference window instead of its masses).
A file of another version is skipped and its partition starts cold."""

_META = "__meta__"
_KEYS = "__keys__"
_NAMES = "__names__"
_LABELS = "__labels__"


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: the partition, the offset it covers and the streams' state."""

    topic: str
    partition: int
    offset: int
    created: float
    path: Path
    snapshot: StreamSnapshot


@dataclass(frozen=True)
class SkippedCheckpoint:
    """A checkpoint file that could not be used, and why."""

    path: Path
    reason: str
    """``corrupt``, ``version`` or ``incompatible``."""
    detail: str


class CheckpointStore:
    """Checkpoint files under one directory, per consumer group, topic and partition.

    Parameters
    ----------
    root
        The directory (``state.dir``); created when missing. Daemons of one group on
        several machines share it through a volume they all mount.
    group
        The consumer group: groups never read each other's checkpoints.
    keep
        Newest checkpoints kept per partition; older ones are deleted after a save.
    clock
        Wall clock stamped into each checkpoint.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        group: str,
        keep: int = 3,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.root = Path(root)
        self.group = group
        self.keep = keep
        self.clock = clock

    def directory(self, topic: str, partition: int) -> Path:
        """Where the checkpoints of one partition live."""
        return self.root / quote(self.group, safe="") / quote(topic, safe="") / str(partition)

    def save(
        self,
        topic: str,
        partition: int,
        offset: int,
        snapshot: StreamSnapshot,
        models: Mapping[str, Any],
    ) -> Path:
        """Write a checkpoint durably and return its path; prune old ones.

        When this returns, the file and its directory entry are on disk (fsync), so
        offsets up to ``offset`` may be committed. ``models`` describes the model
        structure the state belongs to; :meth:`load_latest` refuses state whose
        description differs. Raises :class:`CheckpointError` when writing fails.
        """
        directory = self.directory(topic, partition)
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "created": self.clock(),
            "streams": len(snapshot.keys),
            "models": dict(models),
        }
        arrays: dict[str, np.ndarray] = {
            _META: np.array(json.dumps(meta, sort_keys=True)),
            _KEYS: np.array(snapshot.keys, dtype=np.str_),
            _NAMES: np.array(snapshot.names, dtype=np.str_),
            _LABELS: np.array([json.dumps(labels) for labels in snapshot.labels], dtype=np.str_),
        }
        arrays.update(snapshot.arrays)
        target = directory / f"{offset:020d}.npz"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
            try:
                with os.fdopen(handle, "wb") as file:
                    write_npz(file, arrays)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            _fsync_directory(directory)
        except OSError as exc:
            raise CheckpointError(f"cannot write checkpoint {target}: {exc}") from exc
        for old in self.paths(topic, partition)[self.keep :]:
            old.unlink(missing_ok=True)
        return target

    def paths(self, topic: str, partition: int) -> list[Path]:
        """The partition's checkpoint files, newest (highest offset) first."""
        directory = self.directory(topic, partition)
        if not directory.is_dir():
            return []
        return sorted(
            (p for p in directory.glob("*.npz") if not p.name.startswith(".")),
            key=lambda p: p.name,
            reverse=True,
        )

    def load_latest(
        self,
        topic: str,
        partition: int,
        models: Mapping[str, Any],
        skipped: list[SkippedCheckpoint] | None = None,
    ) -> Checkpoint | None:
        """The newest usable checkpoint of a partition, or ``None`` (start cold).

        Unreadable, other-version or other-model files are logged, appended to
        ``skipped`` and passed over in favour of the next older one.
        """
        for path in self.paths(topic, partition):
            try:
                return read_checkpoint(path, models)
            except CheckpointError as exc:
                log.warning("skipping checkpoint %s: %s", path, exc)
                if skipped is not None:
                    skipped.append(SkippedCheckpoint(path, exc.reason, str(exc)))
        return None


def read_checkpoint(path: Path, models: Mapping[str, Any]) -> Checkpoint:
    """Load one checkpoint file without pickle; raise :class:`CheckpointError` if unusable."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            contents = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"unreadable: {exc}", reason="corrupt") from exc
    try:
        meta = json.loads(str(contents.pop(_META)))
        keys = [str(k) for k in contents.pop(_KEYS).tolist()]
        names = [str(n) for n in contents.pop(_NAMES).tolist()]
        labels = [_labels(text) for text in contents.pop(_LABELS).tolist()]
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"missing or malformed header: {exc}", reason="corrupt") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError("not a monitor checkpoint", reason="corrupt")
    if meta.get("version") != VERSION:
        raise CheckpointError(
            f"format version {meta.get('version')!r}, this daemon reads version {VERSION}",
            reason="version",
        )
    if meta.get("models") != json.loads(json.dumps(dict(models))):
        raise CheckpointError(
            f"made for models {meta.get('models')}, these are {dict(models)}",
            reason="incompatible",
        )
    if not (len(keys) == len(names) == len(labels) == meta.get("streams")):
        raise CheckpointError("stream count does not match the header", reason="corrupt")
    return Checkpoint(
        topic=str(meta["topic"]),
        partition=int(meta["partition"]),
        offset=int(meta["offset"]),
        created=float(meta["created"]),
        path=path,
        snapshot=StreamSnapshot(keys, names, labels, contents),
    )


def _labels(text: str) -> tuple[tuple[str, str], ...]:
    pairs = json.loads(text)
    if not isinstance(pairs, list):
        raise ValueError("labels must be a list of pairs")
    return tuple((str(k), str(v)) for k, v in pairs)


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_npz(file: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``file`` as ``np.savez`` does (an uncompressed zip of ``.npy``
    members, read back by ``np.load``), each array's bytes handed over in one piece.

    ``np.savez`` copies every array to bytes in 16 MB pieces while holding the
    interpreter lock; here the zip's checksum and the file write, which release it, are
    all the work, so the checkpoint thread hardly slows the loop (tests compare the
    files with ``np.savez``'s).

    >>> import io
    >>> out = io.BytesIO()
    >>> write_npz(out, {"a": np.arange(3), "b": np.array("text")})
    >>> _ = out.seek(0)
    >>> with np.load(out) as loaded:
    ...     loaded["a"].tolist(), str(loaded["b"])
    ([0, 1, 2], 'text')
    """
    with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, array in arrays.items():
            if not array.flags.c_contiguous:
                array = array.copy(order="C")  # (np.ascontiguousarray makes 0-d arrays 1-d)
            if array.dtype.hasobject:
                raise ValueError(f"array {name!r} holds Python objects")
            with zf.open(f"{name}.npy", mode="w", force_zip64=True) as member:
                header = np.lib.format.header_data_from_array_1_0(array)
                np.lib.format.write_array_header_1_0(member, header)
                member.write(array.reshape(-1).view(np.uint8).data)
