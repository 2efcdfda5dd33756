"""The world a Chaos Toolkit run acts on: the twin (a scenario run in simulated time) or a live OpenStack.

Chosen by the experiment's ``configuration`` or, failing that, the environment (``ZEROOPS_CHAOS_<KEY>``):

* ``zeroops_world`` — ``twin`` (default) or ``openstack``;
* twin: ``zeroops_scenario`` (a scenario file, required), ``zeroops_engines`` (an engine set; default the
  scenario's first), ``zeroops_seed``, ``zeroops_warmup`` (simulated seconds run before the first activity,
  default 1800), ``zeroops_report`` (a JSON file written at exit: the chaos faults' ground truth and the
  decisions that passed the gate);
* openstack: ``zeroops_live_config`` (the live configuration file, as for ``zeroops live``) and
  ``zeroops_safety`` (a safety file; default: chaos allowed within ``single-service``: the live adapter
  injects server-level faults only, a service target meaning one of its servers).

Every action goes through the project's adapter behind the safety gate's choke point, as engine
``chaostoolkit``; a verdict other than allow fails the activity with the gate's rule.
"""

from __future__ import annotations

import atexit
import json
import os
import time
from pathlib import Path
from typing import Any

from adapters.base import Action, Adapter, Observation
from control.runtime import ActionRecord

ENGINE = "chaostoolkit"
WORLDS = ("twin", "openstack")
_SESSION: Session | None = None


class ChaosSessionError(RuntimeError):
    """The world cannot be set up or refused an activity; the message says why."""


def setting(configuration: dict[str, Any] | None, key: str, default: Any = None) -> Any:
    conf = configuration or {}
    if conf.get(key) not in (None, ""):
        return conf[key]
    return os.environ.get(f"ZEROOPS_CHAOS_{key.removeprefix('zeroops_').upper()}", default)


class Session:
    """One world, its adapter and the choke point every activity passes."""

    adapter: Adapter
    choke: Any
    records: list[ActionRecord]

    def now(self) -> float:
        return self.adapter.now()

    def observe(self) -> Observation:
        return Observation(self.adapter, self.now())

    def submit(self, action: Action) -> ActionRecord:
        obs = self.observe()
        try:
            rec = self.choke.submit(self.now(), ENGINE, action, obs)
        finally:
            obs.close()
        if rec.outcome != "executed":
            detail = rec.result.detail if rec.result else rec.error or ""
            raise ChaosSessionError(f"{action.kind} {action.target()}: {rec.outcome} by the safety gate "
                                    f"({rec.verdict.rule}) {detail}".rstrip())
        return rec

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)


class TwinSession(Session):
    """A scenario in simulated time, with its engine set running around the experiment."""

    def __init__(self, configuration: dict[str, Any] | None) -> None:
        from adapters.sim import SimAdapter
        from control.compose import SimulatedApprovals, compose
        from scenarios.loader import load_scenario
        from scenarios.runner import safety_config, set_operator_route
        from twin.clock import SimClock
        from twin.world import World

        path = setting(configuration, "zeroops_scenario")
        if not path:
            raise ChaosSessionError("zeroops_scenario: required for the twin (configuration or "
                                    "ZEROOPS_CHAOS_SCENARIO): a scenario file")
        scn = load_scenario(path)
        seed = setting(configuration, "zeroops_seed")
        if seed not in (None, ""):
            scn = scn.model_copy(update={"seed": int(seed)})
        engines = setting(configuration, "zeroops_engines") or scn.engines[0]
        spec = scn.engine_set(str(engines))
        self.world = World(scn, base_dir=Path(path).parent)
        set_operator_route(self.world, spec)
        self.adapter = SimAdapter(self.world)
        self.plane = compose(self.adapter, spec, clock=SimClock(self.world.env), safety=safety_config(scn),
                             approvals=SimulatedApprovals(scn.approvers.count, scn.approvers.delay,
                                                          scn.approvers.cadence), min_cadence=scn.tick)
        self.choke = self.plane.choke
        self.records = []
        self.choke.listeners.append(self.records.append)
        self.report_path = setting(configuration, "zeroops_report")
        self.wait(float(setting(configuration, "zeroops_warmup", 1800.0)))
        atexit.register(self.close)

    def wait(self, seconds: float) -> None:
        self.world.run(until=self.world.now() + float(seconds))

    def close(self) -> None:
        """Finish the world and write the report (the chaos faults' ground truth, the gate's decisions)."""
        if not self.report_path:
            return
        self.world.finish()
        faults = [f.as_dict() for f in self.world.truth.faults if f.chaos]
        decisions = [{"at": r.at, "engine": r.engine, "kind": r.kind, "target": r.target, "outcome": r.outcome,
                      "rule": r.verdict.rule} for r in self.records]
        Path(self.report_path).write_text(json.dumps({"now": self.world.now(), "chaos_faults": faults,
                                                      "decisions": decisions}, indent=1))
        self.report_path = None


class OpenStackSession(Session):
    """A live cloud through the OpenStack adapter, behind the safety gate."""

    def __init__(self, configuration: dict[str, Any] | None) -> None:
        from adapters.live_config import load_config
        from adapters.openstack import OpenStackAdapter
        from control.runtime import ChokePoint, MemoryActionLog
        from control.safety import SafetyConfig, SafetyGate
        from control.safety.config import load_safety_config

        conf_path = setting(configuration, "zeroops_live_config")
        if not conf_path:
            raise ChaosSessionError("zeroops_live_config: required for openstack (configuration or "
                                    "ZEROOPS_CHAOS_LIVE_CONFIG): the live configuration file")
        safety = setting(configuration, "zeroops_safety")
        cfg = load_safety_config(safety) if safety else SafetyConfig(
            chaos={"allow": True, "max_blast_radius": "single-service"})  # live faults hit one server anyway
        self.adapter = OpenStackAdapter.connect(config=load_config(conf_path))
        self.choke = ChokePoint(self.adapter, SafetyGate(cfg), MemoryActionLog())
        self.records = []
        self.choke.listeners.append(self.records.append)


def session(configuration: dict[str, Any] | None = None) -> Session:
    """The process's session, built on first use."""
    global _SESSION
    if _SESSION is None:
        world = str(setting(configuration, "zeroops_world", "twin"))
        if world not in WORLDS:
            raise ChaosSessionError(f"zeroops_world: {world!r}; allowed: {', '.join(WORLDS)}")
        _SESSION = TwinSession(configuration) if world == "twin" else OpenStackSession(configuration)
    return _SESSION
