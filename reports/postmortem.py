"""Post-mortems in Markdown, one per incident, built from a run's records only.

For a simulated run (``reports.incident_records.load_run``) every ground-truth
incident of ``result.json`` gets a post-mortem: summary, timeline (onset,
detection, declaration, every decision tied to the incident with its verdict
and outcome, mitigation, resolution), impact (failed requests, SLO minutes and
spend during the incident), root cause with evidence (declared candidates
against the ground-truth root component), what automation did and what a human
did, and follow-ups generated from what went wrong.  A declaration the scorer
matched to no fault (a *false incident*) gets a short one saying so.  A live
audit trail (no ground truth) gets post-mortems of its declared incidents, see
``reports.postmortem_live``.

Which decisions belong to an incident: ``reports.postmortem_parts``.  Every
figure is read or summed from the records; nothing is estimated beyond that.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from reports.incident_records import RunRecords, load_run
from reports.postmortem_live import live_postmortems
from reports.postmortem_parts import (
    RECORD_ONLY,
    ActionIndex,
    Event,
    PostMortem,
    candidate_lines,
    cell,
    describe,
    explain,
    final_candidates,
    people,
    plain,
    problem_follow_ups,
    secs,
    when,
)

__all__ = ["DEFAULT_TARGETS", "Event", "PostMortem", "build_postmortems", "people", "problem_follow_ups",
           "when", "write_postmortems"]

DEFAULT_TARGETS = {"mttd": 10.0, "mttr": 60.0}  # the design's TargetMTTD / TargetMTTR, when the run sets none


# ---------------------------------------------------------------- impact
def _affected(run: RunRecords, services: list[str]) -> list[str]:
    """The fault's services and every service that (transitively) calls one: where its errors show."""
    deps = run.result.get("dependencies") or {}
    out, todo = list(services), list(services)
    while todo:
        s = todo.pop()
        for caller, callees in deps.items():
            if s in callees and caller not in out:
                out.append(caller)
                todo.append(caller)
    return out


def failed_requests(ts: Any, service: str, start: float, end: float) -> float | None:
    """Σ over the minutes of timeseries.csv overlapping [start, end]: overlap × request_rate × error_ratio."""
    rate, err = f"request_rate:{service}", f"error_ratio:{service}"
    if ts is None or rate not in ts.columns or err not in ts.columns:
        return None
    t = ts.index.to_numpy(dtype=float)
    overlap = np.clip(np.minimum(t + 60.0, end) - np.maximum(t, start), 0.0, None)
    v = np.nan_to_num(ts[rate].to_numpy(dtype=float)) * np.nan_to_num(ts[err].to_numpy(dtype=float))
    return float(np.sum(overlap * v))


def spend_between(ts: Any, start: float, end: float) -> float | None:
    """Spend during [start, end]: the cumulative ``spend_total`` of timeseries.csv, linearly interpolated."""
    if ts is None or "spend_total" not in ts.columns:
        return None
    s = ts["spend_total"].dropna()
    if s.empty:
        return None
    t, v = s.index.to_numpy(dtype=float), s.to_numpy(dtype=float)
    return float(np.interp(end, t, v) - np.interp(start, t, v))


def slo_minutes(breaches: list[dict[str, Any]], service: str, start: float, end: float) -> float:
    return sum(max(0.0, min(b["end"], end) - max(b["start"], start)) for b in breaches
               if b["service"] == service) / 60.0


def _target(run: RunRecords, what: str) -> float:
    for m in (f"{what}_p95_s", f"{what}_s", f"{what}_p50_s"):
        t = (run.result.get("targets") or {}).get(m)
        found = re.search(r"<=?\s*([0-9.]+)", str((t or {}).get("target", "")))
        if found:
            return float(found.group(1))
    return DEFAULT_TARGETS[what]


# ---------------------------------------------------------------- builders
def build_postmortems(run: RunRecords) -> list[PostMortem]:
    """A post-mortem for every ground-truth incident and every false declaration of a run (or a live trail)."""
    if run.live:
        return live_postmortems(run)
    decls = run.result.get("declarations") or []
    index = ActionIndex(run.actions)
    pms = [incident_postmortem(run, inc, [d for d in decls if d.get("fault") == inc["id"]], index)
           for inc in run.result.get("incidents") or []]
    pms += [false_postmortem(run, d, index) for d in decls if d.get("verdict") == "false"]
    return pms


def incident_postmortem(run: RunRecords, inc: dict[str, Any], decls: list[dict[str, Any]],
                        index: ActionIndex | None = None) -> PostMortem:
    index = index or ActionIndex(run.actions)
    start, end = float(inc["start"]), inc.get("end")
    open_end = float(end) if end is not None else run.run_end
    comps = {str(c) for k in ("services", "servers", "hypervisors", "zones") for c in inc.get(k) or ()}
    comps |= {inc.get("root_component") or ""} - {""}
    ids = {d["id"] for d in decls} | ({inc["declared_id"]} if inc.get("declared_id") else set())
    tied = index.tie(ids, comps, start, open_end)
    root = inc.get("root_component") or ""
    pm = PostMortem(inc["id"], "incident", f"{inc['type']} on {root or ', '.join(inc.get('services') or [])}",
                    run.name, actions=tied)
    f = pm.figures
    f.update({k: inc.get(k) for k in ("start", "end", "detected_at", "detected_by", "declared_id", "declared_at",
                                      "declared_by", "declared_severity", "true_severity", "user_impact",
                                      "root_component", "root_cause_rank", "mitigated_at", "resolved_by",
                                      "paged_at", "ttd_s", "ttr_s", "ttm_s")})
    f["decisions"] = [a["seq"] for a in tied]

    # ---- timeline
    tl = pm.timeline
    tl.append(Event(start, "onset", f"Onset: `{inc['type']}` on `{root}` (ground truth; services "
                                    f"{', '.join(inc.get('services') or []) or '-'})"))
    if inc.get("detected_at") is not None:
        who = ("the on-call human started work" if inc.get("detected_by") == "human"
               else f"declaration `{inc.get('declared_id')}` by `{inc.get('detected_by')}`")
        tl.append(Event(float(inc["detected_at"]), "detection", f"Detected: {who} (TTD {secs(inc.get('ttd_s'))})"))
    scored = {d["id"]: d.get("verdict") for d in decls}  # the scorer's verdict on each declaration
    for a in tied:
        how = "" if a["tied_by"] == "incident" else " (untagged; tied by component and time)"
        if a["kind"] == "declare_incident" and a["target"] in scored and a["outcome"] == "executed":
            tl.append(Event(a["at"], "declaration", describe(a) + f"; scored {scored.pop(a['target'])}", a["seq"]))
        else:
            tl.append(Event(a["at"], "action", describe(a) + how, a["seq"]))
    for d in decls:
        if d["id"] in scored:  # a declaration without its row in actions.csv (should not happen)
            tl.append(Event(float(d["at"]), "declaration", f"Declared `{d['id']}` by `{d['engine']}`, severity "
                                                           f"{d.get('severity')}, scored {d.get('verdict')}"))
    if inc.get("paged_at") is not None:
        tl.append(Event(float(inc["paged_at"]), "page", "First page about this incident"))
    if inc.get("mitigated_at") is not None:
        tl.append(Event(float(inc["mitigated_at"]), "mitigation",
                        f"Mitigated: SLO no longer breached (TTM {secs(inc.get('ttm_s'))})"))
    tl.append(Event(open_end, "resolution",
                    f"Resolved by {inc.get('resolved_by') or '-'} (TTR {secs(inc.get('ttr_s'))})" if end is not None
                    else "Still open at the end of the run"))

    # ---- impact
    affected = _affected(run, list(inc.get("services") or []))
    breaches = run.result.get("slo_breaches") or []
    per = {s: failed_requests(run.timeseries, s, start, open_end) for s in affected}
    slo = {s: slo_minutes(breaches, s, start, open_end) for s in affected}
    f["failed_requests"], f["slo_minutes"] = per, slo
    deps = run.result.get("dependencies")
    edge = [s for s in affected if deps and not any(s in callees for callees in deps.values())]
    f["user_facing"] = edge
    f["failed_user_requests"] = (None if not edge or any(per[s] is None for s in edge)
                                 else sum(per[s] or 0.0 for s in edge))
    f["slo_minutes_user"] = sum(slo[s] for s in edge) if edge else None
    f["cost"] = spend_between(run.timeseries, start, open_end)
    pm.impact = [f"- Duration: {when(start)} → {when(open_end)}" + ("" if end is not None else " (still open)"),
                 f"- User impact: {100 * float(inc.get('user_impact') or 0):.3f} % of user-facing requests failed "
                 f"while it was open (result.json `user_impact`)",
                 f"- Failed user-facing requests (at {', '.join(f'`{s}`' for s in edge) or 'unknown edge services'}"
                 f"): {_num(f['failed_user_requests'])}; SLO-breach minutes there: "
                 + ("-" if f["slo_minutes_user"] is None else f"{f['slo_minutes_user']:.2f}"),
                 "- Spend during the incident: " + ("unknown (no `spend_total` in timeseries.csv)" if f["cost"] is None
                                                    else f"{f['cost']:.4f} (cumulative `spend_total` of "
                                                         f"timeseries.csv, interpolated)"),
                 "", "| service | failed requests | SLO-breach minutes |", "|---|---|---|"]
    pm.impact += [f"| `{s}`{'' if s in (inc.get('services') or []) else ' (caller)'} | {_num(per[s])} | "
                  f"{slo[s]:.2f} |" for s in affected]
    pm.impact += ["", "Failed requests: request_rate × error_ratio × seconds, per minute of timeseries.csv "
                  "overlapping the incident (a caller's failures include those its dependency caused, so rows do "
                  "not add up); SLO minutes: the ground-truth breaches (`slo_breaches`) inside it. User-facing: "
                  "services no other service calls (result.json `dependencies`)."]

    # ---- root cause
    decl = inc.get("declared_id")
    cands = final_candidates(tied, decl) if decl else []
    rank = inc.get("root_cause_rank")
    pm.root_cause = [f"- Ground truth: `{inc.get('root_cause')}` rooted in `{root}` "
                     f"(source: {inc.get('root_component_source', 'truth')})"]
    if not decl:
        pm.root_cause.append("- No declaration matched this incident: no root cause was proposed by automation.")
    else:
        pm.root_cause.append(f"- Declaration `{decl}`: the true root ranked "
                             + (f"{rank} of {len(cands)}" if rank else "nowhere among the candidates"))
        pm.root_cause += ["", *candidate_lines(cands, root)]
        dev = next((a.get("evidence") for a in tied if a["kind"] == "declare_incident" and a["target"] == decl), None)
        if dev:
            pm.root_cause.append(f"\nEvidence given with the declaration: {plain(dev)}")
    pm.decisions = [explain(a) for a in tied]

    # ---- people
    pm.automation, pm.human = people(tied)
    rb = inc.get("resolved_by")
    if rb == "automation":
        pm.automation.append("- Automation resolved it: the action after which the fault's resolution predicate "
                             "held was an engine's, with no human approval.")
    if inc.get("paged_at") is not None:
        pm.human.append(f"- The on-call human was paged at {when(inc['paged_at'])} (first page about it).")
    if inc.get("detected_by") == "human":
        pm.human.append(f"- The on-call human started work at {when(inc.get('detected_at'))} (they detected it).")
    pm.human += {"human": [f"- The on-call human fixed it (resolution at {when(end)}); their own actions go "
                           "through the twin's control API, not the choke point, so they are not in actions.csv."],
                 "automation-approved": ["- A human approved the engine action that resolved it."],
                 "self": ["- Nobody: it cleared by itself."]}.get(rb or "", [])
    pm.follow_ups = incident_follow_ups(run, inc, cands, tied)
    pm.summary = [f"`{inc['type']}` (true severity {inc.get('true_severity')}, declared "
                  f"{inc.get('declared_severity') or 'never'}) began {when(start)} on `{root}`. Detected "
                  + (f"by {inc.get('detected_by')} after {secs(inc.get('ttd_s'))}" if inc.get("detected_at")
                     is not None else "by nobody")
                  + (f", resolved by {rb} after {secs(inc.get('ttr_s'))}." if end is not None
                     else ", still open at the end of the run.")
                  + (" Injected by a chaos experiment." if inc.get("chaos") else "")]
    return pm


def incident_follow_ups(run: RunRecords, inc: dict[str, Any], cands: list[dict[str, Any]],
                        tied: list[dict[str, Any]]) -> list[str]:
    out = []
    mttd, mttr = _target(run, "mttd"), _target(run, "mttr")
    if not inc.get("declared_id") and not inc.get("chaos"):
        found = " The on-call human found it." if inc.get("detected_by") == "human" else ""
        out.append(f"- Missed detection: no engine declared this incident.{found} Add a detector or rule for "
                   f"`{inc['type']}` symptoms.")
    if inc.get("ttd_s") is not None and inc["ttd_s"] > mttd:
        out.append(f"- Slow detection: {secs(inc['ttd_s'])} against the {mttd:g} s target.")
    if inc.get("end") is None:
        out.append("- Unresolved at the end of the run: nothing fixed it.")
    elif inc.get("ttr_s") is not None and inc["ttr_s"] > mttr:
        out.append(f"- Slow MTTR: {secs(inc['ttr_s'])} against the {mttr:g} s target.")
    if inc.get("resolved_by") == "human":
        out.append(f"- A human fixed it: add or repair the runbook for `{inc['type']}`.")
    elif inc.get("resolved_by") == "automation-approved":
        out.append("- The fix waited for a human approval: review whether the approval rule must cover it.")
    if inc.get("declared_id") and inc.get("root_cause_rank") != 1:
        out.append(f"- Root-cause analysis ranked the true root `{inc.get('root_component')}` "
                   + (f"{inc['root_cause_rank']}" if inc.get("root_cause_rank") else "nowhere") + ", not first.")
    if inc.get("declared_severity") and inc["declared_severity"] != inc.get("true_severity"):
        out.append(f"- Severity declared {inc['declared_severity']}, true {inc.get('true_severity')}: review the "
                   f"classifier.")
    if inc.get("missed_deadline"):
        out.append("- A P0/P1 got neither a useful page nor an automatic fix within its deadline.")
    return out + problem_follow_ups(tied)


def false_postmortem(run: RunRecords, d: dict[str, Any], index: ActionIndex | None = None) -> PostMortem:
    index = index or ActionIndex(run.actions)
    tied = index.tie({d["id"]}, set(), 0.0, -1.0)
    pm = PostMortem(d["id"], "false", "false incident (matched no fault)", run.name, actions=tied)
    comps = ", ".join(f"`{c}`" for c in d.get("components") or []) or "-"
    pm.summary = [f"Declared by `{d['engine']}` at {when(d['at'])} with severity {d.get('severity')} on {comps}. "
                  f"The scorer matched it to no ground-truth fault: none of these components (or a service they "
                  f"call) had a fault open between its onset and its end + 60 s. It counts against detection "
                  f"precision and false incidents per day."]
    pm.figures = {"at": d["at"], "engine": d["engine"], "severity": d.get("severity"), "verdict": "false",
                  "decisions": [a["seq"] for a in tied]}
    pm.timeline = [Event(a["at"], "declaration" if a["kind"] == "declare_incident" else "action", describe(a),
                         a["seq"]) for a in tied]
    pm.impact = ["- No ground-truth fault: no incident impact to report."]
    pm.root_cause = ["- Ground truth: no fault.", "", *candidate_lines(final_candidates(tied, d["id"]), None)]
    pm.decisions = [explain(a) for a in tied]
    pm.automation, pm.human = people(tied)
    acted = [a for a in tied if a["outcome"] == "executed" and a["kind"] not in RECORD_ONLY]
    pm.follow_ups = [f"- False incident: review the evidence `{d['engine']}` declared it on (see Decisions)."]
    if acted:
        pm.follow_ups.append(f"- {len(acted)} world-changing decision(s) were executed for an incident that did not "
                             f"exist: " + ", ".join(f"#{a['seq']} {a['kind']}" for a in acted))
    pm.follow_ups += problem_follow_ups(tied)
    return pm


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


# ---------------------------------------------------------------- writing
def safe_name(pid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", pid) or "_"


def index_markdown(run: RunRecords, pms: list[PostMortem], files: dict[str, str]) -> str:
    lines = [f"# Post-mortems of `{run.name}`", "", "| incident | kind | title | true / declared severity | "
             "onset | TTD | TTR | resolved by |", "|---|---|---|---|---|---|---|---|"]
    for pm in pms:
        f = pm.figures
        sev = f"{f.get('true_severity') or '-'} / {f.get('declared_severity') or f.get('severity') or '-'}"
        lines.append(f"| [{pm.id}]({files[pm.id]}) | {pm.kind} | {cell(pm.title)} | {sev} | "
                     f"{when(f.get('start', f.get('at')))} | {secs(f.get('ttd_s'))} | "
                     f"{secs(f.get('ttr_s'))} | {f.get('resolved_by') or '-'} |")
    if not pms:
        lines.append("| - | no incidents in this run | | | | | | |")
    return "\n".join(lines) + "\n"


def write_postmortems(run_dir: Path, run: RunRecords | None = None) -> list[Path]:
    """Write ``<run_dir>/postmortems/<incident>.md`` for every post-mortem, and ``index.md``; the paths."""
    run = run or load_run(run_dir)
    pms = build_postmortems(run)
    d = run_dir / "postmortems"
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("*.md"):
        old.unlink()
    files: dict[str, str] = {}
    paths = []
    for pm in pms:
        name = safe_name(pm.id)
        while f"{name}.md" in files.values() or name == "index":
            name += "_"
        files[pm.id] = f"{name}.md"
        paths.append(d / files[pm.id])
        paths[-1].write_text(pm.markdown())
    (d / "index.md").write_text(index_markdown(run, pms, files))
    return [*paths, d / "index.md"]
