"""Composable arrival-rate generators, evaluated once over the whole run.

A service's offered load is ``base × Π component(t)``; each component is a
multiplier series built with numpy over every tick at once, so the per-tick
physics only indexes a precomputed row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from twin.config import Diurnal, Idle, Noise, Ramp, Spike, Trace, Traffic, Weekly

DAY = 86400.0
WEEK = 7 * DAY


def rate_series(traffic: Traffic, times: np.ndarray, rng: np.random.Generator, base_dir: Path | None = None) -> np.ndarray:
    """Offered requests per second at each of ``times`` (seconds since start)."""
    rate = np.full(times.shape, traffic.base, dtype=np.float64)
    for c in traffic.components:
        rate *= multiplier(c, times, rng, base_dir)
    return np.maximum(rate, 0.0)


def multiplier(c: object, t: np.ndarray, rng: np.random.Generator, base_dir: Path | None) -> np.ndarray:
    match c:
        case Diurnal(amplitude=a, peak_hour=p):
            return 1.0 + a * np.cos(2 * np.pi * (t / 3600.0 - p) / 24.0)
        case Weekly(amplitude=a):
            day = np.floor(t / DAY) % 7  # day 0 is a Monday
            return np.where(day >= 5, 1.0 - a, 1.0)
        case Noise(sigma=s, period=period):
            knots = np.arange(0.0, (t[-1] if len(t) else 0.0) + 2 * period, period)
            z = rng.standard_normal(len(knots))
            return np.maximum(0.0, 1.0 + s * np.interp(t, knots, z))
        case Spike(at=at, duration=d, factor=f, ramp=r):
            return 1.0 + (f - 1.0) * _envelope(t, at, at + d, r)
        case Ramp(start=s, end=e, to_factor=f):
            frac = np.clip((t - s) / max(e - s, 1e-9), 0.0, 1.0)
            return 1.0 + (f - 1.0) * frac
        case Idle(start=s, end=e):
            return np.where((t >= s) & (t < e), 0.0, 1.0)
        case Trace():
            return trace_multiplier(c, t, base_dir)
    raise TypeError(f"unknown traffic component {c!r}")


def _envelope(t: np.ndarray, start: float, end: float, ramp: float) -> np.ndarray:
    """0 before ``start``, rising linearly over ``ramp`` to 1, falling back to 0 after ``end``."""
    r = max(ramp, 1e-9)
    up = np.clip((t - start) / r, 0.0, 1.0)
    down = np.clip((end + r - t) / r, 0.0, 1.0)
    return np.minimum(up, down)


def load_trace(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a ``timestamp,value`` CSV; timestamps are seconds or ISO times. Clear errors name the file."""
    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        raise ValueError(f"{path}: trace file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable CSV ({e})") from None
    missing = {"timestamp", "value"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}; a trace needs the columns timestamp,value")
    ts = df["timestamp"]
    if pd.api.types.is_numeric_dtype(ts):
        secs = ts.to_numpy(dtype=float)
    else:
        try:
            dt = pd.to_datetime(ts, utc=True)
        except (ValueError, TypeError):
            raise ValueError(f"{path}: column timestamp must hold seconds or ISO date-times") from None
        secs = (dt - dt.iloc[0]).dt.total_seconds().to_numpy()
    vals = pd.to_numeric(df["value"], errors="coerce").to_numpy(dtype=float)
    if len(vals) < 2 or np.isnan(vals).any() or (vals < 0).any():
        raise ValueError(f"{path}: column value must hold at least two non-negative numbers")
    order = np.argsort(secs, kind="stable")
    secs, vals = secs[order] - secs[order][0], vals[order]
    return secs, vals


def trace_multiplier(c: Trace, t: np.ndarray, base_dir: Path | None) -> np.ndarray:
    """The trace resampled onto ``t`` (looping), normalised to mean 1 and scaled by ``c.scale``."""
    path = Path(c.file)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    secs, vals = load_trace(path)
    secs = secs * c.time_scale
    span = secs[-1] if secs[-1] > 0 else 1.0
    mean = vals.mean() or 1.0
    return c.scale * np.interp(np.mod(t, span), secs, vals) / mean
