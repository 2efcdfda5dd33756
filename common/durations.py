"""One grammar for durations everywhere a user writes one (scenario files, safety limits, CLI options).

A number is seconds; a string is a number with an optional unit: ``500ms``, ``30s``, ``5m`` / ``5min``, ``2h``,
``7d``, ``1w`` (no unit: seconds).  :func:`parse_duration` raises ``ValueError`` naming what is allowed.
"""

from __future__ import annotations

import math
import re

UNITS: dict[str, float] = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
PATTERN = r"^\s*\d+(\.\d+)?\s*(ms|s|min|m|h|d|w)?\s*$"  # for JSON Schemas of files that take durations
_DUR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d|w)?\s*$")
MAX_SECONDS = 2.0**53  # exact in a float; larger numbers overflow numpy's int64 clocks
HINT = "seconds or a string like '30s', '5m', '2h', '7d'"


def is_duration(text: str) -> bool:
    """Whether ``text`` is written in the duration grammar (a number with an optional unit)."""
    return _DUR.match(text.lower()) is not None


def parse_duration(v: object, *, allow_negative: bool = False) -> float:
    """Seconds from ``v``: ``"5m"`` → 300.0, ``90`` → 90.0.  Negative numbers only with ``allow_negative``."""
    if isinstance(v, bool):
        raise ValueError(f"a duration must be {HINT}, not a boolean")
    secs: float | None = None
    try:
        if isinstance(v, int | float):
            secs = float(v)
        elif isinstance(v, str) and (m := _DUR.match(v.lower())):
            secs = float(m.group(1)) * UNITS[m.group(2) or "s"]
    except OverflowError:  # an integer too large for a float
        raise ValueError(f"duration {str(v)[:20]}... is too large; at most {MAX_SECONDS:g} s") from None
    if secs is None:
        raise ValueError(f"invalid duration {v!r}: use {HINT}")
    if not math.isfinite(secs) or abs(secs) > MAX_SECONDS:
        raise ValueError(f"invalid duration {v!r}: must be a finite number of seconds, at most {MAX_SECONDS:g}")
    if secs < 0 and not allow_negative:
        raise ValueError(f"a duration must be >= 0 seconds, got {v!r}")
    return secs
