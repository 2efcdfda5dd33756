"""Post-mortems of incidents declared live: from the audit trail and the adapter's incident board only.

A live cloud has no ground truth: the fault's onset, its true root, the
requests that failed, the SLO minutes and the spend during the incident are
not in these records, and each post-mortem says so instead of guessing.  What
is known: the declaration and its updates (severity, candidates, status), every
decision tagged with the incident (or untagged, on its components, while it
was open), the gate's verdicts, approvals, pages and the resolution.
"""

from __future__ import annotations

from typing import Any

from reports.incident_records import RunRecords
from reports.postmortem_parts import (
    ActionIndex,
    Event,
    PostMortem,
    candidate_lines,
    describe,
    explain,
    final_candidates,
    people,
    plain,
    problem_follow_ups,
    secs,
    when,
)

UNKNOWN = "unknown (live: no ground truth)"


def live_postmortems(run: RunRecords) -> list[PostMortem]:
    """One post-mortem per executed ``DeclareIncident`` in the trail (first one per incident id)."""
    seen: set[str] = set()
    index = ActionIndex(run.actions)
    out = []
    for a in run.actions:
        if a["kind"] == "declare_incident" and a["outcome"] == "executed" and a["target"] not in seen:
            seen.add(a["target"])
            out.append(live_postmortem(run, a, index))
    for iid, b in run.board.items():  # on the board, but its declaration is not in this audit trail
        if iid not in seen:
            decl = {"seq": 0, "at": float(b.get("declared_at") or 0.0), "engine": b.get("declared_by", ""),
                    "kind": "declare_incident", "target": iid, "evidence": {}, "outcome": "executed",
                    "params": {"components": b.get("components") or [], "severity": b.get("severity"),
                               "title": b.get("title") or ""}}
            pm = live_postmortem(run, decl, index)
            pm.summary.append("Its declaration is not in this audit trail (only on the incident board).")
            out.append(pm)
    return out


def live_postmortem(run: RunRecords, decl: dict[str, Any], index: ActionIndex | None = None) -> PostMortem:
    index = index or ActionIndex(run.actions)
    iid, at = decl["target"], decl["at"]
    board = run.board.get(iid, {})
    mine = [a for a in index.by_key.get(iid, ()) if a["target"] == iid and a["outcome"] == "executed"]
    resolved = next((a["at"] for a in mine if a["kind"] == "resolve_incident"), None)
    if resolved is None and board.get("resolved_at") is not None:
        resolved = float(board["resolved_at"])
    mitigated = next((a["at"] for a in mine if a["kind"] == "update_incident"
                      and (a.get("params") or {}).get("status") == "mitigated"), None)
    comps = {str(c) for c in (decl.get("params") or {}).get("components") or ()}
    end = resolved if resolved is not None else run.run_end
    tied = index.tie({iid}, comps, at, end)
    severity = decl["params"].get("severity")
    for a in mine:
        if a["kind"] == "update_incident" and (a.get("params") or {}).get("severity"):
            severity = a["params"]["severity"]
    severity = board.get("severity") or severity
    title = decl["params"].get("title") or f"incident on {', '.join(sorted(comps)) or '-'}"
    pm = PostMortem(iid, "live", title, run.name, live=True, actions=tied)
    pm.figures = {"start": None, "at": at, "declared_at": at, "declared_by": decl["engine"],
                  "declared_severity": severity, "mitigated_at": mitigated, "resolved_at": resolved,
                  "status": board.get("status") or ("resolved" if resolved is not None else "open"),
                  "ttr_s": None if resolved is None else resolved - at, "decisions": [a["seq"] for a in tied]}
    pm.summary = [f"Declared by `{decl['engine']}` at {when(at)} with severity {severity} on "
                  + (", ".join(f"`{c}`" for c in sorted(comps)) or "-")
                  + (f"; resolved {secs(resolved - at)} after the declaration." if resolved is not None
                     else f"; status {pm.figures['status']}, not resolved in these records.")
                  + f" Onset, detection delay and true root cause: {UNKNOWN}."]
    pm.timeline = []
    for a in tied:
        stage = "declaration" if a["kind"] == "declare_incident" else "page" if a["kind"] == "page" else "action"
        pm.timeline.append(Event(a["at"], stage, describe(a), a["seq"]))
    if mitigated is not None:
        pm.timeline.append(Event(mitigated, "mitigation", "Marked mitigated by the engine (update_incident)"))
    if resolved is not None:
        pm.timeline.append(Event(resolved, "resolution", "Resolved (resolve_incident / incident board)"))
    pm.impact = [f"- Onset, failed requests, SLO minutes and spend during the incident: {UNKNOWN}; the audit "
                 "trail and the incident board record decisions, not the cloud's traffic."]
    pm.root_cause = [f"- True root cause: {UNKNOWN}.", "", *candidate_lines(final_candidates(tied, iid), None)]
    if decl.get("evidence"):
        pm.root_cause.append(f"\nEvidence given with the declaration: {plain(decl['evidence'])}")
    pm.decisions = [explain(a) for a in tied]
    pm.automation, pm.human = people(tied)
    if board.get("pages"):
        pm.human.append(f"- The incident board counts {board['pages']} page(s) about it.")
    pm.follow_ups = problem_follow_ups(tied)
    if resolved is None:
        pm.follow_ups.append("- Not resolved in these records: check the incident is still real, and close it.")
    return pm
