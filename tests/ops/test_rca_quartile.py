"""The RCA's vectorised lower quartile equals numpy's nanpercentile to the bit."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from common.nanstats import nan_lower_quartile

values = st.one_of(st.floats(0, 1, allow_nan=False), st.just(np.nan), st.floats(-1e6, 1e6, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 30), st.integers(1, 12)), elements=values))
def test_equals_nanpercentile_25(grid: np.ndarray) -> None:
    grid = grid[:, np.isfinite(grid).any(axis=0)]
    if grid.shape[1] == 0:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = np.nanpercentile(grid, 25, axis=0)
    assert np.array_equal(nan_lower_quartile(grid), expected)
