"""Composable arrival-rate generators, evaluated once over the whole run.

A service's offered load is ``base × Π component(t)``; each component is a
multiplier series built with numpy over every tick at once, so the per-tick
physics only indexes a precomputed row.

The diurnal and weekly components follow a calendar: by default t=0 is a
Monday 00:00; a scenario's ``start_time`` (an ISO time, ``@epoch`` or
``trace``) moves t=0 to that date, so they line up with a replayed trace.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from twin.config import Bursts, Diurnal, Idle, Noise, Ramp, Spike, Trace, Traffic, Weekly, parse_instant

DAY = 86400.0
WEEK = 7 * DAY
TIME_COLUMNS = ("timestamp", "time", "ts", "datetime", "date")
VALUE_COLUMNS = ("value", "count", "requests", "hits", "rate", "rps")
MAX_VALUE = 1e15  # requests per second (or per row) a trace may hold: far above any real service
EPOCH_MIN = 1e8  # numeric timestamps from here on (1973-03-03) are Unix epoch seconds
GAP_FACTOR = 1.5  # a step longer than this many usual steps is a gap


class TraceNotice(UserWarning):
    """Something about a trace the user should know (gaps filled, rows dropped); the run goes on."""


@dataclass(frozen=True)
class TraceData:
    """The replayed rows of a trace: seconds from the first replayed row, values, and where they sit in time."""

    path: Path
    secs: np.ndarray  # from 0, increasing
    vals: np.ndarray
    step: float  # the usual spacing of rows (median)
    origin: float | None  # epoch seconds of secs == 0, if the file's times are absolute
    gaps: tuple[tuple[float, float], ...]  # (from, to) in secs, rows missing in between

    @property
    def period(self) -> float:
        """Length of one loop: the last row plays for one step before the first comes round again."""
        return float(self.secs[-1] + self.step)


def rate_series(traffic: Traffic, times: np.ndarray, rng: np.random.Generator, base_dir: Path | None = None) -> np.ndarray:
    """Offered requests per second at each of ``times`` (seconds since start)."""
    rate = np.full(times.shape, traffic.base, dtype=np.float64)
    offset = calendar_offset(traffic._start_time, traffic._anchor_trace, base_dir)
    for c in traffic.components:
        rate *= multiplier(c, times, rng, base_dir, offset)
    if not np.isfinite(rate).all():
        raise ValueError("traffic: the components multiply to a rate that is not a finite number (a factor or sigma "
                         "too large?)")
    return np.maximum(rate, 0.0)


def multiplier(c: object, t: np.ndarray, rng: np.random.Generator, base_dir: Path | None,
               offset: float = 0.0) -> np.ndarray:
    """The multiplier series of one component; ``offset`` is t=0's seconds since a Monday 00:00 (local)."""
    match c:
        case Diurnal(amplitude=a, peak_hour=p):
            return 1.0 + a * np.cos(2 * np.pi * ((t + offset) / 3600.0 - p) / 24.0)
        case Weekly(amplitude=a):
            day = np.floor((t + offset) / DAY) % 7  # day 0 is a Monday
            return np.where(day >= 5, 1.0 - a, 1.0)
        case Noise(sigma=s, period=period):
            step = float(t[1] - t[0]) if len(t) > 1 else period
            period = max(period, step)  # finer knots than the ticks would only be sampled once each
            knots = np.arange(0.0, (t[-1] if len(t) else 0.0) + 2 * period, period)
            z = rng.standard_normal(len(knots))
            return np.maximum(0.0, 1.0 + s * np.interp(t, knots, z))
        case Spike(at=at, duration=d, factor=f, ramp=r):
            return 1.0 + (f - 1.0) * _envelope(t, at, at + d, r)
        case Bursts(rate_per_day=rate, duration=d, factor=f, ramp=r):
            return 1.0 + (f - 1.0) * _bursts(t, rate, d, r, rng)
        case Ramp(start=s, end=e, to_factor=f):
            frac = np.clip((t - s) / max(e - s, 1e-9), 0.0, 1.0)
            return 1.0 + (f - 1.0) * frac
        case Idle(start=s, end=e):
            return np.where((t >= s) & (t < e), 0.0, 1.0)
        case Trace():
            return trace_multiplier(c, t, base_dir)
    raise TypeError(f"unknown traffic component {c!r}")


def _bursts(t: np.ndarray, rate_per_day: float, duration: float, ramp: float, rng: np.random.Generator) -> np.ndarray:
    """Envelopes (0..1) of bursts whose starts form a Poisson process of ``rate_per_day``; overlaps take the max."""
    horizon = float(t[-1]) if len(t) else 0.0
    n = int(rng.poisson(rate_per_day * horizon / DAY))
    out = np.zeros(t.shape)
    for at in np.sort(rng.uniform(0.0, horizon, n)):
        lo, hi = np.searchsorted(t, [at - 1e-9, at + duration + 2 * ramp + 1e-9])
        if hi > lo:
            out[lo:hi] = np.maximum(out[lo:hi], _envelope(t[lo:hi], at, at + duration + ramp, ramp))
    return out


def _envelope(t: np.ndarray, start: float, end: float, ramp: float) -> np.ndarray:
    """0 before ``start``, rising linearly over ``ramp`` to 1, falling back to 0 after ``end``."""
    r = max(ramp, 1e-9)
    up = np.clip((t - start) / r, 0.0, 1.0)
    down = np.clip((end + r - t) / r, 0.0, 1.0)
    return np.minimum(up, down)


# ------------------------------------------------------------------ calendar
def calendar_offset(start_time: str | None, anchor: Trace | None, base_dir: Path | None) -> float:
    """Seconds from the Monday 00:00 before t=0 to t=0, in t=0's local time (UTC unless an offset is given)."""
    if start_time is None:
        return 0.0
    if start_time == "trace":
        if anchor is None:
            raise ValueError("start_time: 'trace' needs a service with a trace component")
        data = read_trace(anchor, base_dir)
        if data.origin is None:
            raise ValueError(f"start_time: 'trace': {data.path} has relative timestamps (seconds from 0), so its "
                             f"dates are unknown; give start_time as an ISO date-time instead")
        dt = datetime.fromtimestamp(data.origin, UTC)
    else:
        dt = parse_instant(start_time)
    monday = (dt - timedelta(days=dt.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return (dt - monday).total_seconds()


# --------------------------------------------------------------------- trace
def resolve(c: Trace, base_dir: Path | None) -> Path:
    path = Path(c.file)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


def load_trace(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(seconds from the first row, values)`` of a whole trace file, with the default options."""
    data = read_trace(Trace(type="trace", file=str(path)), None)
    return data.secs, data.vals


def read_trace(c: Trace, base_dir: Path | None) -> TraceData:
    """The rows of ``c``'s file that ``c`` replays (its start/end window, its gap policy).

    Every problem is a ValueError naming the file; gaps filled are reported as
    a :class:`TraceNotice` warning (once per file and options in a process).
    """
    path = resolve(c, base_dir)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ValueError(f"{path}: trace file not found") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read the trace ({e.strerror})") from None
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size, c.start, c.end, c.gaps, c.time_column, c.value_column)
    data, notice = _read_cached(*key)
    if notice:
        warnings.warn(notice, TraceNotice, stacklevel=2)
    return data  # its arrays are shared between callers, hence read-only


@functools.lru_cache(maxsize=64)
def _read_cached(resolved: str, _mtime: int, _size: int, start: float | str | None, end: float | str | None,
                 gaps: str, time_column: str | None, value_column: str | None) -> tuple[TraceData, str | None]:
    path = Path(resolved)
    secs, vals, origin = _read_csv(path, time_column, value_column)
    secs, vals, shift = _window(path, secs, vals, origin, start, end)
    if origin is not None:
        origin += shift
    diffs = np.diff(secs)
    step = float(np.median(diffs))
    big = np.flatnonzero(diffs > GAP_FACTOR * step)
    spans = tuple((float(secs[i]), float(secs[i + 1])) for i in big)
    notice = None
    if spans:
        where = _describe_gaps(spans, origin, step)
        if gaps == "error":
            raise ValueError(f"{path}: {len(spans)} gap(s) in the trace (rows missing, usual step {_dur(step)}): "
                             f"{where}; set gaps: interpolate or zero to replay it anyway")
        if gaps == "zero":
            ins_t = np.concatenate([secs[big] + step, secs[big + 1] - step])
            secs = np.concatenate([secs, ins_t])
            vals = np.concatenate([vals, np.zeros(len(ins_t))])
            order = np.argsort(secs, kind="stable")
            secs, vals = secs[order], vals[order]
        how = "counted as zero requests" if gaps == "zero" else "filled by linear interpolation"
        notice = (f"{path}: {len(spans)} gap(s) in the trace (usual step {_dur(step)}), {how}: {where} "
                  f"(gaps: interpolate|zero|error)")
    for a in (secs, vals):
        a.setflags(write=False)
    return TraceData(path, secs, vals, step, origin, spans), notice


def _pick(path: Path, columns: list[str], given: str | None, known: tuple[str, ...], what: str, option: str) -> str:
    if given is not None:
        if given not in columns:
            raise ValueError(f"{path}: no column {given!r} ({option}); columns found: {', '.join(columns)}")
        return given
    lower = {col.strip().lower(): col for col in columns}
    for k in known:
        if k in lower:
            return lower[k]
    raise ValueError(f"{path}: no {what} column; columns found: {', '.join(map(str, columns)) or '(none)'}; "
                     f"allowed: {', '.join(known)} (or set {option})")


def _read_csv(path: Path, time_column: str | None, value_column: str | None) -> tuple[np.ndarray, np.ndarray,
                                                                                      float | None]:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise ValueError(f"{path}: trace file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as e:
        raise ValueError(f"{path}: not a readable CSV ({str(e).strip().splitlines()[0] if str(e) else e})") from None
    columns = [str(col) for col in df.columns]
    tcol = _pick(path, columns, time_column, TIME_COLUMNS, "time", "time_column")
    vcol = _pick(path, columns, value_column, VALUE_COLUMNS, "value", "value_column")
    if len(df) < 2:
        raise ValueError(f"{path}: a trace needs at least two rows, found {len(df)}")
    raw_t = df[tcol].str.strip()
    num_t = pd.to_numeric(raw_t, errors="coerce")
    origin: float | None
    if num_t.notna().all():
        secs = num_t.to_numpy(dtype=float)
        if not np.isfinite(secs).all():
            raise ValueError(f"{path}: column {tcol}: times must be finite numbers")
        origin = 0.0 if secs.min() >= EPOCH_MIN else None  # epoch seconds: absolute
    else:
        try:
            dt = pd.to_datetime(raw_t, utc=True, format="ISO8601")
        except (ValueError, TypeError, OverflowError):
            bad = next((i for i, x in enumerate(raw_t) if not _is_time(x)), 0)
            raise ValueError(f"{path}: column {tcol} must hold seconds or ISO date-times; row {bad + 2} has "
                             f"{raw_t.iloc[bad]!r}") from None
        secs = (dt - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()
        origin = 0.0
    raw_v = df[vcol].str.strip()
    vals = pd.to_numeric(raw_v, errors="coerce").to_numpy(dtype=float)
    bad_rows = np.flatnonzero(~np.isfinite(vals) | (vals < 0) | (vals > MAX_VALUE))
    if len(bad_rows):
        i = int(bad_rows[0])
        raise ValueError(f"{path}: column {vcol} must hold non-negative numbers up to {MAX_VALUE:g}; row {i + 2} "
                         f"has {raw_v.iloc[i]!r}" + (f" ({len(bad_rows)} such rows)" if len(bad_rows) > 1 else ""))
    order = np.argsort(secs, kind="stable")
    secs, vals = secs[order], vals[order]
    dup = np.flatnonzero(np.diff(secs) == 0)
    if len(dup):
        i = int(order[dup[0] + 1])
        raise ValueError(f"{path}: two rows at the same time {raw_t.iloc[i]!r} (row {i + 2})")
    if origin is not None:  # absolute: remember where the file starts
        origin = float(secs[0])
    return secs - secs[0], vals, origin


def _is_time(x: str) -> bool:
    try:
        pd.Timestamp(x)
        return True
    except (ValueError, TypeError, OverflowError):
        return False


def _point(path: Path, p: float | str, origin: float | None, first: float, name: str) -> float:
    """A window bound as seconds from the file's first row."""
    if isinstance(p, float | int):
        return float(p)
    if origin is None:
        raise ValueError(f"{path}: {name}: {p!r} is a date-time but the file's times are relative seconds; "
                         f"give {name} as an offset (seconds or '2h', '1d')")
    return parse_instant(p).timestamp() - first


def _window(path: Path, secs: np.ndarray, vals: np.ndarray, origin: float | None, start: float | str | None,
            end: float | str | None) -> tuple[np.ndarray, np.ndarray, float]:
    """The rows in [start, end), re-based to start at 0, and the shift (seconds from the file's first row)."""
    lo = _point(path, start, origin, origin or 0.0, "start") if start is not None else 0.0
    hi = _point(path, end, origin, origin or 0.0, "end") if end is not None else np.inf
    keep = (secs >= lo) & (secs < hi)
    if keep.sum() < 2:
        span = f"{_fmt_t(0.0, origin)} .. {_fmt_t(float(secs[-1]), origin)}"
        raise ValueError(f"{path}: the window start={start!r} end={end!r} holds {int(keep.sum())} row(s), a trace "
                         f"needs at least two; the file spans {span}")
    secs, vals = secs[keep], vals[keep]
    if not vals.any():
        raise ValueError(f"{path}: every replayed value is 0: the trace would mean no traffic at all "
                         f"(use an idle component for that)")
    shift = float(secs[0])
    return secs - shift, vals, shift


def _fmt_t(s: float, origin: float | None) -> str:
    if origin is None:
        return f"{s:g} s"
    return datetime.fromtimestamp(origin + s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dur(s: float) -> str:
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= n and s % n == 0:
            return f"{s / n:g}{unit}"
    return f"{s:g}s"


def _describe_gaps(spans: tuple[tuple[float, float], ...], origin: float | None, step: float) -> str:
    shown = [f"{_fmt_t(a, origin)} to {_fmt_t(b, origin)} ({int(round((b - a) / step)) - 1} row(s) missing)"
             for a, b in spans[:5]]
    more = f" and {len(spans) - 5} more" if len(spans) > 5 else ""
    return "; ".join(shown) + more


def trace_multiplier(c: Trace, t: np.ndarray, base_dir: Path | None) -> np.ndarray:
    """The trace resampled onto ``t``, looping (the last row plays for one step, then the first comes round),
    normalised as ``c.normalize`` says and scaled by ``c.scale``."""
    data = read_trace(c, base_dir)
    secs = np.append(data.secs, data.period) * c.time_scale
    vals = np.append(data.vals, data.vals[0])
    norm = {"mean": float(data.vals.mean()), "peak": float(data.vals.max()), "none": 1.0}[c.normalize]
    return c.scale * np.interp(np.mod(t, secs[-1]), secs, vals) / norm
