"""The smart-alerting engine: raw alerts in, a few actionable ``Page``/``Notify`` actions out.

Each step, in this order (one module per stage):

1. dedupe — raw alerts fold into one track per fingerprint (:mod:`.tracks`);
2. auto-remediation first — alerts on components automation is fixing are held (:mod:`.remediation`);
3. suppress — maintenance windows, flapping, learned noise, inhibition by a cause (:mod:`.suppress`, :mod:`.learn`);
4. correlate — survivors join incident groups by topology and time (:mod:`.correlate`);
5. predict severity P0–P4 per group (:mod:`.severity`);
6. notify — escalation tree, capped by ``MaxAlertsPerHour`` (:mod:`.notify`).

An alert stopped at one stage never reaches a later one.  The engine reads
only ``obs.alerts``, ``obs.services``, ``obs.incidents``, ``obs.latest`` and (for planned maintenance marks,
:mod:`engines.maintenance`) ``obs.servers``
and emits only ``Page`` and ``Notify``; every action's evidence lists the
fingerprints it stands for.  :attr:`SmartAlerting.funnel` counts what each
stage stopped (per alert episode).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from adapters.base import Action, Observation
from engines.alerting.config import SmartAlertingConfig
from engines.alerting.correlate import Correlator, Group
from engines.alerting.learn import NoiseModel
from engines.alerting.notify import Notifier
from engines.alerting.remediation import covering, remediation_fate
from engines.alerting.severity import predict
from engines.alerting.suppress import flapping, inhibited_by, silenced
from engines.alerting.topology import Topology
from engines.alerting.tracks import Track, Tracks
from engines.maintenance import PlannedWork

STAGES = ("remediated", "held", "silenced", "flapping", "noise", "inhibited", "grouped")


class SmartAlerting:
    """Auto-remediation → suppression → correlation → severity → notification, on ``obs.alerts``."""

    def __init__(self, cfg: SmartAlertingConfig | None = None) -> None:
        self.cfg = cfg or SmartAlertingConfig()
        self.name = self.cfg.name
        self.cadence = float(self.cfg.cadence)
        self.tracks = Tracks(self.cfg.FlapWindow)
        self.noise = NoiseModel(self.cfg.FalsePositiveThreshold, self.cfg.PersistentAfter)
        self.correlator = Correlator(self.cfg.CorrelationWindow)
        self.notifier = Notifier(self.cfg)
        self.funnel: Counter[str] = Counter()  # ended episodes by the stage that stopped them
        self._covered: set[str] = set()  # fingerprints an incident covered during their current episode
        self._last: float | None = None

    # ------------------------------------------------------------------ step
    def step(self, now: float, obs: Observation) -> Iterable[Action]:
        since = -1.0 if self._last is None else self._last - 2 * self.cadence  # re-reads are deduplicated
        self._last = now
        ended = self.tracks.ingest(obs.alerts(since), now)
        topo = Topology.of(obs.services)
        incidents = obs.incidents
        for e in ended:
            self.funnel[e.fate or "grouped"] += 1
            self.noise.learn(e.track.fingerprint, e.end - e.start, e.track.fingerprint in self._covered)
            self._covered.discard(e.track.fingerprint)
        firing = self.tracks.firing()
        planned = PlannedWork(obs, now, self.cfg.P1ErrorRatio)  # reads the inventory only when asked
        survivors = [t for t in firing if self._fate(t, firing, topo, incidents, now, planned) == "grouped"]
        groups = self.correlator.assign(survivors, topo, now)
        if not groups:
            return []
        errors = obs.latest("error_ratio")
        classified = []
        for g in groups:
            c = predict(g, topo, errors, incidents, self.cfg, now)
            g.classify(c.severity, now)
            classified.append((g, c))
        pages = {i.id: i.pages for i in incidents.values()}
        return self.notifier.actions(classified, now, {g.id: _incident_of(g, incidents) for g in groups}, pages)

    def _fate(self, t: Track, firing: list[Track], topo: Topology, incidents: dict, now: float,
              planned: PlannedWork | None = None) -> str:
        """The first stage that stops ``t`` now, or ``"grouped"``; recorded on the track."""
        if covering(t, incidents, topo):
            self._covered.add(t.fingerprint)
        fate = ""
        if self.cfg.AutoRemediateBeforeAlert:
            fate = remediation_fate(t, incidents, topo, now, self.cfg.AutoRemediateGrace)
        if not fate and t.fate == "grouped" and self.correlator.of.get(t.fingerprint) is not None:
            return "grouped"  # sticky: once correlated, an episode stays in its group unless automation takes it
        if not fate and silenced(t, self.cfg.MaintenanceWindows, now, planned):
            fate = "silenced"
        if not fate and flapping(t, self.cfg.FlapThreshold):
            fate = "flapping"
        if not fate and self.cfg.MLSuppressionEnabled and t.fingerprint not in self._covered \
                and self.noise.noisy(t.fingerprint):
            fate = "noise"
        if not fate and inhibited_by(t, firing, topo) is not None:
            fate = "inhibited"
        t.fate = fate or "grouped"
        return t.fate

    # ------------------------------------------------------------- reporting
    def stats(self) -> dict[str, int]:
        """Raw firing notifications, duplicates, ended episodes per stage, groups open, pages withheld by the cap."""
        return {"raw_firing": self.tracks.raw_firing, "duplicates": self.tracks.duplicates,
                **{s: self.funnel.get(s, 0) for s in STAGES}, "groups_open": len(self.correlator.groups),
                "capped": self.notifier.capped}


def _incident_of(g: Group, incidents: dict) -> str | None:
    """The open incident that shares most components with the group (the page is about it), if any."""
    comps = set(g.components())
    best = max(incidents.values(), key=lambda i: len(comps & set(i.components)), default=None)
    return best.id if best is not None and comps & set(best.components) else None
