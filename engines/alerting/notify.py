"""Stage 5: notify only what is actionable, along the escalation tree, capped by ``MaxAlertsPerHour``.

* P0 — a ``Page`` on every channel of ``EscalationChannels.P0`` at once;
* P1 — a ``Page`` on the P1 channels once the group has been P1 (or worse) for ``P1Delay`` (5 min) and is
  still not mitigated (an alert still firing); a blip that is over by then pages nobody;
* P2–P4, and P1 with ``AlertOnlyP0`` or a ``MinAlertSeverity`` of P0 — a ``Notify`` to the dashboard (pages
  nobody), once per group and priority.

Each ``Page`` counts against ``MaxAlertsPerHour`` over a rolling hour; when the
budget is spent, a page that is due becomes one dashboard notification saying
so, and stays owed: it is sent when the budget allows, if the group still
fires (P0 groups are served first, then the oldest).  A group is paged once per
priority; if it worsens (P1 → P0) it pages again.  A group about an open incident that another engine
(the ops center) has already paged a human for is posted to the dashboard instead of paged twice
(``IncidentInfo.pages`` counts every page about the incident; this engine's own are discounted).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from adapters.base import Action, Notify, Page
from engines.alerting.config import SmartAlertingConfig
from engines.alerting.correlate import Group
from engines.ops.types import Classification

NOTIFY_SEVERITY = {"P0": "critical", "P1": "critical", "P2": "warning", "P3": "info", "P4": "info"}


class Notifier:
    """Turns classified groups into Page and Notify actions; keeps the rolling page budget."""

    def __init__(self, cfg: SmartAlertingConfig) -> None:
        self.cfg = cfg
        self.sent: deque[float] = deque()  # times of pages in the last hour
        self.capped = 0
        self.own: dict[str, int] = {}  # pages this engine sent per incident

    def budget(self, now: float) -> int:
        while self.sent and self.sent[0] <= now - 3600.0:
            self.sent.popleft()
        return self.cfg.MaxAlertsPerHour - len(self.sent)

    def due(self, g: Group, c: Classification, now: float) -> bool:
        """Whether the group should page a human now."""
        p = c.severity
        if p not in self.cfg.human_levels() or p in g.paged or not g.firing():
            return False
        if any(q in g.paged for q in ("P0", "P1")[: ("P0", "P1").index(p)]):
            return False  # already paged at a worse priority
        return p == "P0" or now - g.level_since.get(p, now) >= self.cfg.P1Delay

    def actions(self, classified: list[tuple[Group, Classification]], now: float,
                incident_of: dict[str, str | None], pages_of: Mapping[str, int] | None = None) -> list[Action]:
        """``incident_of``: the open incident each group is about; ``pages_of``: pages that incident has had."""
        out: list[Action] = []
        pages_of = pages_of or {}
        for g, c in sorted(classified, key=lambda gc: (gc[1].severity, gc[0].first_start)):
            p = c.severity
            evidence = {"group": g.id, "fingerprints": g.fingerprints(), "priority": p,
                        "services": sorted(g.services), "reasons": list(c.reasons)}
            iid = incident_of.get(g.id)
            if self.due(g, c, now) and iid and pages_of.get(iid, 0) > self.own.get(iid, 0):
                g.paged.add(p)  # another engine (the ops center) already paged a human about this incident
                out.append(Notify(component=_primary(g), severity=NOTIFY_SEVERITY[p],  # type: ignore[arg-type]
                                  message=f"{p} group {g.id}: a human was already paged about incident {iid}",
                                  reason="already paged", confidence=c.confidence, evidence=evidence))
                continue
            if self.due(g, c, now):
                chans = self.cfg.channels(p)
                if self.budget(now) >= len(chans):
                    g.paged.add(p)
                    why = f"{p}: {c.reasons[-1]}" if c.reasons else p
                    for ch in chans:
                        self.sent.append(now)
                        if iid:
                            self.own[iid] = self.own.get(iid, 0) + 1
                        out.append(Page(who=ch, why=why, incident_id=incident_of.get(g.id), severity=p,  # type: ignore[arg-type]
                                        components=g.components(), reason=f"smart alerting: {p} group {g.id} "
                                        f"({len(g.members)} alert(s)) pages {ch}", confidence=c.confidence,
                                        evidence=evidence))
                    continue
                if g.capped != p:  # over the cap: the dashboard hears of it once; the page is owed, not dropped
                    g.capped = p
                    self.capped += 1
                    out.append(Notify(component=_primary(g), severity="critical", message=f"{p} group {g.id}: page "
                                      f"withheld, MaxAlertsPerHour ({self.cfg.MaxAlertsPerHour}) reached",
                                      reason="alert budget spent", confidence=c.confidence,
                                      evidence={**evidence, "capped": True}))
                    g.notified = p
                continue
            if g.notified != p and g.firing() and not g.paged:
                g.notified = p
                out.append(Notify(component=_primary(g), severity=NOTIFY_SEVERITY[p],  # type: ignore[arg-type]
                                  message=f"{p} group {g.id}: {'; '.join(c.reasons)}",
                                  reason=f"smart alerting: {p} to the dashboard", confidence=c.confidence,
                                  evidence=evidence))
        return out


def _primary(g: Group) -> str:
    return sorted(g.services)[0] if g.services else (g.components()[0] if g.components() else g.id)
