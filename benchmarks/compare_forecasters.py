"""Forecasters side by side on the same series: ours (ensemble, seasonal) against persistence, seasonal-naive and
statsforecast's AutoETS.  Accuracy (engines/forecasting/accuracy.py: the 5-minute mean demand 15 minutes ahead) and
time per series.

Series: the synthetic families of benchmarks/forecast_data.py (known seasonality, trend, shifts, bursts, gaps),
the twin's standard traffic (the ``api`` service of scenarios/extended/diurnal-month.yaml, its offered rate from
twin/traffic.py at a 60 s scrape, 15 days) and the replayed trace scenarios/traces/week-10min.csv.

Every method is scored on the same rows: the rows at the end of each 5-minute bucket (the peers' cadence), after
the first day (a warm-up every method gets).  AutoETS runs as a production system would run it: on 5-minute
means, refitted every hour (``--refit``) on the last three days, and between refits applied to the newest data
with the fitted parameters (statsforecast's ``forward``).  statsforecast's ETS allows seasons of at most 24
steps (a day of 5-minute steps is 288), so AutoETS is non-seasonal here.

Run: ``.venv/bin/python -m benchmarks.compare_forecasters [--per-family 2] [--no-ets]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.forecast_data import FAMILIES, series
from engines.forecasting import accuracy as acc
from engines.forecasting import make_forecaster

DAY = 86400.0
HORIZON, WINDOW = 900.0, 300.0
TRACE = Path(__file__).resolve().parent.parent / "scenarios" / "traces" / "week-10min.csv"
OURS = ("ensemble", "seasonal")


def run_ours(model: str, batch: list[tuple[np.ndarray, np.ndarray]], window: float) -> tuple[list[np.ndarray], float]:
    """Stream a batch of series through one vectorised forecaster (padded with NaN); forecasts per series, wall s."""
    n, length = len(batch), max(len(t) for t, _ in batch)
    T = np.empty((n, length))
    X = np.full((n, length), np.nan)
    for i, (t, x) in enumerate(batch):
        T[i, :len(t)] = t
        T[i, len(t):] = t[-1] + 60.0 * np.arange(1, length - len(t) + 1)
        X[i, :len(t)] = x
    fc = make_forecaster(model, horizon_s=HORIZON, window_s=window)
    F = np.full((3, n, length), np.nan)
    t0 = time.perf_counter()
    for j in range(length):
        fc.update_many(T[:, j], X[:, j])
        F[:, :, j] = fc.forecast_many()
    wall = time.perf_counter() - t0
    return [F[:, i, :len(t)] for i, (t, _) in enumerate(batch)], wall


def ets_forecasts(t: np.ndarray, x: np.ndarray, ends: np.ndarray, window: float, refit_s: float,
                  fit_days: float = 3.0) -> np.ndarray:
    """AutoETS forecasts (mean, lo, hi) of the window ending HORIZON after each bucket end, refitted every refit_s."""
    from statsforecast.models import AutoETS

    y = acc.window_means(t, x, ends, window)
    ok = np.isfinite(y)
    if ok.sum() < 2:
        return np.full((3, len(ends)), np.nan)
    y = np.interp(np.arange(len(y)), np.flatnonzero(ok), y[ok])  # ETS needs a gapless series
    steps = max(int(round(HORIZON / window)), 1)
    keep = int(fit_days * DAY / window)
    out = np.full((3, len(ends)), np.nan)
    model, fitted_at = None, -np.inf
    for j in range(len(ends)):
        if j < 12:
            continue
        lo = max(0, j + 1 - keep)
        if ends[j] - fitted_at >= refit_s:
            model = AutoETS(season_length=1).fit(y[lo:j + 1])
            fitted_at = ends[j]
        r = model.forward(y=y[lo:j + 1], h=steps, level=[90])  # type: ignore[union-attr]
        out[:, j] = r["mean"][-1], r["lo-90"][-1], r["hi-90"][-1]
    return out


def evaluate(name: str, batch: list[tuple[np.ndarray, np.ndarray]], window: float, with_ets: bool,
             refit_s: float) -> dict[str, dict[str, float]]:
    """Accuracy of every method on a batch of series (pooled rows), and time per series."""
    methods = [f"ours: {m}" for m in OURS] + ["persistence", "seasonal-naive (day)"] + \
        (["AutoETS (statsforecast)"] if with_ets else [])
    pool: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    y_all, naive_all, wall = [], [], {m: 0.0 for m in methods}
    ours = {}
    for m in OURS:
        ours[m], w = run_ours(m, batch, window)
        wall[f"ours: {m}"] = w / len(batch)
    for i, (t, x) in enumerate(batch):
        ends = np.arange(np.ceil(t[0] / window) * window, t[-1] + 1e-9, window)
        rows = np.searchsorted(t, ends, side="right") - 1  # the last row at or before each bucket end
        rows, first = np.unique(rows, return_index=True)
        ends = ends[first]
        sel = t[rows] >= t[0] + DAY
        rows, ends = rows[sel], ends[sel]
        y = acc.targets(t, x, HORIZON, window)[rows]
        naive = acc.seasonal_naive(t, x, HORIZON, window)[rows]
        y_all.append(y)
        naive_all.append(naive)
        for m in OURS:
            pool[f"ours: {m}"].append(ours[m][i][:, rows])
        t0 = time.perf_counter()
        pers = acc.window_means(t, x, t[rows], window)
        wall["persistence"] += time.perf_counter() - t0
        pool["persistence"].append(np.vstack([pers, np.full_like(pers, np.nan), np.full_like(pers, np.nan)]))
        pool["seasonal-naive (day)"].append(np.vstack([naive, np.full_like(naive, np.nan), np.full_like(naive, np.nan)]))
        if with_ets:
            all_ends = np.arange(np.ceil(t[0] / window) * window, t[-1] + 1e-9, window)
            t0 = time.perf_counter()
            e = ets_forecasts(t, x, all_ends, window, refit_s)
            wall["AutoETS (statsforecast)"] += (time.perf_counter() - t0) / len(batch)
            pool["AutoETS (statsforecast)"].append(e[:, np.searchsorted(all_ends, ends)])
    y, naive = np.concatenate(y_all), np.concatenate(naive_all)
    res = {}
    for m in methods:
        f = np.concatenate(pool[m], axis=1)
        s = acc.score(f[0], y, f[1], f[2], naive)
        res[m] = {**s.as_dict(), "s_per_series": wall[m] if m.startswith(("ours", "AutoETS")) else float("nan")}
    print(f"  {name}: {len(batch)} series, {len(y)} rows", flush=True)
    return res


def load_trace() -> tuple[np.ndarray, np.ndarray]:
    from zeroops.detect_cli import read_series

    _, _, ts, vs = read_series(TRACE)
    return np.asarray(ts), np.asarray(vs)


def twin_traffic(days: float = 15.0) -> tuple[np.ndarray, np.ndarray]:
    """The offered rate of the twin's standard diurnal traffic (the api service of diurnal-month), at 60 s."""
    from scenarios.loader import load_scenario
    from twin.traffic import rate_series

    path = Path(__file__).resolve().parent.parent / "scenarios" / "extended" / "diurnal-month.yaml"
    scn = load_scenario(path)
    svc = next(s for s in scn.services if s.name == "api")
    times = np.arange(0, days * DAY, 60.0)
    rate = rate_series(svc.traffic, times, np.random.default_rng(scn.seed), path.parent)
    return 1767571200.0 + times, rate


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = []
    for name, res in results.items():
        lines.append(f"\n**{name}**\n")
        lines.append("| method | within ±10 % | MAPE | MASE (vs seasonal-naive) | 90 % interval coverage | s per series |")
        lines.append("|---|---|---|---|---|---|")
        for m, r in res.items():
            cov = "–" if r["coverage"] != r["coverage"] else f"{100 * r['coverage']:.1f} %"
            sp = "–" if r["s_per_series"] != r["s_per_series"] else f"{r['s_per_series']:.2f}"
            lines.append(f"| {m} | {100 * r['within_10']:.1f} % | {100 * r['mape']:.1f} % | {r['mase']:.3f} | {cov} | {sp} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--per-family", type=int, default=2, help="synthetic series per family (2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-ets", action="store_true", help="skip AutoETS (statsforecast)")
    p.add_argument("--refit", type=float, default=3600.0, help="AutoETS refit interval in seconds (3600)")
    p.add_argument("--only", nargs="*", help="only these series sets")
    a = p.parse_args(argv)
    with_ets = not a.no_ets
    if with_ets:
        try:
            import statsforecast  # noqa: F401
        except ImportError:
            print("statsforecast is not installed (pip install -e '.[peers]'): AutoETS skipped")
            with_ets = False
    sets: dict[str, tuple[list[tuple[np.ndarray, np.ndarray]], float]] = {}
    sets["twin standard traffic (diurnal-month api, 60 s)"] = ([twin_traffic()], WINDOW)
    tt, tx = load_trace()
    sets["replayed trace week-10min.csv (10 min)"] = ([(tt, tx)], acc.effective_window(tt, WINDOW))
    for fam in FAMILIES:
        sets[f"synthetic: {fam}"] = ([series(fam, k, a.seed) for k in range(a.per_family)], WINDOW)
    results = {}
    for name, (batch, window) in sets.items():
        if a.only and not any(o in name for o in a.only):
            continue
        results[name] = evaluate(name, batch, window, with_ets, a.refit)
    print(table(results))


if __name__ == "__main__":
    main()
