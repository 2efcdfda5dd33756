"""Writing results: a stable, documented schema (docs/results.md) that reports and tools read.

Layout of an output folder::

    summary.json            {"schema_version", "generated_by", "runs": [run summary, ...]}
    summary.csv             one row per (scenario, engines): the metrics and target statuses
    severity_confusion.csv  true vs declared severity, summed per engine set
    <scenario>/<engines>/result.json     run summary + incidents
    <scenario>/<engines>/actions.csv     every decision that passed the choke point
    <scenario>/<engines>/incidents.csv   ground-truth incidents with detection and resolution
    <scenario>/<engines>/declarations.csv  every executed DeclareIncident and what the scorer matched it to
    <scenario>/<engines>/timeseries.csv  per-minute means of every service metric, and spend
    <scenario>/<engines>/alerts.csv      every raw alert notification of the twin's alert rules
    <scenario>/<engines>/postmortems/    a Markdown post-mortem per incident and index.md (reports/postmortem.py)
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from scenarios.runner import RunResult
from scenarios.schema import SCHEMA_VERSION
from scenarios.scoring import CONFUSION_COLUMNS, INCIDENT_COLUMNS, METRICS, SEVERITIES


def _clean(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    return v


def run_summary(r: RunResult) -> dict[str, Any]:
    return {
        "scenario": r.scenario.name,
        "engines": r.engines,
        "seed": r.seed,
        "duration_s": r.scenario.duration,
        "wall_s": round(r.wall_s, 3),
        "realtime_factor": round(r.scenario.duration / r.wall_s, 1) if r.wall_s > 0 else None,
        "metrics": {k: _clean(r.score.metrics.get(k)) for k in METRICS},
        "targets": r.targets,
        "severity_confusion": r.score.severity_confusion,
    }


def write_run(r: RunResult, out: Path) -> Path:
    d = out / r.scenario.name / r.engines
    d.mkdir(parents=True, exist_ok=True)
    summary = run_summary(r) | {
        "schema_version": SCHEMA_VERSION,
        "incidents": [i.as_dict() for i in r.score.incidents],
        "declarations": [d.as_dict() for d in r.score.declarations],
        "slo_breaches": [{"service": s, "start": a, "end": b} for s, a, b in r.world.truth.breaches],
        "dependencies": {s.name: [x.service for x in s.dependencies] for s in r.scenario.services},
    }
    (d / "result.json").write_text(json.dumps(summary, indent=2, default=_clean) + "\n")
    # the explanation of each decision (evidence, alternatives considered) rides along, as JSON, for post-mortems
    rows = [rec.as_row() | {"evidence": dict(rec.action.evidence), "alternatives": list(rec.action.alternatives)}
            for rec in r.records]
    cols = ["seq", "at", "engine", "kind", "target", "params", "reason", "confidence", "incident", "verdict", "rule",
            "outcome", "detail", "server_ids", "error", "evidence", "alternatives"]
    df = pd.DataFrame(rows, columns=cols)
    if len(df):
        for c in ("params", "evidence", "alternatives"):
            df[c] = df[c].map(lambda p: json.dumps(p, default=str))
        df["server_ids"] = df["server_ids"].map(lambda s: " ".join(s))
    df.to_csv(d / "actions.csv", index=False)
    pd.DataFrame([i.as_dict() for i in r.score.incidents], columns=list(INCIDENT_COLUMNS)).to_csv(
        d / "incidents.csv", index=False)
    pd.DataFrame([x.as_dict() for x in r.score.declarations],
                 columns=["id", "at", "engine", "components", "severity", "root_causes", "fault", "verdict"]).to_csv(
        d / "declarations.csv", index=False)
    ts = r.world.metrics.to_pandas(60)
    ts.columns = [f"{m}:{s}" for m, s in ts.columns]
    spend = pd.Series(dict(r.world.spend_series), name="spend_total")
    ts = ts.join(spend.reindex(ts.index, method="ffill") if len(ts) else spend, how="left")
    ts.to_csv(d / "timeseries.csv")
    write_alerts(r, d / "alerts.csv")
    from reports.postmortem import write_postmortems  # read back from the files above: records only

    try:
        write_postmortems(d)
    except Exception as e:  # noqa: BLE001 - a post-mortem bug must not cost the run's own results
        warnings.warn(f"{d}: post-mortems not written ({type(e).__name__}: {e})", RuntimeWarning, stacklevel=2)
    return d


ALERT_COLUMNS = ("at", "state", "name", "severity", "labels", "starts_at", "value", "fingerprint", "paged")


def write_alerts(r: RunResult, path: Path) -> None:
    """Every raw notification the twin's alert rules emitted (repeats included), and whether it paged the human."""
    alerting = getattr(r.world, "alerting", None)
    paged = {(float(t), str(why)) for t, why in getattr(r.world.truth, "pages", ())}
    rows = [(a.at, a.state, a.name, a.severity, json.dumps(a.labels, sort_keys=True), a.starts_at, _clean(a.value),
             a.fingerprint, (float(a.at), a.fingerprint) in paged) for a in getattr(alerting, "alerts", ())]
    pd.DataFrame(rows, columns=list(ALERT_COLUMNS)).to_csv(path, index=False)


def write_summary(results: list[RunResult], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    runs = [run_summary(r) for r in results]
    doc = {"schema_version": SCHEMA_VERSION, "generated_by": "zeroops", "runs": runs}
    (out / "summary.json").write_text(json.dumps(doc, indent=2, default=_clean) + "\n")
    rows = []
    for s in runs:
        row = {"scenario": s["scenario"], "engines": s["engines"], "seed": s["seed"], "wall_s": s["wall_s"]}
        row.update(s["metrics"])
        met = [t["status"] for t in s["targets"].values()]
        row["targets_met"] = sum(1 for x in met if x == "met")
        row["targets_missed"] = sum(1 for x in met if x == "missed")
        rows.append(row)
    pd.DataFrame(rows).to_csv(out / "summary.csv", index=False)
    confusion_frame(results).to_csv(out / "severity_confusion.csv", index=False)


def confusion_frame(results: list[RunResult]) -> pd.DataFrame:
    """Severity confusion summed over the runs of each engine set: one row per (engines, true severity),
    one column per declared severity plus ``none`` (not declared)."""
    total: dict[str, dict[str, dict[str, int]]] = {}
    for r in results:
        acc = total.setdefault(r.engines, {t: dict.fromkeys(CONFUSION_COLUMNS, 0) for t in SEVERITIES})
        for t, row in r.score.severity_confusion.items():
            for c, n in row.items():
                acc[t][c] += n
    rows = [{"engines": e, "true": t, **cells} for e, m in total.items() for t, cells in m.items()]
    return pd.DataFrame(rows, columns=["engines", "true", *CONFUSION_COLUMNS])


def fmt(v: Any, metric: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, str):
        return v
    if metric == "availability":
        return f"{100 * v:.3f}%"
    if metric in RATIOS:
        return f"{100 * v:.1f}%"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.2f}"
    return str(v)


RATIOS = ("automation_rate", "cost_savings", "detection_precision", "detection_recall", "pages_precision",
          "human_intervention_rate", "severity_accuracy", "root_cause_top1", "root_cause_top3", "cost_savings_raw")

TABLE_METRICS = ("incidents", "mttd_p50_s", "mttd_p95_s", "mttr_p50_s", "mttr_p95_s", "detection_precision",
                 "detection_recall", "automation_rate", "availability", "slo_violation_minutes", "cost",
                 "cost_savings", "human_interventions", "actions_taken")


def _cell(r: RunResult, m: str) -> str:
    v = r.score.metrics.get(m)
    if m == "cost_savings" and v is None and r.score.metrics.get("cost_savings_comparable") is False:
        return "n/c"  # not comparable: worse service than static on the same seed
    if m in ("mttr_p50_s", "mttr_p95_s") and v is not None and r.score.metrics.get("mttr_lower_bound"):
        return "≥" + fmt(v, m)  # an incident was still open at the end: a lower bound
    return fmt(v, m)


def table(results: list[RunResult]) -> str:
    """A plain-text results table for the terminal, with target status marks (✓ met, ✗ missed)."""
    heads = ["scenario", "engines", *TABLE_METRICS, "targets"]
    short = {"slo_violation_minutes": "slo_min", "human_interventions": "humans", "automation_rate": "automation",
             "actions_taken": "actions", "availability": "avail", "cost_savings": "savings",
             "mttd_p50_s": "mttd_p50", "mttd_p95_s": "mttd_p95", "mttr_p50_s": "mttr_p50", "mttr_p95_s": "mttr_p95",
             "detection_precision": "det_prec", "detection_recall": "det_recall"}
    rows = []
    for r in results:
        cells = [r.scenario.name, r.engines]
        for m in TABLE_METRICS:  # targets on metrics not shown (e.g. the mean mttd_s) count in the last column
            mark = {"met": " ✓", "missed": " ✗"}.get(r.targets.get(m, {}).get("status", ""), "")
            cells.append(_cell(r, m) + mark)
        st = [t["status"] for t in r.targets.values()]
        cells.append(f"{st.count('met')}/{len(st) - st.count('n/a')} met" if st else "-")
        rows.append(cells)
    heads = [short.get(h, h) for h in heads]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(heads)] if rows else [len(h) for h in heads]
    line = "  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True))
    out = [line, "-" * len(line)]
    for row in rows:
        out.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(out)
