"""``zeroops forecast FILE.csv --horizon 15m``: causal forecasts of a metric series, with intervals and accuracy.

Reads ``timestamp,value`` (ISO-8601 or epoch seconds, irregular allowed; empty or NaN values allowed), forecasts
for every row the mean demand over the window ending ``--horizon`` after it (each forecast uses that row and the
rows before it only) and writes ``timestamp,value,forecast,lo,hi,target``; prints MAPE, MASE against
seasonal-naive, the share within ±10 % and the interval coverage.  Bad input exits 2 with one line naming the
file, the line and the problem.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

from common.durations import parse_duration as _parse_duration
from zeroops.detect_cli import EXIT_INPUT, EXIT_OK, InputError, read_series


def parse_duration(text: str) -> float:
    """Seconds from '900', '15m', '1h', '1.5h', '2d' (:mod:`common.durations`); argparse type with a one-line error."""
    try:
        secs = _parse_duration(text)
    except ValueError:
        secs = 0.0
    if secs <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive duration (use seconds like 900, or 15m, 1h, 1d)")
    return secs


def _fmt(v: float) -> str:
    return "" if v != v else f"{v:.6g}"


def cmd_forecast(a: argparse.Namespace) -> int:
    import numpy as np

    from engines.forecasting import accuracy as acc
    from engines.forecasting import make_forecaster

    path = Path(a.file)
    try:
        raw_t, raw_v, ts, vs = read_series(path)
    except InputError as e:
        print(f"error: {path}: {e}", file=sys.stderr)
        return EXIT_INPUT
    t, x = np.asarray(ts), np.asarray(vs)
    window = acc.effective_window(t, a.window)
    opts: dict[str, Any] = {"horizon_s": a.horizon, "window_s": window, "coverage": a.coverage}
    if a.model in ("seasonal", "ensemble") and a.no_seasonality:
        opts["periods"] = ()
    if a.model == "snaive":
        opts["period_s"] = a.period
    try:
        fc = make_forecaster(a.model, **opts)
    except (ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    f, lo, hi = fc.forecast_series(t, x)
    y = acc.targets(t, x, a.horizon, window)
    naive = acc.seasonal_naive(t, x, a.horizon, window, a.period)
    try:
        out = sys.stdout if a.out in (None, "-") else open(a.out, "w", newline="", encoding="utf-8")  # noqa: SIM115
    except OSError as e:
        print(f"error: {a.out}: cannot write the output ({e.strerror or e})", file=sys.stderr)
        return EXIT_INPUT
    try:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["timestamp", "value", "forecast", "lo", "hi", "target"])
        for i in range(len(t)):
            w.writerow([raw_t[i], raw_v[i], _fmt(f[i]), _fmt(lo[i]), _fmt(hi[i]), _fmt(y[i])])
    finally:
        if out is not sys.stdout:
            out.close()
    s = acc.score(f, y, lo, hi, naive)
    pct = lambda v: "n/a" if v != v else f"{100 * v:.1f} %"  # noqa: E731
    num = lambda v: "n/a" if v != v else f"{v:.3f}"  # noqa: E731
    where = "" if a.out in (None, "-") else f" → {a.out}"
    print(f"{path}: {len(t)} rows, model {a.model}, horizon {a.horizon:g} s, target = mean over {window:g} s; "
          f"{s.n} scored: MAPE {pct(s.mape)}, within ±10 % {pct(s.within_10)}, MASE {num(s.mase)} "
          f"(vs seasonal-naive, {a.period:g} s), {pct(a.coverage)} interval coverage {pct(s.coverage)}{where}",
          file=sys.stderr if where == "" else sys.stdout)
    return EXIT_OK


def add_forecast_parser(sub: Any) -> None:
    """Add ``forecast`` to the ``zeroops`` sub-parsers."""
    from engines.forecasting import MODELS

    p = sub.add_parser(
        "forecast", help="forecast a metric series (CSV timestamp,value) and score the forecasts",
        description="For every row of a timestamp,value CSV, forecast causally the mean over --window ending "
                    "--horizon later, with a prediction interval; write timestamp,value,forecast,lo,hi,target and "
                    "print MAPE, MASE vs seasonal-naive, the share within ±10 %% and the interval coverage. "
                    "Exit 2 on bad input.")
    p.add_argument("file", metavar="FILE.csv", help="input CSV with columns timestamp,value")
    p.add_argument("--horizon", type=parse_duration, default=900.0, help="how far ahead: 900, 15m, 1h (15m)")
    p.add_argument("--window", type=parse_duration, default=300.0,
                   help="the demand window forecast (5m; widened to the sampling interval of a coarser series)")
    p.add_argument("--out", help="output CSV (default: stdout, the summary goes to stderr)")
    p.add_argument("--model", choices=list(MODELS), default="ensemble", help="forecaster (default: ensemble)")
    p.add_argument("--coverage", type=float, default=0.9, help="nominal interval coverage (0.9)")
    p.add_argument("--period", type=parse_duration, default=86400.0,
                   help="the seasonal-naive period for --model snaive and for MASE (1d)")
    p.add_argument("--no-seasonality", action="store_true", help="no seasonal profiles (seasonal, ensemble)")
    p.set_defaults(fn=cmd_forecast)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="zeroops")
    add_forecast_parser(p.add_subparsers(dest="command", required=True))
    a = p.parse_args(argv)
    return int(a.fn(a))


if __name__ == "__main__":
    sys.exit(main())
