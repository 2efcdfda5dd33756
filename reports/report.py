"""A markdown report of a results folder: the summary table and the plots (``zeroops report OUT_DIR``).

Reads only the files ``zeroops suite`` writes (summary.json and, per run,
timeseries.csv and incidents.csv); writes ``OUT_DIR/plots/*.png`` and
``OUT_DIR/report.md``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from reports.plots import load_run, scenario_figure, summary_figure

COLUMNS = (("incidents", "incidents"), ("mttd_s", "MTTD"), ("mttr_s", "MTTR"), ("availability", "availability"),
           ("slo_violation_minutes", "SLO-violation min"), ("cost", "cost"), ("cost_savings", "savings"),
           ("human_interventions", "human interventions"), ("automation_rate", "automation"),
           ("actions_taken", "actions"))


class ReportError(ValueError):
    """The folder is not a results folder written by ``zeroops suite``/``run``."""


def fmt(v: Any, metric: str) -> str:
    """One table cell: durations in s or min, ratios as %, money with 2 decimals; ``-`` when absent."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if metric == "availability":
        return f"{100 * v:.3f} %"
    if metric in ("cost_savings", "automation_rate"):
        return f"{100 * v:.1f} %"
    if metric in ("mttd_s", "mttr_s"):
        return f"{v:.0f} s" if v < 600 else f"{v / 60:.1f} min"
    if metric == "cost":
        return f"{v:,.2f}"
    if isinstance(v, float):
        return f"{v:,.1f}"
    return str(v)


def summary_table(runs: list[dict[str, Any]]) -> str:
    heads = ["scenario", "engines", *(h for _, h in COLUMNS), "targets"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for r in runs:
        cells = [r["scenario"], r["engines"]]
        targets = r.get("targets") or {}
        for metric, _ in COLUMNS:
            mark = {"met": " ✓", "missed": " ✗"}.get(targets.get(metric, {}).get("status", ""), "")
            cells.append(fmt(r["metrics"].get(metric), metric) + mark)
        st = [t.get("status") for t in targets.values()]
        judged = [s for s in st if s in ("met", "missed")]
        cells.append(f"{st.count('met')}/{len(judged)} met" if judged else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _load_summary(out_dir: Path) -> dict[str, Any]:
    path = out_dir / "summary.json"
    if not path.exists():
        raise ReportError(f"{out_dir}: no summary.json (write one with `zeroops suite --out {out_dir}`)")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), list):
        raise ReportError(f"{path}: expected an object with a 'runs' list")
    return doc


def build_report(out_dir: Path) -> Path:
    """Render the plots and ``report.md`` for the results in ``out_dir``; returns the report's path."""
    out_dir = Path(out_dir)
    doc = _load_summary(out_dir)
    runs: list[dict[str, Any]] = doc["runs"]
    plots = out_dir / "plots"
    scenarios = list(dict.fromkeys(r["scenario"] for r in runs))
    order = list(dict.fromkeys(r["engines"] for r in runs))
    sections: list[str] = []
    for scn in scenarios:
        mine = [r for r in runs if r["scenario"] == scn]
        series = []
        for r in mine:
            run_dir = out_dir / scn / r["engines"]
            if (run_dir / "timeseries.csv").exists():
                series.append(load_run(run_dir, r.get("duration_s")))
        if not series:
            sections.append(f"### {scn}\n\n(no time series found in {scn}/)\n")
            continue
        png = scenario_figure(scn, series, plots / f"{scn}.png", order)
        hours = (mine[0].get("duration_s") or 0) / 3600.0
        incidents = {r["engines"]: r["metrics"].get("incidents") for r in mine}
        sections.append(f"### {scn}\n\n{hours:g} simulated hours; incidents per engine set: "
                        + ", ".join(f"{e} {n}" for e, n in incidents.items())
                        + f".\n\n![{scn}]({png.relative_to(out_dir).as_posix()})\n")
    summary_png = summary_figure(runs, plots / "summary.png")
    text = [
        "# zeroops results report",
        "",
        f"Generated from `{out_dir.name}/summary.json` ({len(runs)} runs, {len(scenarios)} scenarios, "
        f"engine sets: {', '.join(order)}).  Metric definitions: docs/results.md.",
        "",
        "## Summary",
        "",
        summary_table(runs),
        "",
        f"![summary]({summary_png.relative_to(out_dir).as_posix()})",
        "",
        "## Scenarios",
        "",
        "Per scenario, over simulated time: offered (dashed) vs good served load summed over services, the worst "
        "service's p95 latency, the request-weighted error ratio, active servers and cumulative spend. Shaded "
        "bands are ground-truth incidents, one band per engine set (their resolution times differ).",
        "",
        *sections,
    ]
    report = out_dir / "report.md"
    report.write_text("\n".join(text) + "\n")
    return report
