"""The resilience score of a run's chaos experiments, from ground truth and the audit log (docs/chaos.md).

An *experiment* is an executed ``InjectFault``; its ground-truth fault is the chaos ``FaultRecord`` with the
same experiment name and onset.  Per experiment, four parts in [0, 1]:

* **recovery** — ``1 - recovery_s / RECOVERY_REF_S`` (floored at 0): ``recovery_s`` is onset → the SLO of
  every covered service holding again (the fault's ``mitigated_at``); 0 when no SLO broke; to the end of the
  run when one never recovered.
* **detection** — ``1 - ttd / DETECTION_REF_S`` (floored at 0), ``ttd`` = onset → the first of: a matched
  ``DeclareIncident``, the paged human starting work, an executed action of an engine other than the chaos
  engine on a component of the fault; 0 if none came before the fault ended.
* **blast-radius control** — 1 when the fault stayed inside the radius its target declares (the record's
  servers, hosts and zones inside the target) and no service outside the experiment's reach (its services and
  their callers) breached its SLO during it, unless a non-chaos fault was active on that service; else 0.
* **auto-remediation** — 1 when an engine other than the chaos engine resolved the fault (the resolving
  action in the audit log); 0 if it lasted until the experiment's own rollback, its duration, or a human.

``chaos_aborted`` counts the aborts the chaos engine recorded (a ``Notify`` with ``chaos_abort`` in its evidence,
through the choke point); ``chaos_abort_delay_max_s`` is the longest time from the violating scrape sample it
names to that record (one scrape at most is the target).

``resilience_score`` = 100 x coverage x the mean of the four part means, where coverage is the share of the
injectable experiment types (:data:`REFERENCE_FAULTS`) exercised at least once: an engine that injects
nothing, or only the easiest fault, cannot score high.  ``resilience_weaknesses`` lists each experiment
that scored below 0.5 on a part, with the fault that exposed it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from engines.chaos.catalog import DAILY, GAME_DAY

if TYPE_CHECKING:
    from control.runtime import ActionRecord
    from twin.groundtruth import FaultRecord
    from twin.world import World

RECOVERY_REF_S = 1800.0  # an SLO broken for 30 minutes scores 0 on recovery
DETECTION_REF_S = 900.0  # a fault noticed after 15 minutes scores 0 on detection
REFERENCE_FAULTS: tuple[str, ...] = tuple(dict.fromkeys(k.fault for k in DAILY + GAME_DAY if k.fault))
PARTS = ("recovery", "detection", "blast_radius", "auto_remediation")
CHAOS_METRICS = ("chaos_experiments", "chaos_denied", "chaos_aborted", "chaos_abort_delay_max_s", "chaos_faults_left",
                 "chaos_beyond_radius",
                 "resilience_score", "resilience_coverage", *(f"resilience_{p}" for p in PARTS),
                 "resilience_weaknesses")
CHAOS_TEXT_METRICS = frozenset({"resilience_weaknesses"})


def chaos_metrics(world: World, records: list[ActionRecord], incidents: Iterable[Any]) -> dict[str, Any]:
    """The figures above; ``incidents`` are the scorer's incidents (detection, mitigation per fault id)."""
    injects = [r for r in records if r.kind == "inject_fault"]
    done = [r for r in injects if r.outcome == "executed"]
    chaos = [f for f in world.truth.faults if f.chaos]
    by_id = {i.id: i for i in incidents}
    run_end = float(world.now())
    aborts = [r for r in records if r.kind == "notify" and "chaos_abort" in (r.action.evidence or {})]
    delays = [r.at - float(r.action.evidence["violation_sample_at"]) for r in aborts
              if r.action.evidence.get("violation_sample_at") is not None]
    out: dict[str, Any] = {
        "chaos_experiments": len(done),
        "chaos_denied": sum(1 for r in injects if r.outcome == "denied"),
        "chaos_aborted": len(aborts),
        "chaos_abort_delay_max_s": max(delays) if delays else None,
        "chaos_faults_left": sum(1 for f in chaos if f.end is None),
    }
    rows = []
    for r in done:
        f = next((f for f in chaos if f.experiment == r.action.experiment and abs(f.start - r.at) < 1e-6), None)
        if f is not None:
            rows.append(_parts(world, records, r, f, by_id.get(f.id), run_end))
    out["chaos_beyond_radius"] = sum(1 for row in rows if not row["contained"])
    kinds = {row["fault"] for row in rows}
    coverage = len(kinds & set(REFERENCE_FAULTS)) / len(REFERENCE_FAULTS)
    out["resilience_coverage"] = coverage
    means = {p: (sum(row[p] for row in rows) / len(rows) if rows else None) for p in PARTS}
    out.update({f"resilience_{p}": v for p, v in means.items()})
    out["resilience_score"] = 100.0 * coverage * sum(means.values()) / len(PARTS) if rows else 0.0  # type: ignore[arg-type]
    out["resilience_weaknesses"] = "; ".join(
        f"{row['experiment']} ({row['fault']} on {row['target']}): {', '.join(row['weak'])}"
        for row in rows if row["weak"])
    return out


def _parts(world: World, records: list[ActionRecord], r: ActionRecord, f: FaultRecord, inc: Any,
           run_end: float) -> dict[str, Any]:
    chaos_engine = r.engine
    end = f.end if f.end is not None else run_end
    # recovery: onset -> the covered services' SLO holding again
    breached = inc is not None and inc.mitigated_at is not None
    if breached:
        rec_s = inc.mitigated_at - f.start
    else:
        rec_s = 0.0 if f.end is not None or f.mitigated_at is not None else run_end - f.start
    recovery = max(0.0, 1.0 - rec_s / RECOVERY_REF_S)
    # detection: a matched declaration, the human, or another engine acting on the fault's components
    comps = f.components()
    acted = [x.at for x in records if x.outcome == "executed" and x.engine != chaos_engine
             and f.start <= x.at <= end and (x.target in comps or _service_of(world, x.target) in comps)]
    seen = [t for t in ([inc.detected_at] if inc is not None and inc.detected_at is not None else []) + acted
            if t <= end]
    ttd = min(seen) - f.start if seen else None
    detection = 0.0 if ttd is None else max(0.0, 1.0 - ttd / DETECTION_REF_S)
    # blast radius: the fault inside the declared target, and no SLO breach outside the experiment's reach
    target = r.action.target()
    contained = _inside(world, f, target)
    reach = set(f.services) | _callers(world, f.services)
    others = [g for g in world.truth.faults if not g.chaos and g.start <= end and (g.end or run_end) >= f.start]
    excused = {s for g in others for s in set(g.services) | _callers(world, g.services)}
    spread = sorted({s for s, a, b in world.truth.breaches if a <= end and b >= f.start
                     and s not in reach and s not in excused})
    blast = 1.0 if contained and not spread else 0.0
    # auto-remediation: resolved by an engine other than the chaos engine
    auto = 1.0 if _resolved_by_engine(records, f, chaos_engine) else 0.0
    weak = []
    if recovery < 0.5:
        weak.append(f"SLO broken for {rec_s:.0f} s")
    if detection < 0.5:
        weak.append("not detected" if ttd is None else f"detected after {ttd:.0f} s")
    if not contained:
        weak.append("the fault reached beyond its declared radius")
    if spread:
        weak.append(f"SLO breached outside its reach ({', '.join(spread[:3])})")
    if not auto:
        weak.append("not remediated by automation")
    return {"experiment": r.action.experiment, "fault": f.type, "target": target, "contained": contained,
            "recovery": recovery, "detection": detection, "blast_radius": blast, "auto_remediation": auto,
            "weak": weak}


def _inside(world: World, f: FaultRecord, target: str) -> bool:
    """The ground-truth fault stayed inside the component the experiment named (its record's servers, hosts and
    zones as they were at the onset: engines may move servers away afterwards)."""
    if target.startswith("srv-"):
        return set(f.servers) <= {target} and not f.hypervisors and not f.zones
    if target in world.svc_index:
        return set(f.services) <= {target} and not f.hypervisors and not f.zones
    if target in world.hv_index:
        return set(f.hypervisors) <= {target} and not f.zones
    if target in world.zone_names:
        return set(f.zones) <= {target} and not f.hypervisors
    return False


def _service_of(world: World, target: str) -> str | None:
    if target.startswith("srv-") and target[4:].isdigit() and int(target[4:]) < world.n:
        s = int(world.svc[int(target[4:])])
        return world.svc_names[s] if s >= 0 else None
    return None


def _callers(world: World, services: Iterable[str]) -> set[str]:
    callers: dict[str, set[str]] = {}
    for a, b in zip(world.e_src.tolist(), world.e_dst.tolist(), strict=True):
        callers.setdefault(world.svc_names[b], set()).add(world.svc_names[a])
    out: set[str] = set()
    todo = list(services)
    while todo:
        for c in callers.get(todo.pop(), ()):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def _resolved_by_engine(records: list[ActionRecord], f: FaultRecord, chaos_engine: str) -> bool:
    ra = f.resolving_action
    if f.end is None or not ra or f.resolved_by in (None, "human", "self"):
        return False
    cands = [x for x in records if x.outcome == "executed" and x.kind == ra.get("kind")
             and x.target == ra.get("target") and x.at <= f.end]
    last = max(cands, key=lambda x: (x.at, x.seq)) if cands else None
    return last is not None and last.engine != chaos_engine and "chaos_rollback" not in (last.action.evidence or {})
