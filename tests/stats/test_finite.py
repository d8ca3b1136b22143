import numpy as np
import pytest

from monitor.stats.finite import finite


@pytest.mark.parametrize("seed", range(5))
def test_same_bytes_as_nan_to_num(seed):
    rng = np.random.default_rng(seed)
    values = rng.normal(0, 1e300, 1_000)
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, -5e-324])
    values[rng.integers(0, len(values), 300)] = rng.choice(specials, 300)
    assert finite(values).tobytes() == np.nan_to_num(values).tobytes()


def test_leaves_its_input_alone_and_other_dtypes_to_nan_to_num():
    values = np.array([np.nan, np.inf, 1.0])
    out = finite(values)
    assert np.isnan(values[0]) and out is not values
    small = np.array([np.nan, np.inf], dtype=np.float32)
    assert finite(small).dtype == np.float32
    assert finite(small).tolist() == np.nan_to_num(small).tolist()
