"""Replay a run's raw alert stream into a real Alertmanager, time-compressed, and map what it sends to incidents.

Alertmanager runs on the wall clock, so simulated time ``t`` is replayed at wall time ``W0 + r(t) / k``:
every duration of its configuration is divided by ``k`` (:func:`zeroops.alertmanager.production_config`),
and ``r`` skips stretches in which nothing fires (after a hold long enough for the last group to flush
its resolution), so a quiet day costs no wall time.  Alerts are posted as Prometheus sends them
(``StartsAt`` = when the alert fired, re-sent every :data:`RESEND_S` while firing with ``EndsAt`` four
re-sends ahead, ``EndsAt`` = the resolution when resolved).  Each webhook notification is mapped back to
simulated time and to the ground-truth incidents its firing alerts are about.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from zeroops.alertmanager import (
    GROUP_BY,
    GROUP_INTERVAL_S,
    GROUP_WAIT_S,
    MAINTENANCE_S,
    Alertmanager,
    WebhookReceiver,
    production_config,
)

RESEND_S = 60.0  # Prometheus' --rules.alert.resend-delay default: a firing alert is re-sent this often
HOLD_S = GROUP_WAIT_S + GROUP_INTERVAL_S + 60.0  # after the last alert resolves: time for its group to flush
TIE_BREAK_S = 2.5  # resolutions are posted this early (half the twin's default 5-s scrape): see posts()
GRACE_S = 60.0  # a notification up to this long after an incident's end is still about it (scoring's grace)
ALERT_COLUMNS = ("at", "state", "name", "severity", "labels", "fingerprint")
LABEL_KEYS = ("service", "server", "hypervisor", "zone")
LIFETIME_LABEL = "zeroops_group_life"


class PeerInputError(ValueError):
    """A results folder the peer cannot read: the message names the file and the field."""


@dataclass(frozen=True)
class Episode:
    """One alert from the moment it fired to its resolution (``None``: still firing when the run ended)."""

    fingerprint: str
    labels: dict[str, str]
    start: float
    end: float | None


def load_alerts(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise PeerInputError(f"{path}: missing (results written before alerts.csv existed? re-run the scenario)")
    df = pd.read_csv(path)
    missing = [c for c in ALERT_COLUMNS if c not in df.columns]
    if missing:
        raise PeerInputError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(ALERT_COLUMNS)}")
    bad = sorted(set(df["state"]) - {"firing", "resolved"})
    if bad:
        raise PeerInputError(f"{path}: field 'state' must be firing or resolved, got {bad[0]!r}")
    return df


def episodes(alerts: pd.DataFrame) -> list[Episode]:
    """Firing episodes per fingerprint from the raw stream (repeats of a firing alert are dropped)."""
    open_: dict[str, Episode] = {}
    out: list[Episode] = []
    for row in alerts.sort_values("at", kind="stable").itertuples(index=False):
        fp = str(row.fingerprint)
        if row.state == "firing" and fp not in open_:
            labels = {str(k): str(v) for k, v in json.loads(row.labels).items()}
            labels.setdefault("alertname", str(row.name))
            labels["severity"] = str(row.severity)
            open_[fp] = Episode(fp, labels, float(row.at), None)
        elif row.state == "resolved" and fp in open_:
            e = open_.pop(fp)
            out.append(Episode(e.fingerprint, e.labels, e.start, float(row.at)))
    out.extend(open_.values())
    return sorted(out, key=lambda e: (e.start, e.fingerprint))


@dataclass
class Timeline:
    """Simulated time ↔ replay time: only the kept segments (something firing, or a group flushing) elapse."""

    segments: np.ndarray  # (n, 2) disjoint [a, b], sorted

    @classmethod
    def of(cls, eps: Iterable[Episode], tail_end: float, hold: float = HOLD_S) -> Timeline:
        spans = sorted((e.start, min(tail_end, (tail_end if e.end is None else e.end) + hold)) for e in eps)
        merged: list[list[float]] = []
        for a, b in spans:
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        return cls(np.array(merged, dtype=float).reshape(-1, 2))

    @property
    def length(self) -> float:
        return float((self.segments[:, 1] - self.segments[:, 0]).sum())

    def replay_time(self, t: float) -> float:
        """Replay seconds elapsed at simulated ``t`` (a time in a skipped gap maps to the next segment's start)."""
        seg = self.segments
        before = np.concatenate([[0.0], np.cumsum(seg[:, 1] - seg[:, 0])])
        i = int(np.searchsorted(seg[:, 1], t, side="left"))
        if i >= len(seg):
            return float(before[-1])
        return float(before[i] + min(max(t - seg[i, 0], 0.0), seg[i, 1] - seg[i, 0]))

    def sim_time(self, r: float) -> float:
        """The simulated time at replay time ``r`` (inverse of :meth:`replay_time` on kept segments)."""
        seg = self.segments
        if not len(seg):
            return r
        before = np.concatenate([[0.0], np.cumsum(seg[:, 1] - seg[:, 0])])
        i = min(int(np.searchsorted(before, r, side="right")) - 1, len(seg) - 1)
        return float(seg[max(i, 0), 0] + r - before[max(i, 0)])


def posts(eps: Iterable[Episode], tail_end: float, resend: float = RESEND_S,
          tie: float = TIE_BREAK_S) -> list[tuple[float, list[dict]]]:
    """What Prometheus would send, batched by simulated time: ``(t, [{labels, starts, ends}])``, ends in sim s.

    A resolution is posted ``tie`` seconds before the scrape that saw it: the twin's times are multiples of its
    scrape, as are group_wait and group_interval, so a resolution would often land exactly on its group's flush —
    a race in Alertmanager.  Early, it is seen by that flush (deterministic, and the fewer notifications).
    """
    batches: dict[float, list[dict]] = {}
    for e in eps:
        stop = tail_end if e.end is None else max(e.start + tie / 2, e.end - tie)
        t = e.start
        while t < stop or t == e.start:
            batches.setdefault(t, []).append({"labels": e.labels, "starts": e.start, "ends": t + 4 * resend})
            t += resend
        if e.end is not None:
            batches.setdefault(stop, []).append({"labels": e.labels, "starts": e.start, "ends": stop})
    return sorted(batches.items())


@dataclass
class Replay:
    """What Alertmanager sent for one stream at one compression factor."""

    k: float
    notifications: list[tuple[float, dict[str, Any]]]  # (simulated time, webhook payload)
    wall_s: float
    max_lag_s: float  # worst delay of a post behind its schedule, in simulated seconds
    posts: int

    @property
    def firing(self) -> int:
        return sum(1 for _, p in self.notifications if p.get("status") == "firing")


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def replay(eps: list[Episode], tail_end: float, k: float, binary: str | None = None) -> Replay:
    """Start Alertmanager with the production configuration compressed by ``k`` and replay ``eps`` into it."""
    rx = WebhookReceiver()
    t_start = time.time()
    try:
        with Alertmanager(production_config(rx.url, k, (LIFETIME_LABEL,)), binary=binary) as am:
            rep = replay_into(am.port, rx, group_lifetimes(eps), tail_end, k)
    finally:
        rx.close()
    rep.wall_s = time.time() - t_start
    return rep


def replay_into(port: int, rx: WebhookReceiver, eps: list[Episode], tail_end: float, k: float) -> Replay:
    """Replay ``eps`` into a running Alertmanager (configured for ``k``) whose webhook is ``rx``."""
    line = Timeline.of(eps, tail_end)
    batches = posts(eps, tail_end)
    t_start = time.time()
    seen = len(rx.notifications)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    w0 = time.time() + 0.2

    def wall(t: float) -> float:
        return w0 + line.replay_time(t) / k

    lag = 0.0
    try:
        for t, batch in batches:
            target = wall(t)
            delay = target - time.time()
            if delay > 0:
                time.sleep(delay)
            lag = max(lag, time.time() - target)
            body = json.dumps([{"labels": a["labels"], "startsAt": _iso(wall(a["starts"])),
                                "endsAt": _iso(wall(a["ends"]))} for a in batch])
            conn.request("POST", "/api/v2/alerts", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            text = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"alertmanager rejected alerts at t={t}: {resp.status} {text[:200]!r}")
        end = wall(tail_end) + 0.1
        if end > time.time():
            time.sleep(end - time.time())
    finally:
        conn.close()
    notes = [(line.sim_time((n.wall - w0) * k), n.payload) for n in rx.notifications[seen:]]
    return Replay(k, sorted(notes, key=lambda x: x[0]), time.time() - t_start, lag * k, len(batches))


def group_lifetimes(eps: list[Episode], group_by: tuple[str, ...] = GROUP_BY) -> list[Episode]:
    """``eps`` with :data:`LIFETIME_LABEL` numbering each life of an Alertmanager aggregation group.

    Alertmanager drops a group that became empty (all its alerts resolved at a flush) at its next 30-second
    *wall-clock* maintenance tick; compressed by ``k`` that would be 30·k simulated seconds, and a flapping
    alert would keep re-joining a stale group and wait for its group_interval instead of a new group's
    group_wait.  So the replay tells Alertmanager where each group's life ends in simulated time: flushes
    at creation + group_wait + n·group_interval; a group is empty at the first flush after all its alerts
    resolved and gone :data:`~zeroops.alertmanager.MAINTENANCE_S` later; an alert after that starts a new
    life (a new value of the label, which the replay's configuration adds to ``group_by``).  Grouping,
    waiting, inhibition, deduplication and repeats stay Alertmanager's own.
    """
    state: dict[tuple[str, ...], tuple[int, float, float | None, bool]] = {}  # key -> life, created, last end, open
    out = []
    for e in sorted(eps, key=lambda e: (e.start, e.fingerprint)):
        key = tuple(e.labels.get(g, "") for g in group_by)
        life, created, last_end, any_open = state.get(key, (0, -np.inf, None, True))
        gone = False
        if key in state and not any_open and last_end is not None:
            n = max(0.0, np.ceil((last_end - created - GROUP_WAIT_S) / GROUP_INTERVAL_S))
            gone = e.start >= created + GROUP_WAIT_S + n * GROUP_INTERVAL_S + MAINTENANCE_S
        if key not in state or gone:
            life, created, last_end, any_open = life + 1, e.start, None, False
        if e.end is None:
            any_open = True
        else:
            last_end = e.end if last_end is None else max(last_end, e.end)
        state[key] = (life, created, last_end, any_open)
        out.append(Episode(e.fingerprint, e.labels | {LIFETIME_LABEL: str(life)}, e.start, e.end))
    return out


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
