"""``zeroops detect FILE.csv``: score a metric series with a streaming detector.

Reads ``timestamp,value`` (timestamps ISO-8601 or epoch seconds, irregular allowed;
empty or NaN values allowed), scores every row causally (each score uses that row
and the rows before it only) and writes ``timestamp,value,score,detected``.
Bad input exits 2 with one line naming the file, the line and the problem.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_INPUT = 0, 2
MISSING = {"", "nan", "NaN", "NAN", "null", "NULL", "None", "NA", "N/A", "-"}


class InputError(ValueError):
    pass


def parse_time(text: str) -> float:
    """Epoch seconds, or ISO-8601 (a 'Z' or an offset; naive times are UTC)."""
    s = text.strip()
    try:
        v = float(s)
        if math.isfinite(v):
            return v
    except ValueError:
        pass
    try:
        d = datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith(("Z", "z")) else s)
    except ValueError:
        raise InputError(f"unparsable timestamp {text!r} (use ISO-8601 like 2026-01-05T00:00:00Z or epoch seconds)") \
            from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return d.timestamp()


def read_series(path: Path) -> tuple[list[str], list[str], list[float], list[float]]:
    """Rows of the file as (raw timestamps, raw values, times in s, values); raises InputError with the line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError("no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read it ({e.__class__.__name__}: {e})") from None
    if not text.strip():
        raise InputError("empty file (expected a header 'timestamp,value' and rows)")
    rows = csv.reader(text.splitlines())
    header = [h.strip().lower() for h in next(rows)]
    missing = [c for c in ("timestamp", "value") if c not in header]
    if missing:
        raise InputError(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                         f"(found: {', '.join(header) or 'nothing'}; expected a header 'timestamp,value')")
    it, iv = header.index("timestamp"), header.index("value")
    raw_t: list[str] = []
    raw_v: list[str] = []
    ts: list[float] = []
    vs: list[float] = []
    for line, row in enumerate(rows, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) <= max(it, iv) and len(row) <= it:
            raise InputError(f"line {line}: no timestamp")
        tt = row[it] if it < len(row) else ""
        vv = row[iv].strip() if iv < len(row) else ""
        try:
            t = parse_time(tt)
        except InputError as e:
            raise InputError(f"line {line}: {e}") from None
        if ts and t < ts[-1]:
            raise InputError(f"line {line}: timestamp {tt.strip()!r} is earlier than the previous row's "
                             f"{raw_t[-1]!r} (timestamps must not go back; sort the file)")
        if vv in MISSING:
            v = float("nan")
        else:
            try:
                v = float(vv)
            except ValueError:
                raise InputError(f"line {line}: value {vv!r} is not a number (leave it empty for a missing value)") \
                    from None
        raw_t.append(tt.strip())
        raw_v.append(vv)
        ts.append(t)
        vs.append(v)
    if not ts:
        raise InputError("no data rows after the header")
    return raw_t, raw_v, ts, vs


def detector_options(a: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    m = a.method
    if m in ("ensemble", "seasonal", "cusum"):
        if a.no_seasonality:
            opts["periods"] = ()
        elif a.period:
            opts["periods"] = tuple(a.period)
    if m in ("ensemble", "seasonal") and a.z_threshold is not None:
        opts["z_threshold"] = a.z_threshold
    if m == "ensemble" and a.fp_per_day is not None:
        opts["fp_per_day"] = a.fp_per_day
    if m == "ensemble":
        if a.limit is not None:
            opts["limit"] = a.limit
        if a.slo is not None:
            opts["slo"] = a.slo
    if m == "trend" and a.limit is not None:
        opts["limit"] = a.limit
    if m in ("ensemble", "trend") and a.horizon is not None:
        opts["horizon_s"] = a.horizon
    if m == "burnrate" and a.slo is not None:
        opts["slo"] = a.slo
    return opts


def cmd_detect(a: argparse.Namespace) -> int:
    import numpy as np

    from engines.detection import make_detector

    path = Path(a.file)
    try:
        raw_t, raw_v, ts, vs = read_series(path)
        if not 0.0 < a.threshold <= 1.0:
            raise InputError(f"--threshold must be in (0, 1], got {a.threshold}")
    except InputError as e:
        print(f"error: {path}: {e}", file=sys.stderr)
        return EXIT_INPUT
    try:
        det = make_detector(a.method, **detector_options(a))
    except (ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    scores = det.score_series(ts, vs)
    hit = scores >= a.threshold
    try:
        out = sys.stdout if a.out in (None, "-") else open(a.out, "w", newline="", encoding="utf-8")  # noqa: SIM115
    except OSError as e:
        print(f"error: {a.out}: cannot write the output ({e.strerror or e})", file=sys.stderr)
        return EXIT_INPUT
    try:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["timestamp", "value", "score", "detected"])
        for i in range(len(ts)):
            w.writerow([raw_t[i], raw_v[i], f"{scores[i]:.4f}", int(hit[i])])
    finally:
        if out is not sys.stdout:
            out.close()
    alarms = int((hit & ~np.r_[False, hit[:-1]]).sum())
    n_missing = int(np.sum(~np.isfinite(np.asarray(vs))))
    seasons = ""
    base = getattr(det, "base", None)
    if base is not None and base.components:
        names = {86400.0: "daily", 604800.0: "weekly"}
        on = [names.get(c.period, f"{c.period:g}s") for c in base.components if bool(c.active[0])]
        seasons = f", seasonality: {', '.join(on) or 'none'}"
    where = "" if a.out in (None, "-") else f" → {a.out}"
    print(f"{path}: {len(ts)} rows ({n_missing} missing values), {alarms} alarms ({int(hit.sum())} rows with score ≥ "
          f"{a.threshold:g}), method {a.method}{seasons}{where}", file=sys.stderr if where == "" else sys.stdout)
    return EXIT_OK


def add_detect_parser(sub: Any) -> None:
    """Add ``detect`` to the ``zeroops`` sub-parsers."""
    from engines.detection import METHODS

    p = sub.add_parser(
        "detect", help="score a metric series (CSV timestamp,value) for anomalies",
        description="Score every row of a timestamp,value CSV with a streaming (causal) anomaly detector and write "
                    "timestamp,value,score,detected. Timestamps: ISO-8601 or epoch seconds, irregular allowed; "
                    "empty or NaN values allowed. Exit 2 on bad input.")
    p.add_argument("file", metavar="FILE.csv", help="input CSV with columns timestamp,value")
    p.add_argument("--out", help="output CSV (default: stdout, the summary goes to stderr)")
    p.add_argument("--threshold", type=float, default=0.5, help="score at or above which a row is detected (0.5)")
    p.add_argument("--method", choices=sorted(METHODS), default="ensemble", help="detector (default: ensemble)")
    p.add_argument("--period", type=float, action="append", metavar="SECONDS",
                   help="a seasonality period in seconds (repeatable; default: auto-detect a day and a week)")
    p.add_argument("--no-seasonality", action="store_true", help="no seasonal baseline")
    p.add_argument("--z-threshold", type=float, help="robust sigmas at which a spike scores 0.5 (default 5)")
    p.add_argument("--fp-per-day", type=float, metavar="N",
                   help="false-alarm budget for spikes (ensemble): sets the z threshold from the sampling interval")
    p.add_argument("--limit", type=float, help="a limit the series must not reach (e.g. 1.0 for utilisation): "
                   "adds time-to-limit detection of slow trends")
    p.add_argument("--horizon", type=float, metavar="SECONDS",
                   help="alert when the limit is predicted within this many seconds (default 43200)")
    p.add_argument("--slo", type=float, help="the series is an error ratio under this SLO (e.g. 0.999): adds "
                   "multiwindow burn-rate alerts")
    p.set_defaults(fn=cmd_detect)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="zeroops")
    add_detect_parser(p.add_subparsers(dest="command", required=True))
    a = p.parse_args(argv)
    return int(a.fn(a))


if __name__ == "__main__":
    sys.exit(main())
