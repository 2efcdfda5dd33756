"""Budget figures of a run, from the twin's billing (ground truth) and the executed decisions.

* ``budget_overruns`` — budget periods whose spend exceeded the limit.  The account budget (``*``) is
  checked over every period from the per-minute billing series; a project budget over its current (last)
  period only (the twin keeps per-project spend as a running total, not as a series).
* ``budget_peak_share`` — the highest spent / limit of any budget's current period at the end of the run.
* ``budget_forecast_error`` — mean |forecast − actual| / actual of the period-end spend forecasts an engine
  recorded (executed actions whose evidence carries ``budget_forecast``), made at least a day into a period
  that ended by the end of the run; ``budget_forecast_coverage`` — the share whose interval held the actual.
* ``cost_anomalies`` — spikes of the account's spend rate in the billing: the trailing 10-minute rate at or
  above (1 + ``COST_ANOMALY_THRESHOLD``) times its expectation, the median of the same time of day over the
  previous (up to 7) days; episodes less than an hour apart merge.  An episode's onset is the start of its
  rise (back from the crossing while the rate is above expectation by a quarter of the threshold, at most 2 h):
  a project's or service's spike is caught before the account's rate crosses, and that is not early.
  ``cost_anomalies_detected`` — those with an executed action whose evidence carries ``cost_anomaly`` from
  ``ANOMALY_EARLY_S`` before the onset to an hour after the episode; ``cost_anomaly_delay_s`` — mean onset →
  first such action; ``cost_anomaly_false_alarms`` — such actions matching no episode.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from control.runtime import ActionRecord
    from twin.world import World

DAY = 86400.0
COST_ANOMALY_THRESHOLD = 0.5
ANOMALY_EARLY_S = 600.0  # a detection this long before the scored onset still matches (the onset is a 10-min mean)
MERGE_S = 3600.0

BUDGET_METRICS = ("budget_overruns", "budget_peak_share", "budget_forecast_error", "budget_forecast_coverage",
                  "cost_anomalies", "cost_anomalies_detected", "cost_anomaly_delay_s", "cost_anomaly_false_alarms")


def _evidence(records: Sequence[ActionRecord], key: str) -> list[tuple[float, dict[str, Any]]]:
    out = []
    for r in records:
        if r.outcome != "executed":
            continue
        ev = r.action.evidence.get(key) if isinstance(r.action.evidence, Mapping) else None
        if isinstance(ev, Mapping):
            out.append((r.at, dict(ev)))
    return out


def _series(world: World, run_end: float) -> tuple[np.ndarray, np.ndarray]:
    s = list(world.spend_series)
    if not s or s[0][0] > 0:
        s.insert(0, (0.0, 0.0))
    if s[-1][0] < run_end:
        s.append((run_end, float(world.spend_total)))
    a = np.array(s, dtype=float)
    return a[:, 0], a[:, 1]


def budget_metrics(world: World, records: Sequence[ActionRecord], run_end: float) -> dict[str, Any]:
    """The figures above (None where the run has no budget or no forecast)."""
    t, c = _series(world, run_end)
    out: dict[str, Any] = dict.fromkeys(BUDGET_METRICS)
    specs = list(getattr(world.cfg, "budgets", ()))
    states = world.budgets.states()[:len(specs)] if specs else []  # budgets of projects onboarded in a run follow
    if specs:
        over, peak = 0, 0.0
        for spec, st in zip(specs, states, strict=True):
            if spec.project == "*":
                starts = np.arange(0.0, run_end, spec.period)
                for a in starts:
                    spent = float(np.interp(min(a + spec.period, run_end), t, c) - np.interp(a, t, c))
                    over += spent > spec.limit + 1e-9
            else:
                over += st.spent > spec.limit + 1e-9
            peak = max(peak, st.spent / spec.limit)
        out["budget_overruns"], out["budget_peak_share"] = over, peak
    out.update(_forecast_error(records, states, t, c, run_end))
    out.update(_anomalies(records, t, c, run_end))
    return out


def _forecast_error(records: Sequence[ActionRecord], states: Sequence[Any], t: np.ndarray, c: np.ndarray,
                    run_end: float) -> dict[str, Any]:
    errs, inside = [], []
    final = {(s.project, s.period_start): s.spent for s in states}
    for at, ev in _evidence(records, "budget_forecast"):
        try:
            project, start, end = str(ev["project"]), float(ev["period_start"]), float(ev["period_end"])
            fc = ev["forecast_period_end"]
            point, lo, hi = float(fc["point"]), float(fc["lo"]), float(fc["hi"])
        except (KeyError, TypeError, ValueError):
            continue
        if at - start < DAY or end > run_end + 1e-6 or point != point:
            continue
        if project == "*":
            actual = float(np.interp(end, t, c) - np.interp(start, t, c))
        elif (project, start) in final and abs(end - run_end) < 1e-6:
            actual = final[(project, start)]
        else:
            continue
        if actual > 0:
            errs.append(abs(point - actual) / actual)
            inside.append(lo <= actual <= hi)
    return {"budget_forecast_error": float(np.mean(errs)) if errs else None,
            "budget_forecast_coverage": float(np.mean(inside)) if inside else None}


def anomaly_episodes(t: np.ndarray, c: np.ndarray, run_end: float,
                     threshold: float = COST_ANOMALY_THRESHOLD) -> list[tuple[float, float]]:
    """(onset, end) of each spike of the spend rate over its seasonal expectation (see the module docstring)."""
    grid = np.arange(0.0, run_end + 1e-9, 60.0)
    if len(grid) < 2 * 1440:
        return []
    cum = np.interp(grid, t, c)
    r10 = np.full(len(grid), np.nan)
    r10[10:] = (cum[10:] - cum[:-10]) / 600.0 * 3600.0
    past = np.full((7, len(grid)), np.nan)
    for d in range(1, 8):
        k = d * 1440
        if k < len(grid):
            past[d - 1, k:] = r10[:-k]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: the first day has no expectation
        expected = np.nanmedian(past, axis=0)
        hot = (expected > 0) & (r10 >= (1 + threshold) * expected)
        rising = (expected > 0) & (r10 > (1 + threshold / 4) * expected)
    episodes: list[tuple[float, float]] = []
    idx = np.flatnonzero(hot)
    if not len(idx):
        return []

    def rise(i: int) -> float:
        """The start of the excursion that crossed at ``i``: back while the rate is above its expectation by a
        quarter of the threshold (at most 2 h): a detection of the rise is not early."""
        j = i
        while j - 1 >= max(i - 120, 0) and rising[j - 1]:
            j -= 1
        return float(grid[j])

    start = prev = idx[0]
    for i in idx[1:]:
        if (i - prev) * 60.0 > MERGE_S:
            episodes.append((rise(start), float(grid[prev])))
            start = i
        prev = i
    episodes.append((rise(start), float(grid[prev])))
    return episodes


def _anomalies(records: Sequence[ActionRecord], t: np.ndarray, c: np.ndarray, run_end: float) -> dict[str, Any]:
    episodes = anomaly_episodes(t, c, run_end)
    flags = [at for at, _ in _evidence(records, "cost_anomaly")]
    delays, matched = [], set()
    for onset, end in episodes:
        hits = [i for i, at in enumerate(flags) if onset - ANOMALY_EARLY_S <= at <= end + MERGE_S]
        matched.update(hits)
        if hits:
            delays.append(max(flags[hits[0]] - onset, 0.0))
    return {"cost_anomalies": len(episodes), "cost_anomalies_detected": len(delays),
            "cost_anomaly_delay_s": float(np.mean(delays)) if delays else None,
            "cost_anomaly_false_alarms": len(flags) - len(matched)}
