"""The weekly improvement report (Markdown) of runs, from their files: ``zeroops improvement report RESULTS``.

``RESULTS`` is a folder written by ``zeroops run`` / ``suite`` (every ``<scenario>/<engines>/`` in it) or one
run's folder.  Per run it reads ``actions.csv`` (the executed decisions; the canary engines put their
analysis in each action's evidence under ``improvement``) and ``result.json`` (the scored release figures,
from the twin's ground truth), and reports, per week of simulated time:

* **experiments** run, their decisions (winner, loser, no difference), the measured effect on CPU per
  request with its always-valid interval, and the savings a winner implies at the service's cost rate then
  (effect × cost per hour, over the rest of the week: an estimate, stated as such);
* **rollouts**: canaries followed, promoted to 100 %, rolled back (with the metrics that regressed and the
  time from canary start), and the rollout success rate (promoted / decided);
* the scored ground truth when present: bad releases reaching 100 %, good releases rolled back, change
  success rate, mean detection delay of bad releases.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

WEEK = 7 * 86400.0
NO_DECISION = "none (replaced by a release, or the run ended)"
SCORED = ("releases_shipped", "releases_bad", "bad_releases_reaching_full", "good_releases_rolled_back",
          "improvements_promoted", "change_success_rate", "bad_release_detection_s", "rollbacks_of_good_releases")


class ReportInputError(ValueError):
    """A results path that cannot be read; the message names it and says why."""


def find_runs(path: Path) -> list[Path]:
    if not path.exists():
        raise ReportInputError(f"{path}: no such file or folder")
    if not path.is_dir():
        raise ReportInputError(f"{path}: expected a results folder (written by zeroops run or suite), got a file")
    runs = [path] if (path / "actions.csv").is_file() else sorted(p.parent for p in path.glob("*/*/actions.csv"))
    if not runs:
        raise ReportInputError(f"{path}: no run folder (<scenario>/<engines>/actions.csv); write one with: "
                               f"zeroops run scenarios/extended/releases-week.yaml --out {path}")
    return runs


def read_decisions(run: Path) -> list[dict[str, Any]]:
    """Executed actions whose evidence carries ``improvement``, oldest first."""
    f = run / "actions.csv"
    out = []
    try:
        with f.open(newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in ("at", "kind", "outcome", "evidence", "target") if c not in (reader.fieldnames or [])]
            if missing:
                raise ReportInputError(f"{f}: not a zeroops actions.csv: missing columns {', '.join(missing)}")
            for row in reader:
                if row["outcome"] != "executed" or "improvement" not in (row["evidence"] or ""):
                    continue
                try:
                    ev = json.loads(row["evidence"])
                except json.JSONDecodeError:
                    continue
                if isinstance(ev, dict) and "improvement" in ev:
                    out.append({"at": float(row["at"]), "kind": row["kind"], "service": row["target"],
                                "engine": row.get("engine", ""), "reason": row.get("reason", ""), "ev": ev})
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ReportInputError(f"{f}: not readable ({type(e).__name__}: {e})") from None
    return out


def _metrics(run: Path) -> dict[str, Any]:
    f = run / "result.json"
    if not f.is_file():
        return {}
    try:
        d = json.loads(f.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    m = d.get("metrics", d.get("score", {}).get("metrics", {})) if isinstance(d, dict) else {}
    return m if isinstance(m, dict) else {}


def summarise(decisions: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per week index: experiments (last word on each), rollouts promoted and rolled back, savings."""
    weeks: dict[int, dict[str, Any]] = defaultdict(lambda: {"experiments": {}, "promoted": [], "rolled_back": [],
                                                            "followed": set()})
    for d in decisions:
        ev, wk = d["ev"], int(d["at"] // WEEK)
        w = weeks[wk]
        what = ev["improvement"]
        key = (d["service"], ev.get("version", ""))
        if what == "experiment_start":
            w["experiments"].setdefault(key, {"version": key[1], "service": key[0], "started": d["at"],
                                               "decision": NO_DECISION})
        if "experiment" in ev:
            x = ev["experiment"]
            wx = weeks[int(x.get("started", d["at"]) // WEEK)]["experiments"]
            e = wx.setdefault(key, {"version": key[1], "service": key[0], "started": x.get("started", d["at"])})
            e.update({k: x.get(k) for k in ("decision", "effect", "ci", "confidence", "p", "n",
                                            "service_cost_per_hour")})
            e["decided_at"] = d["at"]
        if what in ("canary_promote", "canary_rollback", "experiment_end"):
            w["followed"].add(key)
        if what == "canary_promote" and float(ev.get("to", 0)) >= 1.0:
            w["promoted"].append({"service": key[0], "version": key[1], "at": d["at"]})
        if d["kind"] == "rollback_deploy" or what == "canary_rollback":
            bad = [c["metric"] for c in ev.get("comparisons", []) if c.get("regression")]
            if not bad and "error_ratio" in ev:
                bad = [f"error ratio {ev['error_ratio']:.3%} / p95 {ev.get('latency_p95_ms', 0):.0f} ms"]
            w["rolled_back"].append({"service": key[0], "version": key[1], "at": d["at"], "metrics": bad,
                                     "fraction": ev.get("fraction"), "after_s": ev.get("detected_after_s"),
                                     "why": what, "decision": ev.get("experiment", {}).get("decision")})
    return dict(sorted(weeks.items()))


def _pct(x: Any) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:+.1%}"


def _savings(e: dict[str, Any]) -> float | None:
    """Money per week a winner saves: −effect on CPU per request × the service's cost rate × 168 h."""
    eff, rate = e.get("effect"), e.get("service_cost_per_hour")
    if e.get("decision") != "winner" or eff is None or not rate:
        return None
    return -float(eff) * float(rate) * 168.0


def render(run: Path, decisions: list[dict[str, Any]], metrics: dict[str, Any]) -> str:
    lines = [f"## {run.parent.name} / {run.name}", ""]
    if metrics and metrics.get("releases_shipped") is not None:
        lines += ["Scored from the twin's ground truth (every release's real effect):", ""]
        lines += ["| figure | value |", "|---|---|"]
        for k in SCORED:
            v = metrics.get(k)
            lines.append(f"| {k} | {'–' if v is None else (f'{v:.3f}' if isinstance(v, float) else v)} |")
        lines.append("")
    if not decisions:
        lines += ["No canary or experiment decision was recorded in this run.", ""]
        return "\n".join(lines)
    for wk, w in summarise(decisions).items():
        exps = list(w["experiments"].values())
        decided = len(w["promoted"]) + sum(1 for r in w["rolled_back"] if r["why"] == "canary_rollback")
        rate = len(w["promoted"]) / decided if decided else None
        saved = [s for s in (_savings(e) for e in exps) if s is not None]
        lines += [f"### Week {wk + 1}", "",
                  f"- experiments run: {len(exps)}; winners: {sum(1 for e in exps if e.get('decision') == 'winner')}"
                  f"; losers: {sum(1 for e in exps if e.get('decision') == 'loser')}; no difference: "
                  f"{sum(1 for e in exps if e.get('decision') == 'no_difference')}",
                  f"- rollouts followed: {len(w['followed'])}; promoted to 100 %: {len(w['promoted'])}; "
                  f"regressions caught (rolled back): {sum(1 for r in w['rolled_back'] if r['why'] == 'canary_rollback')}",
                  f"- rollout success rate (promoted / promoted or rolled back): "
                  f"{'–' if rate is None else f'{rate:.0%}'}",
                  f"- estimated savings of the winners: {sum(saved):.2f} per week at the cost rates measured "
                  "(CPU per request saved × the service's cost per hour; an estimate, not billed)", ""]
        if exps:
            lines += ["| experiment | service | decision | CPU per request | interval | p (always valid) |",
                      "|---|---|---|---|---|---|"]
            for e in sorted(exps, key=lambda e: e["started"]):
                ci = e.get("ci") or [None, None]
                conf = e.get("confidence")
                ci_s = f"[{_pct(ci[0])}, {_pct(ci[1])}]" + (f" ({conf:.0%})" if conf else "")
                p = e.get("p")
                lines.append(f"| {e['version']} | {e['service']} | {e.get('decision', NO_DECISION)} | "
                             f"{_pct(e.get('effect'))} | {ci_s} | {'–' if p is None else f'{p:.3g}'} |")
            lines.append("")
        if w["rolled_back"]:
            lines += ["| rolled back | service | at | step | after (s) | why |", "|---|---|---|---|---|---|"]
            for r in w["rolled_back"]:
                why = ", ".join(r["metrics"]) or (r["decision"] or r["why"])
                frac = r["fraction"]
                after = r["after_s"]
                lines.append(f"| {r['version']} | {r['service']} | {r['at'] / 3600:.1f} h | "
                             f"{'–' if frac is None else f'{frac:.0%}'} | "
                             f"{'–' if after is None else f'{after:.0f}'} | {why} |")
            lines.append("")
    return "\n".join(lines)


def report(path: Path) -> str:
    """The Markdown report of every run under ``path``."""
    parts = ["# Continuous improvement report", ""]
    for run in find_runs(path):
        parts.append(render(run, read_decisions(run), _metrics(run)))
    return "\n".join(parts)
