"""Struct-of-arrays state: every per-stream quantity is a numpy array with one row per stream.

Models keep their learned state in an :class:`ArrayState` so that a polled batch
can be applied to many streams with one array operation, the state can grow as
streams appear, and it can be snapshotted without pickle (plain arrays).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np


def flat_view(array: np.ndarray) -> np.ndarray:
    """A 1-d view of a contiguous array, never a copy, so writes through it reach the
    array (a state array's rows as one run of cells, indexed ``row * width + cell``).

    >>> counts = np.zeros((2, 3))
    >>> flat_view(counts)[[1, 5]] += 1
    >>> counts.tolist()
    [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    view = array.view()
    view.shape = (array.size,)  # raises for an array that is not contiguous
    return view


@dataclass(frozen=True)
class ArraySpec:
    """Shape (after the row axis), dtype and initial value of one state array.

    >>> ArraySpec((3,), np.float32, 0.0).allocate(2).shape
    (2, 3)
    """

    shape: tuple[int, ...] = ()
    dtype: type | np.dtype = np.float64
    fill: float | int | bool = 0

    def allocate(self, rows: int) -> np.ndarray:
        """``rows`` rows of the initial value. Zeros come from ``np.zeros``, whose pages
        the system maps on first write: rows that a grown array holds in reserve cost
        no memory (nor time to fill) until a stream takes them."""
        if self.fill == 0:
            return np.zeros((rows, *self.shape), dtype=self.dtype)
        return np.full((rows, *self.shape), self.fill, dtype=self.dtype)


class ArrayState:
    """Named arrays sharing one row axis, grown by doubling.

    Parameters
    ----------
    specs
        Name -> :class:`ArraySpec` of every array.
    capacity
        Initial number of rows.

    Examples
    --------
    >>> state = ArrayState({"mean": ArraySpec(), "count": ArraySpec((), np.int64, 0)}, capacity=2)
    >>> state.ensure(5)
    >>> state.capacity
    8
    >>> state.mean[[1, 4]] = [1.5, 2.5]
    >>> state.reset(np.array([1]))
    >>> state.mean[:5].tolist()
    [0.0, 0.0, 0.0, 0.0, 2.5]
    """

    def __init__(self, specs: Mapping[str, ArraySpec], capacity: int = 16) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.specs = dict(specs)
        self.capacity = capacity
        self._arrays = {name: spec.allocate(capacity) for name, spec in self.specs.items()}
        self._publish()

    def _publish(self) -> None:
        # Arrays are plain instance attributes too (state.mean), so reading one in a hot
        # loop costs a dictionary lookup, not a __getattr__ call.
        self.__dict__.update(self._arrays)

    def __getattr__(self, name: str) -> np.ndarray:
        raise AttributeError(f"no state array named {name!r}")

    def __getitem__(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def ensure(self, rows: int) -> None:
        """Make room for at least ``rows`` rows, keeping existing values."""
        if rows <= self.capacity:
            return
        capacity = self.capacity
        while capacity < rows:
            capacity *= 2
        for name, spec in self.specs.items():
            grown = spec.allocate(capacity)
            grown[: self.capacity] = self._arrays[name]
            self._arrays[name] = grown
        self.capacity = capacity
        self._publish()

    def ensure_rows(self, rows: np.ndarray) -> None:
        """Make room for every index in ``rows``."""
        if len(rows):
            self.ensure(int(rows.max()) + 1)

    def reset(self, rows: np.ndarray) -> None:
        """Return ``rows`` to their initial values (a new or evicted stream)."""
        for name, spec in self.specs.items():
            self._arrays[name][rows] = spec.fill

    def nbytes(self) -> int:
        """Bytes held by all arrays."""
        return sum(a.nbytes for a in self._arrays.values())

    def snapshot(
        self, rows: np.ndarray, out: Mapping[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """Copies of the given rows of every array (for checkpoints).

        ``rows`` is an index array, so indexing copies already. With ``out`` (name ->
        an array of at least ``len(rows)`` rows, see :meth:`buffers`) the copies go into
        its first rows and views of them are returned: memory written before costs no
        page faults, which make a copy into fresh memory several times slower.

        >>> state = ArrayState({"mean": ArraySpec()}, capacity=4)
        >>> state.mean[:] = [1.0, 2.0, 3.0, 4.0]
        >>> out = state.buffers(3)
        >>> state.snapshot(np.array([3, 1]), out)["mean"].tolist()
        [4.0, 2.0]
        """
        if out is None:
            return {name: array[rows] for name, array in self._arrays.items()}
        n = len(rows)
        # mode="clip" (rows are valid) writes straight into out; "raise" buffers first.
        return {
            name: np.take(array, rows, axis=0, out=out[name][:n], mode="clip")
            for name, array in self._arrays.items()
        }

    def buffers(self, rows: int) -> dict[str, np.ndarray]:
        """Uninitialised arrays of ``rows`` rows, one per state array, for :meth:`snapshot`."""
        return {
            name: np.empty((rows, *spec.shape), dtype=spec.dtype)
            for name, spec in self.specs.items()
        }

    def restore(self, rows: np.ndarray, arrays: Mapping[str, np.ndarray]) -> None:
        """Write rows previously taken with :meth:`snapshot` back in place.

        Raises ``ValueError`` when names, shapes or dtypes do not match the specs.
        """
        if set(arrays) != set(self.specs):
            raise ValueError(f"expected arrays {sorted(self.specs)}, got {sorted(arrays)}")
        for name, spec in self.specs.items():
            values = arrays[name]
            expected = (len(rows), *spec.shape)
            if values.shape != expected or values.dtype != np.dtype(spec.dtype):
                raise ValueError(
                    f"array {name!r}: expected shape {expected} dtype {np.dtype(spec.dtype)}, "
                    f"got shape {values.shape} dtype {values.dtype}"
                )
        self.ensure(int(rows.max()) + 1 if len(rows) else 0)
        for name, values in arrays.items():
            self._arrays[name][rows] = values
