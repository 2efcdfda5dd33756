"""``zeroops budget status|forecast|anomalies RESULTS``: the budget decisions of runs, read back from their files.

``RESULTS`` is a folder written by ``zeroops run`` / ``suite`` (every ``<scenario>/<engines>/`` in it) or one
run's folder.  Each view reads the run's ``actions.csv`` (the executed decisions and their evidence) and
``result.json`` (the scored budget figures):

* ``status`` — budget figures (overruns, peak share), each threshold alert with its day, each scale-down
  and reallocation, and what the gate refused for budgets (rules budget-hard-limit, budget-cap);
* ``forecast`` — every period-end spend forecast recorded, with its interval, and the scored forecast error;
* ``anomalies`` — every cost anomaly notified (project, service, resource, observed vs expected rate) and the
  scored detection delay against the billing's ground truth.

``--json`` prints the same as JSON.  Bad input exits 2 with one line naming the path and the problem.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_INPUT = 0, 2
DAY = 86400.0
NEEDED = ("at", "engine", "kind", "outcome", "rule", "evidence")


class BudgetInputError(ValueError):
    """A results path that cannot be read; the message names it and says why."""


def find_runs(path: Path, scenario: str | None = None, engines: str | None = None) -> list[Path]:
    """Run folders (holding ``actions.csv``) under ``path``, filtered by scenario and engine set names."""
    if not path.exists():
        raise BudgetInputError(f"{path}: no such file or folder")
    if not path.is_dir():
        raise BudgetInputError(f"{path}: expected a results folder (written by zeroops run or suite), got a file")
    runs = [path] if (path / "actions.csv").is_file() else sorted(p.parent for p in path.glob("*/*/actions.csv"))
    runs = [r for r in runs if (scenario is None or r.parent.name == scenario) and (engines is None or r.name == engines)]
    if not runs:
        what = "".join(f" {k} {v!r}" for k, v in (("scenario", scenario), ("engines", engines)) if v)
        raise BudgetInputError(f"{path}: no run folder (<scenario>/<engines>/actions.csv){' for' + what if what else ''}"
                               f"; write one with: zeroops run scenarios/extended/budget-month.yaml --out {path}")
    return runs


def read_run(run: Path) -> dict[str, Any]:
    """The budget decisions of one run folder."""
    import pandas as pd

    f = run / "actions.csv"
    try:
        df = pd.read_csv(f)
    except Exception as e:  # noqa: BLE001 - pandas raises many kinds on junk
        raise BudgetInputError(f"{f}: not a readable CSV ({type(e).__name__}: {e})") from None
    missing = [c for c in NEEDED if c not in df.columns]
    if missing:
        raise BudgetInputError(f"{f}: not a zeroops actions.csv: missing columns {', '.join(missing)}")
    metrics: dict[str, Any] = {}
    rj = run / "result.json"
    if rj.is_file():
        try:
            metrics = json.loads(rj.read_text()).get("metrics", {})
        except (json.JSONDecodeError, OSError) as e:
            raise BudgetInputError(f"{rj}: not valid JSON ({e})") from None
    out: dict[str, Any] = {"run": str(run), "scenario": run.parent.name, "engines": run.name,
                           "metrics": {k: v for k, v in metrics.items() if k.startswith(("budget", "cost_anomal"))},
                           "alerts": [], "actions": [], "reallocations": [], "forecasts": [], "anomalies": [],
                           "refused": {}}
    for row in df.itertuples(index=False):
        rule = str(getattr(row, "rule", ""))
        if row.outcome == "denied" and rule in ("budget-hard-limit", "budget-cap"):
            key = f"{rule} {row.engine} {row.kind}"
            out["refused"][key] = out["refused"].get(key, 0) + 1
        if row.outcome != "executed" or not isinstance(row.evidence, str) or "budget" not in row.evidence \
                and "cost_anomaly" not in row.evidence:
            continue
        try:
            ev = json.loads(row.evidence)
        except json.JSONDecodeError:
            raise BudgetInputError(f"{f}: row at {row.at}: evidence is not valid JSON") from None
        day = round(float(row.at) / DAY, 3)
        base = {"at": float(row.at), "day": day, "engine": row.engine, "kind": row.kind}
        if "budget_alert" in ev:
            out["alerts"].append(base | ev["budget_alert"])
        elif "budget_action" in ev and row.kind in ("shelve_server", "stop_server"):
            out["actions"].append(base | ev["budget_action"] | {"target": row.target})
        elif "budget_unmet" in ev:
            out["actions"].append(base | ev["budget_unmet"] | {"target": "-", "service": "(none left)",
                                                               "running_before": "-", "running_after": "-"})
        elif "budget_reallocation" in ev:
            out["reallocations"].append(base | ev["budget_reallocation"])
        elif "budget_forecast" in ev:
            out["forecasts"].append(base | ev["budget_forecast"])
        elif "cost_anomaly" in ev:
            out["anomalies"].append(base | ev["cost_anomaly"])
    return out


def _num(v: Any, fmt: str = ".2f") -> str:
    return "-" if v is None or v != v else format(v, fmt)


def _status(r: dict[str, Any]) -> list[str]:
    m = r["metrics"]
    lines = [f"budget overruns: {_num(m.get('budget_overruns'), 'g')}   peak share of a limit: "
             f"{_num(m.get('budget_peak_share'), '.1%')}"]
    for a in r["alerts"]:
        lines.append(f"  day {a['day']:7.3f}  alert {a['threshold']:.0%}  {a['project']:<8} spent {a['spent']:.2f} "
                     f"of {a['limit']:.2f}; forecast at period end {_num(a['forecast_period_end']['point'])}")
    for a in r["actions"]:
        lines.append(f"  day {a['day']:7.3f}  {a['kind']} {a['target']} ({a['service']}, budget {a['project']}, "
                     f"{a['trigger']}): {a['running_before']} -> {a['running_after']} running")
    for a in r["reallocations"]:
        lines.append(f"  day {a['day']:7.3f}  reallocate {a['amount']:.2f} from {a['from']} to {a['to']}")
    for k, n in sorted(r["refused"].items()):
        lines.append(f"  refused by the gate: {k} x{n}")
    if not (r["alerts"] or r["actions"] or r["reallocations"] or r["refused"]):
        lines.append("  no budget alert, action or refusal on the record")
    return lines


def _forecast(r: dict[str, Any]) -> list[str]:
    m = r["metrics"]
    lines = [f"forecast error (period-end spend, forecasts from day 1): {_num(m.get('budget_forecast_error'), '.2%')}"
             f"   interval coverage: {_num(m.get('budget_forecast_coverage'), '.0%')}"]
    for f in r["forecasts"]:
        fc = f["forecast_period_end"]
        lines.append(f"  day {f['day']:7.3f}  {f['project']:<8} spent {f['spent']:.2f}  period end {_num(fc['point'])} "
                     f"[{_num(fc['lo'])}, {_num(fc['hi'])}] vs limit {f['effective_limit']:.2f}")
    if not r["forecasts"]:
        lines.append("  no forecast on the record (is budget_manager in the engine set?)")
    return lines


def _anomalies(r: dict[str, Any]) -> list[str]:
    m = r["metrics"]
    lines = [f"cost anomalies in the billing: {_num(m.get('cost_anomalies'), 'g')}, detected "
             f"{_num(m.get('cost_anomalies_detected'), 'g')}, mean delay {_num(m.get('cost_anomaly_delay_s'), '.0f')} s, "
             f"false alarms {_num(m.get('cost_anomaly_false_alarms'), 'g')}"]
    for a in r["anomalies"]:
        res = a.get("resource") or {}
        lines.append(f"  day {a['day']:7.3f}  project {a['project']}, service {a['service']}, flavor {res.get('flavor')}: "
                     f"{a['observed_per_hour']:.3f}/h vs expected {a['expected_per_hour']:.3f}/h "
                     f"({_num(a['ratio'] - 1, '+.0%')}); new servers {len(res.get('new_servers', []))}")
    if not r["anomalies"]:
        lines.append("  no cost anomaly notified")
    return lines


VIEWS = {"status": _status, "forecast": _forecast, "anomalies": _anomalies}


def cmd_budget(a: argparse.Namespace) -> int:
    try:
        runs = [read_run(r) for r in find_runs(Path(a.results), a.scenario, a.engines)]
    except BudgetInputError as e:
        print(f"zeroops budget: {e}", file=sys.stderr)
        return EXIT_INPUT
    if a.json:
        keys = {"status": ("metrics", "alerts", "actions", "reallocations", "refused"),
                "forecast": ("metrics", "forecasts"), "anomalies": ("metrics", "anomalies")}[a.view]
        print(json.dumps([{"scenario": r["scenario"], "engines": r["engines"], **{k: r[k] for k in keys}}
                          for r in runs], indent=2, default=str))
        return EXIT_OK
    for r in runs:
        print(f"{r['scenario']} / {r['engines']}")
        for line in VIEWS[a.view](r):
            print(line)
    return EXIT_OK


def add_budget_parser(sub: Any) -> None:
    p = sub.add_parser("budget", help="budget alerts, actions, forecasts and cost anomalies of runs",
                       description="Read the budget decisions of a results folder (zeroops run/suite --out) back: "
                                   "status (alerts, scale-downs, reallocations, refusals), forecast (period-end "
                                   "forecasts and their error), anomalies (cost anomalies and detection delay). "
                                   "Exit 2 on bad input.")
    p.add_argument("view", choices=list(VIEWS), help="what to show")
    p.add_argument("results", metavar="RESULTS", help="a results folder or one run's folder")
    p.add_argument("--scenario", help="only this scenario's runs")
    p.add_argument("--engines", help="only this engine set's runs")
    p.add_argument("--json", action="store_true", help="JSON instead of text")
    p.set_defaults(fn=cmd_budget)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="zeroops")
    add_budget_parser(p.add_subparsers(dest="command", required=True))
    a = p.parse_args(argv)
    return int(a.fn(a))


if __name__ == "__main__":
    sys.exit(main())
