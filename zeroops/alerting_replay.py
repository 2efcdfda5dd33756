"""Replay a run's raw alert stream into a real Alertmanager, time-compressed.

Alertmanager runs on the wall clock, so simulated time ``t`` is replayed at wall time ``W0 + r(t) / k``:
every duration of its configuration is divided by ``k`` (:func:`zeroops.alertmanager.production_config`),
and ``r`` skips stretches in which nothing fires (after a hold long enough for the last group to flush
its resolution), so a quiet day costs no wall time.  Alerts are posted as Prometheus sends them
(``StartsAt`` = when the alert fired, re-sent every :data:`RESEND_S` while firing with ``EndsAt`` four
re-sends ahead, ``EndsAt`` = the resolution when resolved).  Each webhook notification is mapped back to
simulated time.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
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
ALERT_COLUMNS = ("at", "state", "name", "severity", "labels", "fingerprint")
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
