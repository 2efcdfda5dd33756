"""The automation dashboard of a results folder: every figure read from the results files.

Each figure is computed per engine set by pooling the scenarios it ran among those the engine set under
test ran (counts summed, rates and times averaged over scenarios except the alert rates and cost savings,
which come from counts and costs summed over the scenarios both sets ran) once per seed replicate (the k-th
seed of every scenario), then given as the mean over replicates with a 95 % Student-t interval when there
are several.  Beside it: the design document's target and the scenario files' targets on that metric, and
the baselines of the same run.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scipy import stats

from reports.results_model import Results

Runs = list[dict[str, Any]]

# the design document's targets (zero-ops-design.md §10 and its configuration): TARGETS, never results
DESIGN_TARGETS: dict[str, tuple[str, float]] = {
    "automation_rate": (">=", 0.999), "human_intervention_rate": ("<=", 0.001), "success_rate": (">=", 0.999),
    "mttd_s": ("<=", 10.0), "mttr_s": ("<=", 60.0), "mttr_p50_s": ("<=", 60.0), "availability": (">=", 0.99999),
    "change_success_rate": (">=", 0.99), "suppression_rate": (">=", 0.90), "false_alert_rate": ("<=", 0.0001),
    "savings_vs_static": (">=", 0.30),
}
OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}


def _vals(runs: Runs, key: str) -> list[float]:
    out = []
    for r in runs:
        v = r["metrics"].get(key)
        if isinstance(v, bool) or v is None:
            continue
        try:
            x = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(x):
            out.append(x)
    return out


def mean_of(key: str) -> Callable[[Runs], float | None]:
    def f(runs: Runs) -> float | None:
        v = _vals(runs, key)
        return sum(v) / len(v) if v else None
    return f


def sum_of(*keys: str) -> Callable[[Runs], float | None]:
    def f(runs: Runs) -> float | None:
        vs = [_vals(runs, k) for k in keys]
        return float(sum(sum(v) for v in vs)) if any(vs) else None
    return f


def success_rate(runs: Runs) -> float | None:
    ok, bad = sum(_vals(runs, "actions_taken")), sum(_vals(runs, "actions_failed"))
    return ok / (ok + bad) if ok + bad else None


def suppression_rate(runs: Runs) -> float | None:
    """1 − pages / raw alerts, both summed over the runs: a scenario with one alert weighs as one alert, not as
    a whole scenario (its own rate can be −100 % with two pages, or 100 % with none)."""
    raw, sent = sum(_vals(runs, "alerts_raw")), sum(_vals(runs, "notifications"))
    return 1.0 - sent / raw if raw else None


def false_alert_rate(runs: Runs) -> float | None:
    """Pages tied to no fault / pages, both summed over the runs."""
    sent, false = sum(_vals(runs, "notifications")), sum(_vals(runs, "pages_false"))
    return false / sent if sent else None


def suppressed(runs: Runs) -> float | None:
    raw, sent = _vals(runs, "alerts_raw"), _vals(runs, "notifications")
    return max(sum(raw) - sum(sent), 0.0) if raw else None


@dataclass(frozen=True)
class Spec:
    """One dashboard line: how to pool it over runs, its unit and the metric its target is read from."""

    key: str
    label: str
    unit: str  # pct, s, count, money, avail
    pool: Callable[[Runs], float | None]
    target_metric: str | None = None
    bounds: tuple[float | None, float | None] | None = None  # the figure's domain (intervals are clipped to it)

    def domain(self) -> tuple[float | None, float | None]:
        if self.bounds is not None:
            return self.bounds
        return (0.0, 1.0) if self.unit in ("pct", "avail") else (0.0, None)


SECTIONS: tuple[tuple[str, tuple[Spec, ...]], ...] = (
    ("Automation coverage", (
        Spec("automation_rate", "automation rate", "pct", mean_of("automation_rate"), "automation_rate"),
        Spec("human_intervention_rate", "human intervention rate", "pct", mean_of("human_intervention_rate"),
             "human_intervention_rate"),
        Spec("success_rate", "success rate (executed / executed + failed)", "pct", success_rate, "success_rate"),
        Spec("decisions", "total decisions", "count",
             sum_of("actions_taken", "actions_failed", "actions_denied", "actions_proposed", "decisions_recorded")),
    )),
    ("Performance", (
        Spec("mttd_s", "MTTD (mean)", "s", mean_of("mttd_s"), "mttd_s"),
        Spec("mttr_p50_s", "MTTR p50", "s", mean_of("mttr_p50_s"), "mttr_p50_s"),
        Spec("mttr_p95_s", "MTTR p95", "s", mean_of("mttr_p95_s"), "mttr_p95_s"),
        Spec("availability", "availability (user-facing)", "avail", mean_of("availability"), "availability"),
        Spec("change_success_rate", "change success", "pct", mean_of("change_success_rate"), "change_success_rate"),
    )),
    ("Cost", (
        Spec("cost", "spend (all scenarios)", "money", sum_of("cost")),
    )),
    ("Alerting", (
        Spec("alerts_raw", "raw alerts", "count", sum_of("alerts_raw")),
        Spec("suppressed", "suppressed (raw − sent to humans)", "count", suppressed),
        Spec("suppression_rate", "suppression rate (1 − pages / raw alerts, summed)", "pct", suppression_rate,
             "suppression_rate", (None, 1.0)),
        Spec("incidents_auto_resolved", "auto-remediated incidents", "count", sum_of("incidents_auto_resolved")),
        Spec("notifications", "sent to humans (pages)", "count", sum_of("notifications")),
        Spec("pages_false", "false positives (pages tied to no fault)", "count", sum_of("pages_false")),
        Spec("false_alert_rate", "false alert rate (false pages / pages, summed)", "pct", false_alert_rate,
             "false_alert_rate"),
    )),
    ("Continuous improvement", (
        Spec("releases_shipped", "releases shipped", "count", sum_of("releases_shipped")),
        Spec("bad_releases_reaching_full", "bad releases reaching 100 %", "count",
             sum_of("bad_releases_reaching_full"), "bad_releases_reaching_full"),
        Spec("good_releases_rolled_back", "good releases rolled back", "count", sum_of("good_releases_rolled_back"),
             "good_releases_rolled_back"),
        Spec("improvements_promoted", "improvements promoted", "pct", mean_of("improvements_promoted"),
             "improvements_promoted"),
    )),
    ("Chaos", (
        Spec("chaos_experiments", "experiments run", "count", sum_of("chaos_experiments")),
        Spec("chaos_aborted", "aborted on a violated steady state", "count", sum_of("chaos_aborted")),
        Spec("chaos_beyond_radius", "faults beyond the blast radius", "count", sum_of("chaos_beyond_radius"),
             "chaos_beyond_radius"),
        Spec("resilience_score", "resilience score", "count", mean_of("resilience_score"), "resilience_score"),
    )),
)
# a section is shown only when some engine set has a non-zero figure in it (e.g. no chaos without experiments)
NEEDS_NONZERO = {"Continuous improvement": "releases_shipped", "Chaos": "chaos_experiments"}


@dataclass
class Stat:
    """A pooled figure: mean over seed replicates, its 95 % interval (None with one seed), replicates."""

    mean: float | None
    lo: float | None = None
    hi: float | None = None
    n: int = 0


def t_interval(xs: list[float], domain: tuple[float | None, float | None] = (None, None)) -> Stat:
    """Mean and 95 % Student-t interval, clipped to the figure's domain (no 106 % availability)."""
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    if not xs:
        return Stat(None)
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return Stat(m, n=1)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
    h = float(stats.t.ppf(0.975, len(xs) - 1)) * sd / math.sqrt(len(xs))
    lo, hi = m - h, m + h
    if domain[0] is not None:
        lo = max(lo, domain[0])
    if domain[1] is not None:
        hi = min(hi, domain[1])
    return Stat(m, lo, hi, len(xs))


def replicates(runs: Runs) -> list[Runs]:
    """Runs split by seed replicate: the k-th seed (sorted) of every scenario goes to replicate k."""
    per: dict[str, Runs] = {}
    for r in runs:
        per.setdefault(r["scenario"], []).append(r)
    out: list[Runs] = []
    for rs in per.values():
        for k, r in enumerate(sorted(rs, key=lambda r: str(r.get("seed")))):
            while len(out) <= k:
                out.append([])
            out[k].append(r)
    return out


def pooled(runs: Runs, pool: Callable[[Runs], float | None],
           domain: tuple[float | None, float | None] = (None, None)) -> Stat:
    return t_interval([v for v in (pool(rep) for rep in replicates(runs)) if v is not None], domain)


@dataclass
class Line:
    spec: Spec
    values: dict[str, Stat]  # per engine set
    target: str = ""  # e.g. ">= 0.999 (design)"
    status: str = ""  # met / missed / "" for the engine set under test
    scenario_targets: str = ""  # "2/3 met" of the scenario files' targets on this metric


@dataclass
class Dashboard:
    primary: str
    engines: list[str]
    seeds: int
    sections: list[tuple[str, list[Line]]] = field(default_factory=list)
    budget: dict[str, Any] = field(default_factory=dict)  # from the budget manager's forecast reports


def _same(res: Results, engines: str) -> Runs:
    """The runs of ``engines`` on the scenarios the engine set under test ran: baselines compared like for like."""
    mine = {r["scenario"] for r in res.of(engines=res.primary)}
    return [r for r in res.of(engines=engines) if r["scenario"] in mine]


def _scenario_targets(res: Results, metric: str) -> tuple[str, str]:
    """The scenario files' target texts on ``metric`` and how many the engine set under test met."""
    texts: list[str] = []
    st: list[str] = []
    for r in res.of(engines=res.primary):
        t = (r.get("targets") or {}).get(metric)
        if isinstance(t, dict):
            if t.get("target") and t["target"] not in texts:
                texts.append(str(t["target"]))
            if t.get("status") in ("met", "missed"):
                st.append(t["status"])
    return " or ".join(texts), (f"{st.count('met')}/{len(st)} met" if st else "")


def _status(value: float | None, op: str, bound: float) -> str:
    if value is None:
        return ""
    return "met" if OPS[op](value, bound) else "missed"


def build_dashboard(res: Results) -> Dashboard:
    d = Dashboard(res.primary, res.engines, res.seeds())
    for title, specs in SECTIONS:
        lines = []
        for spec in specs:
            vals = {e: pooled(_same(res, e), spec.pool, spec.domain()) for e in res.engines}
            line = Line(spec, vals)
            if spec.target_metric:
                text, counts = _scenario_targets(res, spec.target_metric)
                line.scenario_targets = counts
                if spec.target_metric in DESIGN_TARGETS:
                    op, bound = DESIGN_TARGETS[spec.target_metric]
                    line.target = f"{op} {fmt_value(bound, spec.unit)} (design)"
                    line.status = _status(vals[res.primary].mean, op, bound)
                if text:
                    line.target = (line.target + "; " if line.target else "") + f"{text} (scenario files)"
            lines.append(line)
        if title == "Cost":
            lines += _savings_lines(res)
        if title == "Continuous improvement":
            lines += improvement_lines(res)
        need = NEEDS_NONZERO.get(title)
        if need and not any((ln.values[e].mean or 0) > 0 for ln in lines if ln.spec.key == need for e in res.engines):
            continue
        d.sections.append((title, lines))
    d.budget = budget_figures(res)
    return d


def _savings_lines(res: Results) -> list[Line]:
    """Savings of each engine set vs each baseline: 1 − Σcost / Σcost(baseline) on the scenarios both ran."""
    out = []
    for b in [e for e in res.engines if e in ("static", "reactive")] or res.baselines:
        def pool(runs: Runs, b: str = b) -> float | None:
            scns = {r["scenario"] for r in runs}
            base = [r for r in res.of(engines=b) if r["scenario"] in scns]
            seeds = {(r["scenario"], str(r.get("seed"))) for r in runs}
            base = [r for r in base if (r["scenario"], str(r.get("seed"))) in seeds] or base
            mine, theirs = sum(_vals(runs, "cost")), sum(_vals(base, "cost"))
            return 1.0 - mine / theirs if theirs > 0 and _vals(runs, "cost") else None

        spec = Spec(f"savings_vs_{b}", f"savings vs {b}", "pct", pool, f"savings_vs_{b}", (None, 1.0))
        vals = {e: (pooled(_same(res, e), pool, spec.domain()) if e != b else Stat(None)) for e in res.engines}
        line = Line(spec, vals)
        if spec.key in DESIGN_TARGETS:
            op, bound = DESIGN_TARGETS[spec.key]
            line.target = f"{op} {fmt_value(bound, 'pct')} (design: 30-40 %)"
            line.status = _status(vals[res.primary].mean, op, bound)
        out.append(line)
    return out


def improvement_lines(res: Results) -> list[Line]:
    """Experiments and canary decisions of each engine set, from the evidence in its run folders' actions.csv
    (reports/improvement_report.py; the folders hold the last seed written)."""
    from reports.improvement_report import read_decisions, summarise

    figs: dict[str, dict[str, float]] = {}
    for e in res.engines:
        acc = {"experiments": 0.0, "winners": 0.0, "promoted": 0.0, "regressions": 0.0}
        seen = False
        for scn in res.scenarios:
            run = res.run_dir(scn, e)
            if not (run / "actions.csv").is_file():
                continue
            try:
                weeks = summarise(read_decisions(run))
            except ValueError:
                continue
            for w in weeks.values():
                exps = list(w["experiments"].values())
                acc["experiments"] += len(exps)
                acc["winners"] += sum(1 for x in exps if x.get("decision") == "winner")
                acc["promoted"] += len(w["promoted"])
                acc["regressions"] += sum(1 for r in w["rolled_back"] if r["why"] == "canary_rollback")
                seen = True
        if seen:
            figs[e] = acc
    if not any(v["experiments"] or v["promoted"] or v["regressions"] for v in figs.values()):
        return []
    labels = (("experiments", "experiments run (run folders)"), ("winners", "winners"),
              ("promoted", "canaries promoted to 100 %"), ("regressions", "regressions caught by canaries"))
    return [Line(Spec(f"improvement_{k}", label, "count", lambda runs: None),
                 {e: Stat(figs[e][k], n=1) if e in figs else Stat(None) for e in res.engines})
            for k, label in labels]


def budget_figures(res: Results) -> dict[str, Any]:
    """The budget manager's last forecast report per scenario and project (actions.csv evidence), summed."""
    from reports.incident_records import read_actions_csv

    budget = spent = ahead = 0.0
    seen: list[str] = []
    have_ahead = False
    for scn in res.scenarios:
        f = res.run_dir(scn, res.primary) / "actions.csv"
        if not f.is_file():
            continue
        last: dict[str, dict[str, Any]] = {}
        for a in read_actions_csv(f):
            ev = a["evidence"].get("budget_forecast") if isinstance(a["evidence"], dict) else None
            if a["outcome"] == "executed" and isinstance(ev, dict):
                last[str(ev.get("project"))] = ev
        if "*" in last:  # an account budget covers every project: its projects' budgets are parts of it
            last = {"*": last["*"]}
        for p, ev in last.items():
            budget += float(ev.get("limit") or 0.0)
            spent += float(ev.get("spent") or 0.0)
            pt = (ev.get("next_days") or {}).get("point")
            if isinstance(pt, (int, float)) and math.isfinite(pt):
                ahead += float(pt)
                have_ahead = True
            seen.append(f"{scn}/{p}")
    if not seen:
        return {}
    return {"budget": budget, "spent": spent, "forecast_30d": ahead if have_ahead else None, "from": seen}


# ------------------------------------------------------------------ formatting
def fmt_value(v: float | None, unit: str) -> str:
    if v is None:
        return "–"
    if unit == "avail":
        nines = -math.log10(1.0 - v) if v < 1 else math.inf
        return f"{100 * v:.3f} % ({nines:.1f} nines)" if math.isfinite(nines) else "100 %"
    if unit == "pct":
        return f"{100 * v:.1f} %" if abs(v) >= 0.001 or v == 0 else f"{100 * v:.3f} %"
    if unit == "s":
        return f"{v:.1f} s" if v < 600 else f"{v / 60:.1f} min"
    if unit == "money":
        return f"{v:,.2f}"
    return f"{v:,.0f}" if float(v).is_integer() or abs(v) >= 100 else f"{v:.2f}"


def fmt_stat(s: Stat, unit: str) -> str:
    text = fmt_value(s.mean, unit)
    if s.lo is not None and s.hi is not None and s.hi - s.lo <= 1e-12 * max(abs(s.hi), 1.0):
        text += f" (all {s.n} seeds)"
    elif s.lo is not None and s.hi is not None:
        text += f" [{fmt_value(s.lo, unit if unit != 'avail' else 'pct')}, " \
                f"{fmt_value(s.hi, unit if unit != 'avail' else 'pct')}]"
    return text


MARK = {"met": "✅", "missed": "❌", "": ""}


def to_text(d: Dashboard) -> str:
    """The front page for a terminal, laid out like the design document's dashboard."""
    width = 74
    others = [e for e in d.engines if e != d.primary]
    out = ["=" * width, f"ZERO-OPS AUTOMATION DASHBOARD — engine set {d.primary}".center(width),
           (f"{d.seeds} seed(s) per scenario" + ("; [95 % interval across seeds]" if d.seeds > 1 else "")
            + (f"; baselines: {', '.join(others)}" if others else "")).center(width), "=" * width]
    for title, lines in d.sections:
        out += ["", title]
        for i, ln in enumerate(lines):
            branch = "└─" if i == len(lines) - 1 and not (title == "Cost" and d.budget) else "├─"
            v = fmt_stat(ln.values[d.primary], ln.spec.unit)
            row = f"   {branch} {ln.spec.label + ':':<44} {v} {MARK[ln.status]}".rstrip()
            out.append(row)
            extra = []
            if ln.target:
                extra.append(f"target {ln.target}")
            if ln.scenario_targets:
                extra.append(ln.scenario_targets)
            base = [f"{e} {fmt_stat(ln.values[e], ln.spec.unit)}" for e in others if ln.values[e].mean is not None]
            if base:
                extra.append("; ".join(base))
            if extra:
                out.append(f"   {'│' if branch == '├─' else ' '}     {' | '.join(extra)}")
        if title == "Cost" and d.budget:
            b = d.budget
            out.append(f"   ├─ {'budget (budget manager):':<44} {b['budget']:,.2f}")
            out.append(f"   ├─ {'spent against it:':<44} {b['spent']:,.2f}")
            fc = "–" if b["forecast_30d"] is None else f"{b['forecast_30d']:,.2f}"
            out.append(f"   └─ {'forecast (next 30 days):':<44} {fc}")
    return "\n".join(out) + "\n"
