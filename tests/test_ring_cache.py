"""The metric ring's shortcuts (cached window slots, NaN tail written only where needed) change no value."""

from __future__ import annotations

import numpy as np

from twin.telemetry import Ring


def _fresh_window(r: Ring, seconds: float, col: int) -> tuple[np.ndarray, np.ndarray]:
    k = min(r.n, r.length)
    idx = np.arange(r.n - k, r.n) % r.length
    t = r.t[idx]
    keep = t > t[-1] - seconds - 1e-9
    return t[keep], r.v[idx[keep], col].astype(np.float64)


def test_window_matches_a_fresh_read_across_pushes_and_lengths() -> None:
    rng = np.random.default_rng(3)
    r = Ring(7, 6)
    widths = [2, 4, 4, 3, 6, 1, 5, 6, 2]  # rows shorter than earlier ones must read NaN beyond their end
    for step, w in enumerate(widths):
        r.push(5.0 * step, rng.random(w))
        for seconds in (4.0, 10.0, 60.0):
            for col in range(6):
                t, v = r.window(seconds, col)
                t0, v0 = _fresh_window(r, seconds, col)
                assert np.array_equal(t, t0)
                assert np.array_equal(v, v0, equal_nan=True)
                t[:] = -1.0  # a caller writing into what it got must not change the next read
        assert np.isnan(r.last()[w:]).all()


def test_push_after_grow_keeps_new_columns_nan() -> None:
    r = Ring(3, 2)
    r.push(0.0, np.ones(2))
    r.grow(5)
    r.push(5.0, np.ones(4))
    r.push(10.0, np.ones(1))
    r.push(15.0, np.ones(2))  # reuses the first slot
    assert np.array_equal(r.last(), np.array([1.0, 1.0, np.nan, np.nan, np.nan], dtype=np.float32), equal_nan=True)
    assert np.isnan(r.v[:, 4]).all()
