"""Per-stream state kept as arrays, one row per stream."""

from monitor.state.arrays import ArraySpec, ArrayState, flat_view

__all__ = ["ArraySpec", "ArrayState", "flat_view"]
