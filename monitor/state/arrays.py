"""Struct-of-arrays state: every per-stream quantity is a numpy array with one row per stream.

Models keep their learned state in an :class:`ArrayState` so that a polled batch
can be applied to many streams with one array operation, the state can grow as
streams appear, and it can be snapshotted without pickle (plain arrays).
"""

from __future__ import annotations

import mmap
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

    @property
    def zero_filled(self) -> bool:
        """Whether the initial value is zero, which fresh memory from the system holds
        already (NaN is not zero)."""
        return self.fill == 0

    def allocate(self, rows: int) -> np.ndarray:
        """``rows`` rows of the initial value. Zeros come from ``np.zeros``, whose pages
        the system maps on first write: rows that a grown array holds in reserve cost
        no memory (nor time to fill) until a stream takes them."""
        if self.zero_filled:
            return np.zeros((rows, *self.shape), dtype=self.dtype)
        return np.full((rows, *self.shape), self.fill, dtype=self.dtype)

    def reserve(self, rows: int) -> np.ndarray | None:
        """``rows`` rows of zeros in address space of their own, which the system maps
        a page at a time on first write; None where such a mapping is unavailable or
        refused (the caller then allocates as it grows).

        >>> spec = ArraySpec((2,), np.float32, 1.0)
        >>> reserved = spec.reserve(1000)
        >>> reserved.shape, float(reserved.sum()), reserved.flags.writeable
        ((1000, 2), 0.0, True)
        """
        dtype = np.dtype(self.dtype)
        cells = rows * int(np.prod(self.shape, dtype=np.int64))
        try:
            flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
            pages = mmap.mmap(-1, max(cells * dtype.itemsize, 1), flags=flags)
        except (AttributeError, OSError, OverflowError, ValueError):
            return None
        return np.frombuffer(pages, dtype=dtype, count=cells).reshape((rows, *self.shape))


class ArrayState:
    """Named arrays sharing one row axis, grown by doubling.

    With :meth:`reserve`, the arrays are views of address space reserved up front
    for the most rows they will need: they grow within it a quarter at a time, copying
    nothing, and take memory only as rows are written.

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
        self._reserved: dict[str, np.ndarray] = {}
        """Name -> the whole reservation (:meth:`reserve`), of which ``_arrays`` are the
        first ``capacity`` rows; empty when the arrays are allocated as they grow."""
        self._reserved_rows = 0
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

    def reserve(self, rows: int) -> None:
        """Reserve address space for ``rows`` rows (e.g. the most streams a detector
        keeps): :meth:`ensure` then grows within it without copying, and rows take
        memory only once written. Growing past ``rows`` still works (by copying). Does
        nothing where the system has no such mappings or refuses one this large.

        >>> state = ArrayState({"mean": ArraySpec((), np.float64, 0.5)}, capacity=2)
        >>> state.mean[:] = [1.0, 2.0]
        >>> state.reserve(1000)
        >>> before = state.mean
        >>> state.ensure(3)
        >>> state.capacity, state.mean.tolist(), np.shares_memory(before, state.mean)
        (3, [1.0, 2.0, 0.5], True)
        """
        if rows <= max(self.capacity, self._reserved_rows):
            return
        reserved = {}
        for name, spec in self.specs.items():
            whole = spec.reserve(rows)
            if whole is None:
                return
            reserved[name] = whole
        for name, whole in reserved.items():
            current = self._arrays[name]
            # Zeros are in the reservation already: copying them would page it in.
            if not self.specs[name].zero_filled or current.any():
                whole[: self.capacity] = current
            self._arrays[name] = whole[: self.capacity]
        self._reserved, self._reserved_rows = reserved, rows
        self._publish()

    def ensure(self, rows: int) -> None:
        """Make room for at least ``rows`` rows, keeping existing values."""
        if rows <= self.capacity:
            return
        if rows <= self._reserved_rows:
            # Within the reservation: longer views, a quarter at a time (growing is cheap
            # here); the new rows get their initial value (zeros are there, untouched).
            capacity = min(max(rows, self.capacity + self.capacity // 4), self._reserved_rows)
            for name, spec in self.specs.items():
                grown = self._reserved[name][:capacity]
                if not spec.zero_filled:
                    grown[self.capacity :] = spec.fill
                self._arrays[name] = grown
        else:
            capacity = self.capacity
            while capacity < rows:
                capacity *= 2
            for name, spec in self.specs.items():
                grown = spec.allocate(capacity)
                grown[: self.capacity] = self._arrays[name]
                self._arrays[name] = grown
            self._reserved, self._reserved_rows = {}, 0
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
