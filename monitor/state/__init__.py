"""Per-stream state kept as arrays, one row per stream."""

from monitor.state.arrays import ArraySpec, ArrayState

__all__ = ["ArraySpec", "ArrayState"]
