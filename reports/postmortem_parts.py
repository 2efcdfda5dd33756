"""The pieces of a post-mortem: its model, formatting, and how decisions are tied to an incident.

A decision belongs to an incident when it is tagged with (``incident``) one of
the incident's declarations (or is the declaration, update, resolution or page
of one), or when it is untagged, touches one of the incident's components and
was taken while the incident was open.  ``reports.postmortem`` (simulated runs)
and ``reports.postmortem_live`` (the live audit trail) build on these.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

INCIDENT_KINDS = ("declare_incident", "update_incident", "resolve_incident")
RECORD_ONLY = (*INCIDENT_KINDS, "page", "notify")
STAGES = {"onset": 0, "detection": 1, "declaration": 2, "page": 3, "action": 3, "mitigation": 4, "resolution": 5}
# how a failed verification reads in a reason or note (the runbook executor's words among them)
_VERIFY_FAILED = re.compile(r"verif\w*\s+(?:has\s+)?fail|verification did not hold|no verified fix", re.IGNORECASE)


@dataclass(frozen=True)
class Event:
    """One line of a timeline; events sort by time, then by stage, then by decision number."""

    at: float
    stage: str
    text: str
    seq: int = 0

    def key(self) -> tuple[float, int, int]:
        return (self.at, STAGES[self.stage], self.seq)


@dataclass
class PostMortem:
    id: str
    kind: str  # "incident" (a ground-truth fault), "false" (a declaration that matched none) or "live"
    title: str
    run: str
    live: bool = False
    summary: list[str] = field(default_factory=list)
    timeline: list[Event] = field(default_factory=list)
    impact: list[str] = field(default_factory=list)
    root_cause: list[str] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    automation: list[str] = field(default_factory=list)
    human: list[str] = field(default_factory=list)
    follow_ups: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    actions: list[dict[str, Any]] = field(default_factory=list)

    def markdown(self) -> str:
        out = [f"# Post-mortem {self.id}: {self.title}", "", f"Run: `{self.run}`", "", "## Summary", "",
               *self.summary, "", "## Timeline", "", "| time | event |", "|---|---|"]
        out += [f"| {when(e.at)} | {cell(e.text)} |" for e in sorted(self.timeline, key=Event.key)]
        sections = (("Impact", self.impact), ("Root cause", self.root_cause), ("Decisions", self.decisions),
                    ("What automation did", self.automation), ("What a human did", self.human),
                    ("Follow-ups", self.follow_ups))
        for title, lines in sections:
            out += ["", f"## {title}", "", *(lines or ["- none recorded"])]
        return "\n".join(out) + "\n"


# ---------------------------------------------------------------- formatting
def when(t: float | None) -> str:
    """Simulated seconds as ``t=300 s (00:05:00)``; POSIX times (live) as UTC, as ``zeroops decisions`` does."""
    if t is None:
        return "-"
    if t > 1e8:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    h, rem = divmod(int(round(t)), 3600)
    return f"t={t:g} s ({h:02d}:{rem // 60:02d}:{rem % 60:02d})"


def secs(v: float | None) -> str:
    return "-" if v is None else f"{v:g} s"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def plain(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}={plain(x)}" for k, x in v.items()) or "-"
    if isinstance(v, list | tuple):
        return ", ".join(plain(x) for x in v) or "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def describe(a: dict[str, Any]) -> str:
    """One decision: number, engine, verb, target, the gate's verdict and the outcome."""
    err = f" ({a['error']})" if a.get("error") else ""
    rule = f" by rule {a['rule']}" if a.get("rule") else ""
    reason = f"; reason: {a['reason']}" if a.get("reason") else ""
    return (f"#{a['seq']} `{a['engine']}` {a['kind']} `{a['target']}`: gate {a['verdict']}{rule} → "
            f"{a['outcome']}{err}; confidence {plain(a.get('confidence'))}{reason}")


def explain(a: dict[str, Any]) -> str:
    """The decision's explanation: confidence, alternatives considered, evidence and expected impact."""
    ev = dict(a.get("evidence") or {})
    impact = ev.pop("expected_impact", None)
    return (f"- #{a['seq']} {a['kind']} `{a['target']}` ({a['engine']}, {a['outcome']}): confidence "
            f"{plain(a.get('confidence'))}; alternatives considered: {plain(a.get('alternatives') or [])}; "
            f"evidence: {plain(ev)}; expected impact: {plain(impact) if impact is not None else '-'}")


# ---------------------------------------------------------------- tying
def incident_key(a: dict[str, Any]) -> str | None:
    """The declared incident a decision names: its ``incident`` tag, or the incident it declares/updates/pages."""
    if a.get("incident"):
        return str(a["incident"])
    if a["kind"] in INCIDENT_KINDS:
        return str(a["target"])
    iid = (a.get("params") or {}).get("incident_id")
    return str(iid) if iid else None


def components_of(a: dict[str, Any]) -> set[str]:
    p = a.get("params") or {}
    comps = {str(a.get("target") or "")}
    comps |= {str(p[k]) for k in ("service", "server_id", "hypervisor", "zone") if p.get(k)}
    comps |= {str(c) for c in p.get("components") or ()}
    return comps - {""}


class ActionIndex:
    """A run's decisions indexed once: by the incident they name, and the untagged ones by time."""

    def __init__(self, actions: Iterable[dict[str, Any]]) -> None:
        self.by_key: dict[str, list[dict[str, Any]]] = {}
        untagged: list[tuple[float, int, dict[str, Any], set[str]]] = []
        for a in actions:
            key = incident_key(a)
            if key is None:
                untagged.append((a["at"], a["seq"], a, components_of(a)))
            else:
                self.by_key.setdefault(key, []).append(a)
        untagged.sort(key=lambda x: (x[0], x[1]))
        self.untagged = untagged
        self.times = [x[0] for x in untagged]

    def tie(self, ids: set[str], comps: set[str], start: float, end: float) -> list[dict[str, Any]]:
        """Decisions of one incident, by number: tagged with one of ``ids``, or untagged, on ``comps``, in
        [start, end]."""
        out = [a | {"tied_by": "incident"} for k in ids for a in self.by_key.get(k, ())]
        lo, hi = bisect.bisect_left(self.times, start), bisect.bisect_right(self.times, end)
        out += [a | {"tied_by": "component"} for _, _, a, c in self.untagged[lo:hi] if c & comps]
        return sorted(out, key=lambda a: a["seq"])


def tie(actions: Iterable[dict[str, Any]], ids: set[str], comps: set[str], start: float,
        end: float) -> list[dict[str, Any]]:
    """Decisions of one incident: tagged with one of ``ids``, or untagged, on ``comps``, within [start, end]."""
    return ActionIndex(actions).tie(ids, comps, start, end)


def final_candidates(tied: list[dict[str, Any]], decl_id: str) -> list[dict[str, Any]]:
    """The root-cause candidates a declaration ended with: the declaration's, replaced by executed updates."""
    cands: list[dict[str, Any]] = []
    for a in sorted(tied, key=lambda a: a["seq"]):
        if a["outcome"] != "executed" or a["target"] != decl_id or a["kind"] not in INCIDENT_KINDS[:2]:
            continue
        rc = (a.get("params") or {}).get("root_causes")
        if rc is not None and (a["kind"] == "declare_incident" or rc):
            cands = [c if isinstance(c, dict) else {"component": str(c)} for c in rc]
    return cands


def candidate_lines(cands: list[dict[str, Any]], truth: str | None) -> list[str]:
    if not cands:
        return ["- no root-cause candidates were declared"]
    lines = ["| rank | component | score | fault class | evidence |", "|---|---|---|---|---|"]
    for k, c in enumerate(cands, 1):
        mark = " ← true root" if truth and str(c.get("component")) == truth else ""
        lines.append(f"| {k} | `{c.get('component')}`{mark} | {plain(c.get('score', '-'))} | "
                     f"{c.get('fault_class') or '-'} | {cell(plain(c.get('evidence') or []))} |")
    return lines


def people(tied: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Lines for what automation did (executed engine decisions by engine) and for people: pages, approvals."""
    done = [a for a in tied if a["outcome"] == "executed"]
    by_engine = Counter(a["engine"] for a in done)
    auto = [f"- `{e}`: {n} executed decision(s): "
            + ", ".join(f"#{a['seq']} {a['kind']} `{a['target']}`" for a in done if a["engine"] == e)
            for e, n in by_engine.items()]
    human = [f"- Paged `{a['target']}` at {when(a['at'])} (#{a['seq']} by `{a['engine']}`)" for a in done
             if a["kind"] == "page"]
    for a in tied:
        if a["verdict"] == "approval":
            who = f" by {', '.join(a['approved_by'])}" if a.get("approved_by") else ""
            human.append(f"- approval{who} required by the safety gate (rule {a['rule']}) for #{a['seq']} "
                         f"{a['kind']} `{a['target']}`: {a['outcome']}")
    return auto, human


def problem_follow_ups(tied: list[dict[str, Any]]) -> list[str]:
    """Follow-ups every post-mortem shares: failed and denied decisions, failed verification, escalations."""
    out = []
    for a in tied:
        if a["outcome"] == "failed":
            out.append(f"- Decision #{a['seq']} {a['kind']} `{a['target']}` failed ({a.get('error') or 'error'}: "
                       f"{a.get('detail') or '-'}): make the step robust to this error.")
        elif a["outcome"] == "denied":
            out.append(f"- The safety gate denied #{a['seq']} {a['kind']} `{a['target']}` (rule {a['rule']}): "
                       f"check whether the runbook or the limit is wrong.")
        p = a.get("params") or {}
        text = " ".join(str(x) for x in (a.get("reason"), p.get("why"), p.get("note")) if x)
        failed = str((a.get("evidence") or {}).get("verification", "")).lower() == "failed" \
            or bool(_VERIFY_FAILED.search(text))
        page = a["kind"] == "page" and a["outcome"] == "executed"
        what = "Verification failed" + (", escalated to a human" if page else "") if failed else \
            "Escalated to a human" if page else ""
        if what:
            out.append(f"- {what} at {when(a['at'])} (#{a['seq']} {a['kind']} `{a['target']}`): "
                       f"{p.get('why') or a.get('reason') or 'no reason given'}.")
    return out
