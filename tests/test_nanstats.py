"""``common.nanstats.nanmedian`` is numpy's nanmedian to the bit, on any shape, NaN pattern and axis."""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from common.nanstats import nanmedian

_values = st.one_of(st.floats(allow_nan=False, allow_infinity=True, width=64),
                    st.sampled_from([np.nan, 0.0, -0.0, 1.0]))


@settings(max_examples=300, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 9)), elements=_values),
       st.sampled_from([0, 1, -1]))
def test_nanmedian_is_numpys_to_the_bit(x: np.ndarray, axis: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.nanmedian(x, axis=axis)
    got = nanmedian(x, axis=axis)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)  # NaN == NaN here; values exact


def test_nanmedian_on_three_dimensions_and_long_rows() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 3, 700))
    x[rng.random(x.shape) < 0.3] = np.nan
    x[0, 0] = np.nan
    for axis in (0, 1, 2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            np.testing.assert_array_equal(nanmedian(x, axis), np.nanmedian(x, axis=axis))
