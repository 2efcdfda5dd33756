"""Alertmanager's notifications and the engine set's pages, mapped to a run's ground-truth incidents.

:func:`compare_run` replays one run folder's raw alerts into a real Alertmanager
(:mod:`zeroops.alerting_replay`) and counts, for both sides on the same records, the notifications sent
and the incidents no notification reached (docs/alerting.md, "Alertmanager peer").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from zeroops.alerting_replay import HOLD_S, PeerInputError, Replay, Timeline, episodes, load_alerts, replay

GRACE_S = 60.0  # a notification up to this long after an incident's end is still about it (scoring's grace)
LABEL_KEYS = ("service", "server", "hypervisor", "zone")


# ------------------------------------------------------------------ incidents and what was sent about them
@dataclass
class Sent:
    """One notification: when (simulated s), by whom, and the components it is about."""

    at: float
    about: set[str]
    source: str = ""


def callers(deps: Mapping[str, list[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {s: set() for s in deps}
    for s, ds in deps.items():
        for d in ds:
            out.setdefault(d, set()).add(s)
    return out


def incident_components(inc: Mapping[str, Any], deps: Mapping[str, list[str]]) -> set[str]:
    """What an incident is about, as scoring reads it: its components and every (transitive) caller."""
    comps = {str(c) for key in ("services", "servers", "hypervisors", "zones") for c in (inc.get(key) or [])}
    up = callers(deps)
    todo = list(inc.get("services") or [])
    while todo:
        for c in up.get(todo.pop(), ()):
            if c not in comps:
                comps.add(c)
                todo.append(c)
    return comps


def alert_about(labels: Mapping[str, str]) -> set[str]:
    return {str(v) for k, v in labels.items() if k in LABEL_KEYS and v}


@dataclass
class Coverage:
    notified: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)  # not notified and not resolved by automation
    auto_resolved_silently: list[str] = field(default_factory=list)


def coverage(incidents: list[Mapping[str, Any]], sent: list[Sent], deps: Mapping[str, list[str]],
             run_end: float) -> Coverage:
    """Which incidents a notification was about while they lasted (onset to end + :data:`GRACE_S`)."""
    cov = Coverage()
    for inc in incidents:
        comps = incident_components(inc, deps)
        start = float(inc["start"])
        end = float(inc["end"]) if inc.get("end") is not None else run_end
        if any(start <= s.at <= end + GRACE_S and s.about & comps for s in sent):
            cov.notified.append(str(inc["id"]))
        elif inc.get("resolved_by") == "automation":
            cov.auto_resolved_silently.append(str(inc["id"]))
        else:
            cov.missed.append(str(inc["id"]))
    return cov


def am_sent(rep: Replay) -> list[Sent]:
    """Alertmanager's notifications that carried firing alerts (a resolved-only one tells nobody to act)."""
    out = []
    for t, p in rep.notifications:
        about: set[str] = set()
        for a in p.get("alerts", []):
            if a.get("status") == "firing":
                about |= alert_about(a.get("labels", {}))
        if about:
            out.append(Sent(t, about, "alertmanager"))
    return out


def pipeline_sent(run_dir: Path, result: Mapping[str, Any], alerts: pd.DataFrame) -> list[Sent]:
    """What the run's engine set sent: executed ``page`` and ``notify`` (dashboard) actions (a page also names its
    declared incident's components), and the raw alerts that paged the twin's on-call (the baselines' route)."""
    out: list[Sent] = []
    decl = {str(d.get("id")): set(d.get("components") or []) for d in result.get("declarations") or []}
    path = run_dir / "actions.csv"
    acts = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["at", "kind", "target", "params",
                                                                           "outcome"])
    for row in acts.itertuples(index=False):
        if row.outcome != "executed" or row.kind not in ("page", "notify"):
            continue
        about = {str(row.target)} if isinstance(row.target, str) else set()
        if row.kind == "page":
            params = json.loads(row.params) if isinstance(row.params, str) and row.params else {}
            about |= {str(c) for c in params.get("components") or []}
            about |= decl.get(str(params.get("incident_id")), set())
        out.append(Sent(float(row.at), about, str(row.kind)))
    if "paged" in alerts.columns:
        for row in alerts[alerts["paged"].astype(bool)].itertuples(index=False):
            out.append(Sent(float(row.at), alert_about(json.loads(row.labels)), "alert-page"))
    return sorted(out, key=lambda s: s.at)


# ------------------------------------------------------------------ one run, one results folder
def choose_k(replay_length: float, budget_s: float, k_min: float, k_max: float) -> float:
    """The smallest factor in [k_min, k_max] that replays ``replay_length`` simulated seconds in ``budget_s``."""
    return float(min(k_max, max(k_min, np.ceil(replay_length / budget_s))))


def compare_run(run_dir: Path, budget_s: float = 60.0, k_min: float = 20.0, k_max: float = 200.0,
                k: float | None = None, binary: str | None = None) -> dict[str, Any]:
    """Alertmanager and the run's own pipeline on one run's records: notifications and incidents missed."""
    path = run_dir / "result.json"
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise PeerInputError(f"{path}: unreadable ({e})") from None
    for key in ("scenario", "engines", "duration_s", "incidents"):
        if key not in result:
            raise PeerInputError(f"{path}: missing field {key!r}")
    alerts = load_alerts(run_dir / "alerts.csv")
    run_end = float(result["duration_s"])
    eps = episodes(alerts)
    tail_end = run_end + HOLD_S
    line = Timeline.of(eps, tail_end)
    k = float(k) if k else choose_k(line.length, budget_s, k_min, k_max)
    rep = replay(eps, tail_end, k, binary) if eps else Replay(k, [], 0.0, 0.0, 0)
    deps = result.get("dependencies") or {}
    incidents = result["incidents"]
    am_cov = coverage(incidents, am_sent(rep), deps, run_end)
    sent = pipeline_sent(run_dir, result, alerts)
    pages = [s for s in sent if s.source != "notify"]  # a Notify goes to the dashboard and pages nobody
    pipe_cov = coverage(incidents, pages, deps, run_end)
    dash_cov = coverage(incidents, sent, deps, run_end)
    return {
        "scenario": result["scenario"], "engines": result["engines"], "seed": result.get("seed"),
        "duration_s": run_end, "raw_alerts": int((alerts["state"] == "firing").sum()),
        "raw_alert_episodes": len(eps), "incidents": len(incidents),
        "k": k, "replayed_s": round(line.length, 1), "wall_s": round(rep.wall_s, 2),
        "max_lag_s": round(rep.max_lag_s, 2), "posts": rep.posts,
        "am_notifications": len(rep.notifications), "am_notifications_firing": rep.firing,
        "am_incidents_notified": len(am_cov.notified), "am_incidents_missed": len(am_cov.missed),
        "am_missed_ids": am_cov.missed,
        "pipeline_notifications": len(pages), "pipeline_engine_pages": sum(1 for s in pages if s.source == "page"),
        "pipeline_dashboard_notifies": len(sent) - len(pages),
        "pipeline_incidents_notified": len(pipe_cov.notified), "pipeline_incidents_missed": len(pipe_cov.missed),
        "pipeline_missed_ids": pipe_cov.missed,
        "pipeline_incidents_missed_counting_dashboard": len(dash_cov.missed),
        "incidents_auto_resolved_silently": len(pipe_cov.auto_resolved_silently),
    }


def run_dirs(results: Path) -> list[Path]:
    """Every run folder (``<scenario>/<engines>/result.json``) under a results folder."""
    if not results.is_dir():
        raise PeerInputError(f"{results}: not a folder (give the folder `zeroops run/suite --out` wrote)")
    dirs = sorted(p.parent for p in results.glob("*/*/result.json"))
    if not dirs:
        raise PeerInputError(f"{results}: no <scenario>/<engines>/result.json inside")
    return dirs


TABLE = (("scenario", "scenario"), ("engines", "engines"), ("raw_alerts", "raw alerts"),
         ("incidents", "incidents"), ("am_notifications", "AM notifications"),
         ("am_notifications_firing", "AM firing"), ("pipeline_notifications", "engine set's pages"),
         ("pipeline_dashboard_notifies", "dashboard notifies"),
         ("am_incidents_missed", "missed by AM"), ("pipeline_incidents_missed", "missed by pipeline"),
         ("k", "k"))


def markdown(rows: list[dict[str, Any]]) -> str:
    head = "| " + " | ".join(h for _, h in TABLE) + " |"
    sep = "|" + "|".join("---" for _ in TABLE) + "|"
    body = ["| " + " | ".join(_fmt(r.get(key)) for key, _ in TABLE) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return "-" if v is None else str(v)
