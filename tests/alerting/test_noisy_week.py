"""The noisy week: blips, flapping rules and planned maintenance, no fault — smart alerting pages nobody.

The default run is a 30-hour copy of ``scenarios/extended/noisy-week.yaml`` (its maintenance moved to hour 26);
the whole week runs under ``-m slow``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from scenarios.schema import Scenario
from tests.gaming import run_engines

WEEK = Path(__file__).resolve().parents[2] / "scenarios" / "extended" / "noisy-week.yaml"


def scenario(hours: int) -> Scenario:
    d: dict[str, Any] = yaml.safe_load(WEEK.read_text())
    if hours < 7 * 24:
        d = copy.deepcopy(d)
        d["duration"] = f"{hours}h"
        d["maintenance"][0]["at"] = "26h"
        smart = next(e for e in d["engines"] if isinstance(e, dict) and e["name"] == "smart")
        sa = next(u for u in smart["engines"] if u["engine"] == "smart_alerting")
        sa["MaintenanceWindows"][0].update(start="25.75h", end="27h")
    return Scenario.model_validate(d)


def check(runs: dict[str, Any]) -> None:
    smart, static = runs["smart"].score.metrics, runs["static"].score.metrics
    assert smart["incidents"] == static["incidents"] == 0  # no fault at all
    assert static["alerts_raw"] > 300 and static["notifications"] == static["alerts_raw"]  # the noise is real
    assert smart["alerts_raw"] > 300
    assert smart["notifications"] == 0 and smart["pages_false"] == 0 and smart["suppression_rate"] == 1.0
    w = runs["smart"].world
    down = {a.fingerprint for a in w.alerting.alerts if a.name == "InstanceDown"}
    assert down and {a.labels["service"] for a in w.alerting.alerts if a.name == "InstanceDown"} == {"db"}
    seen = {fp for r in runs["smart"].records for fp in r.action.evidence.get("fingerprints", ())}
    assert not down & seen  # the maintenance alerts were silenced before correlation: in no notification at all


def test_thirty_noisy_hours_page_nobody() -> None:
    scn = scenario(30)
    check({e: run_engines(scn, e) for e in ("static", "smart")})


@pytest.mark.slow
def test_the_noisy_week_pages_nobody() -> None:
    scn = scenario(7 * 24)
    runs = {e: run_engines(scn, e) for e in ("static", "reactive", "smart")}
    check(runs)
    assert runs["reactive"].score.metrics["notifications"] > 500
