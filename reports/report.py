"""The report of a results folder (``zeroops report RESULTS_DIR [--format html|md] [--out FILE]``).

Reads only the files ``zeroops run``/``suite`` write (docs/results.md): ``summary.json`` (a ``sweep.csv``
beside it adds seeds) and, per run, ``timeseries.csv``, ``incidents.csv``, ``actions.csv`` and
``postmortems/``.  Writes its PNGs to ``RESULTS_DIR/plots/`` and ``report.md`` (images linked) or
``report.html`` (one file, images embedded, no script, no network).  Layout: docs/reports.md.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pandas as pd

from reports.dashboard import Dashboard, Line, build_dashboard, fmt_stat, fmt_value
from reports.doc import Block, Details, Heading, Image, Para, Table, slug, to_html, to_markdown
from reports.incident_records import read_actions_csv
from reports.plots import load_run, summary_figure
from reports.results_model import BASELINES, ReportError, Results, load_results
from reports.scenario_plots import demand_figure, forecasts, funnel_figure, funnel_values, service_figure

__all__ = ["ReportError", "build_report", "report_blocks", "summary_table"]

FORMATS = ("md", "html")
HTML_MARK = {"met": "✓", "missed": "✗", "": ""}  # text marks: a headless browser may have no emoji font
COLUMNS = (("incidents", "incidents"), ("mttd_s", "MTTD"), ("mttr_s", "MTTR"), ("availability", "availability"),
           ("slo_violation_minutes", "SLO-violation min"), ("cost", "cost"), ("cost_savings", "savings"),
           ("human_interventions", "human interventions"), ("automation_rate", "automation"),
           ("actions_taken", "actions"))


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


def summary_rows(runs: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    heads = ["scenario", "engines", "seed", *(h for _, h in COLUMNS), "targets"]
    rows = []
    for r in runs:
        cells = [r["scenario"], r["engines"], str(r.get("seed", ""))]
        targets = r.get("targets") or {}
        for metric, _ in COLUMNS:
            mark = {"met": " ✓", "missed": " ✗"}.get(targets.get(metric, {}).get("status", ""), "")
            cells.append(fmt(r["metrics"].get(metric), metric) + mark)
        st = [t.get("status") for t in targets.values()]
        judged = [s for s in st if s in ("met", "missed")]
        cells.append(f"{st.count('met')}/{len(judged)} met" if judged else "-")
        rows.append(cells)
    return heads, rows


def summary_table(runs: list[dict[str, Any]]) -> str:
    heads, rows = summary_rows(runs)
    return "\n".join(["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads),
                      *("| " + " | ".join(r) + " |" for r in rows)])


# ------------------------------------------------------------------ dashboard
def _line_row(d: Dashboard, ln: Line) -> list[str]:
    others = [e for e in d.engines if e != d.primary]
    return [ln.spec.label, fmt_stat(ln.values[d.primary], ln.spec.unit), ln.target or "–",
            (HTML_MARK[ln.status] + " " + ln.status).strip() or "–", ln.scenario_targets or "–",
            *(fmt_stat(ln.values[e], ln.spec.unit) for e in others)]


def dashboard_blocks(d: Dashboard) -> list[Block]:
    others = [e for e in d.engines if e != d.primary]
    heads = ["figure", f"{d.primary} (under test)", "target", "status vs design", "scenario targets met",
             *(f"{e} (baseline)" if e in BASELINES else e for e in others)]
    seeds = (f"{d.seeds} seeds per scenario: each figure is the mean over seeds with its 95 % Student-t interval "
             "in brackets" if d.seeds > 1 else "one seed per scenario (no interval: run more seeds, e.g. with "
             "`zeroops sweep`, for one)")
    out: list[Block] = [Heading(2, "Automation dashboard", "dashboard"), Para(
        f"The engine set under test is `{d.primary}`; beside it, its targets, the baselines (`static`, `reactive`) "
        "and the other engine sets of the same run. "
        f"Counts are summed over the scenarios, rates and times averaged over them (the alert rates and savings "
        f"from the summed counts and costs); {seeds}. Targets marked "
        "(design) are the design document's (zero-ops-design.md §10), (scenario files) the scenarios' own.")]
    for title, lines in d.sections:
        rows = [_line_row(d, ln) for ln in lines]
        classes = [ln.status for ln in lines]
        if title == "Cost" and d.budget:
            b = d.budget
            n = len(others)
            rows += [["budget (budget manager's limits)", fmt_value(b["budget"], "money"), "–", "–", "–", *["–"] * n],
                     ["spent against the budgets", fmt_value(b["spent"], "money"), "–", "–", "–", *["–"] * n],
                     ["forecast, next 30 days", fmt_value(b["forecast_30d"], "money"), "–", "–", "–", *["–"] * n]]
            classes += ["", "", ""]
        out += [Heading(3, title, "dash-" + slug(title)), Table(heads, rows, classes)]
    return out


# ------------------------------------------------------------------ scenarios
def _clock(t: Any) -> str:
    if t is None or (isinstance(t, float) and math.isnan(t)) or t == "":
        return "–"
    t = float(t)
    d, rest = divmod(int(round(t)), 86400)
    return (f"d{d + 1} " if d else "") + time.strftime("%H:%M:%S", time.gmtime(rest))


def _dur(s: Any) -> str:
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return "–"
    return fmt_value(float(s), "s")


def _read_incidents(run_dir: Path) -> pd.DataFrame | None:
    f = run_dir / "incidents.csv"
    if not f.is_file():
        return None
    try:
        return pd.read_csv(f)
    except pd.errors.EmptyDataError:
        return None


def incident_blocks(res: Results, scn: str) -> list[Block]:
    prim_e = res.primary_in(scn)
    run_dir = res.run_dir(scn, prim_e)
    inc = _read_incidents(run_dir)
    if inc is None or not len(inc):
        return [Para(f"No ground-truth incident in `{scn}/{prim_e}`.")]
    others = [e for e in res.engines if e != prim_e and res.of(scn, e)]
    ttr = {e: {} for e in others}
    for e in others:
        o = _read_incidents(res.run_dir(scn, e))
        if o is not None:
            ttr[e] = dict(zip(o["id"].astype(str), o["ttr_s"], strict=True))
    heads = ["incident", "fault", "true / declared", "onset", "detected", "declared", "mitigated", "resolved",
             f"TTR {prim_e}", *(f"TTR {e}" for e in others), "post-mortem"]
    rows, details = [], []
    pm_dir = run_dir / "postmortems"
    for _, r in inc.iterrows():
        iid = str(r["id"])
        pm = pm_dir / f"{iid}.md"
        link = "–"
        if pm.is_file():
            anchor = f"pm-{slug(scn)}-{slug(iid)}"
            link = f"[post-mortem](#{anchor})"  # Markdown: a link to the file itself (reports/doc.py)
            details.append(Details(f"Post-mortem {iid} ({scn}/{prim_e})", pm.read_text(), anchor, pm))
        declared = r.get("declared_severity")
        rows.append([
            iid, str(r["type"]), f"{r.get('true_severity', '–')} / {declared if isinstance(declared, str) else '–'}",
            _clock(r["start"]), f"{_clock(r.get('detected_at'))} ({r.get('detected_by') or '–'})"
            if not pd.isna(r.get("detected_at")) else "missed", _clock(r.get("declared_at")),
            _clock(r.get("mitigated_at")), f"{_clock(r.get('end'))} ({r.get('resolved_by') or '–'})"
            if not pd.isna(r.get("end")) else "open at the end", _dur(r.get("ttr_s")),
            *(_dur(ttr[e].get(iid)) for e in others), link])
    return [Table(heads, rows), *details]


def scenario_blocks(res: Results, scn: str, plots: Path) -> list[Block]:
    runs = res.of(scenario=scn)
    out: list[Block] = [Heading(3, scn, "scn-" + slug(scn))]
    dur = next((r.get("duration_s") for r in runs if r.get("duration_s")), None)
    series, metrics = [], {}
    for e in res.engines:
        d = res.run_dir(scn, e)
        if (d / "timeseries.csv").is_file():
            series.append(load_run(d, dur))
        mine = res.of(scn, e)
        if mine:
            metrics[e] = mine[-1]["metrics"]
    seeds = sorted({str(r.get("seed")) for r in runs})
    out.append(Para(f"{(dur or 0) / 3600:g} simulated hours; engine sets: {', '.join(metrics)}; seed(s) "
                    f"{', '.join(seeds)} (time series from the run folders, which hold the last seed written)."))
    if not series:
        return [*out, Para(f"(no time series found in `{scn}/`)")]
    end_h = (dur or 0) / 3600.0
    prim_e = res.primary_in(scn)
    prim = res.run_dir(scn, prim_e)
    acts = read_actions_csv(prim / "actions.csv") if (prim / "actions.csv").is_file() else []
    per_service = pd.read_csv(prim / "timeseries.csv", index_col=0) if (prim / "timeseries.csv").is_file() else None
    out.append(Image(demand_figure(scn, series, forecasts(acts), per_service, plots / f"{scn}-demand.png",
                                   res.engines, prim_e), f"{scn}: demand vs capacity vs forecast"))
    out.append(Image(service_figure(scn, series, _read_incidents(prim), plots / f"{scn}.png", res.engines,
                                    prim_e, end_h), f"{scn}: latency, errors, spend"))
    if metrics:
        out.append(Image(funnel_figure(scn, metrics, plots / f"{scn}-alerts.png", res.engines),
                         f"{scn}: alert funnel"))
        heads = ["engine set", *("raw alerts", "suppressed", "sent to humans", "useful pages", "false positives",
                                 "auto-remediated incidents")]
        out.append(Table(heads, [[e, *("–" if v is None else f"{v:.0f}" for v in funnel_values(m).values())]
                                 for e, m in metrics.items()]))
    out.append(Para(f"Incident timeline of `{prim_e}` (ground truth; times are simulated clock, day and "
                    "hh:mm:ss; TTR of the baselines for the same fault beside it):"))
    out += incident_blocks(res, scn)
    return out


# ------------------------------------------------------------------ assembly
def report_blocks(res: Results, bench: Path | None = None) -> list[Block]:
    plots = res.folder / "plots"
    d = build_dashboard(res)
    blocks: list[Block] = [
        Heading(1, "zeroops results report"),
        Para(f"Generated from `{res.folder.name}/summary.json`"
             + (f" and `{res.sweep.name}`" if res.sweep else "")
             + f": {len(res.runs)} run(s), {len(res.scenarios)} scenario(s), engine sets {', '.join(res.engines)}. "
             "Every figure is read from the results files; metric definitions: docs/results.md."),
        Para("Contents: [dashboard](#dashboard) · [summary](#summary) · [scenarios](#scenarios)"
             + (" · [benchmarks](#benchmarks)" if bench else "")),
    ]
    blocks += dashboard_blocks(d)
    heads, rows = summary_rows(res.runs)
    blocks += [Heading(2, "Summary", "summary"), Table(heads, rows),
               Para("Availability is drawn in nines (−log10 of the unavailability: 2 = 99 %, 3 = 99.9 %), so "
                    "98 % and 99.9 % stay apart."),
               Image(summary_figure(res.runs, plots / "summary.png"), "engine sets compared across scenarios"),
               Heading(2, "Scenarios", "scenarios")]
    for scn in res.scenarios:
        blocks += scenario_blocks(res, scn, plots)
    if bench is not None:
        from reports.bench import bench_blocks

        blocks += bench_blocks(bench, plots)
    return blocks


def build_report(out_dir: Path, fmt_: str = "md", out: Path | None = None, bench: Path | None = None) -> Path:
    """Render ``report.md`` or ``report.html`` of the results in ``out_dir``; returns the report's path."""
    return build_reports(out_dir, (fmt_,), out, bench)[0]


def parse_formats(text: str) -> tuple[str, ...]:
    """``md``, ``html`` or both, comma-separated (the plots are drawn once for both)."""
    fmts = tuple(dict.fromkeys(f.strip() for f in text.split(",") if f.strip()))
    bad = [f for f in fmts if f not in FORMATS]
    if bad or not fmts:
        raise ReportError(f"--format {text!r}: allowed values are {', '.join(FORMATS)} (or md,html for both)")
    return fmts


def build_reports(out_dir: Path, fmts: tuple[str, ...] = ("md",), out: Path | None = None,
                  bench: Path | None = None) -> list[Path]:
    """Render the report in each format (plots drawn once); ``out`` names the file when there is one format."""
    for f in fmts:
        if f not in FORMATS:
            raise ReportError(f"--format {f!r}: allowed values are {', '.join(FORMATS)}")
    if out is not None and len(fmts) > 1:
        raise ReportError("--out names one file: give one --format with it")
    out_dir = Path(out_dir)
    res = load_results(out_dir)
    if bench is not None and not Path(bench).is_file():
        raise ReportError(f"--bench {bench}: no such file (a pytest-benchmark JSON: pytest --benchmark-json=FILE)")
    if bench is not None:
        from reports.bench import read_bench

        read_bench(Path(bench))  # a bad file is named before any plot is drawn
    blocks = report_blocks(res, Path(bench) if bench else None)
    paths = []
    for f in fmts:
        path = Path(out) if out is not None else out_dir / f"report.{f}"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = to_html(blocks, f"zeroops report — {out_dir.name}") if f == "html" else to_markdown(blocks, path)
        path.write_text(text)
        paths.append(path)
    return paths
