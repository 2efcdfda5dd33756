"""Savings attributed to each cost lever, from the action log (the evidence the provisioner recorded).

Each executed action of a lever carries ``evidence["saving_per_hour"]``; its saving over a run is that rate
from the action until the run's end (an estimate: a server deprovisioned now might have been removed later
anyway, and a rightsized one keeps saving only while it lives).  Spot fallbacks, reserved conversions and
capacity notes carry no saving of their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

LEVERS = ("idle", "rightsize", "reserved")


def savings_by_lever(records: Iterable[Any], run_end: float) -> dict[str, dict[str, float]]:
    """Per lever: actions executed, the saving per hour they claim, and that rate integrated to ``run_end``."""
    out = {lever: {"actions": 0, "saving_per_hour": 0.0, "saving": 0.0} for lever in LEVERS}
    for r in records:
        if getattr(r, "outcome", None) != "executed":
            continue
        ev = r.action.evidence
        lever = ev.get("lever")
        rate = ev.get("saving_per_hour")
        if lever not in out or not isinstance(rate, int | float) or rate != rate:
            continue
        o = out[lever]
        o["actions"] += 1
        o["saving_per_hour"] += float(rate)
        o["saving"] += float(rate) * max(run_end - r.at, 0.0) / 3600.0
    return out
