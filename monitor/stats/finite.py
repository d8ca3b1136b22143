"""``np.nan_to_num`` for the float64 arrays of a detection round, in fewer passes."""

from __future__ import annotations

import numpy as np

LARGEST = float(np.finfo(np.float64).max)


def finite(values: np.ndarray) -> np.ndarray:
    """A copy of ``values`` with NaN as 0 and infinities as the largest finite float of
    their sign: ``np.nan_to_num(values)``, value for value, for a float64 array (two
    array passes instead of its six; any other dtype goes to ``np.nan_to_num``).

    >>> finite(np.array([np.nan, np.inf, -np.inf, -0.0, 1.5])).tolist()
    [0.0, 1.7976931348623157e+308, -1.7976931348623157e+308, -0.0, 1.5]
    """
    if values.dtype != np.float64:
        return np.nan_to_num(values)
    out = np.where(np.isnan(values), 0.0, values)
    return np.clip(out, -LARGEST, LARGEST, out=out)
