"""Chaos Toolkit actions on a zeroops world (``provider: {type: python, module: zeroops.chaostoolkit.actions}``).

Faults are ``InjectFault`` actions and rollbacks ordinary ones, all through the safety gate
(:mod:`zeroops.chaostoolkit.session`); the twin knows the whole fault catalog, OpenStack the server-level
faults (``server_crash`` stops a server).
"""

from __future__ import annotations

import math
from typing import Any

from adapters.base import InjectFault, RestartService, StartServer
from engines.chaos.rollback import rollback_actions
from zeroops.chaostoolkit.session import session


def inject_fault(fault: str, target: str, duration: float | None = None, magnitude: float | None = None,
                 experiment: str = "chaostoolkit", configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """Inject a catalogued fault into a server, service, hypervisor or zone (the world ends it at ``duration``)."""
    rec = session(configuration).submit(InjectFault(
        fault=fault, target_component=target, duration=float(duration) if duration is not None else None,
        magnitude=float(magnitude) if magnitude is not None else None, experiment=experiment,
        reason=f"Chaos Toolkit experiment {experiment}"))
    return {"at": rec.at, "detail": rec.result.detail if rec.result else "", "rule": rec.verdict.rule}


def kill_server(target: str, duration: float | None = None, experiment: str = "chaostoolkit",
                configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """Crash one server (a server id, or a service: one of its servers)."""
    return inject_fault("server_crash", target, duration, None, experiment, configuration)


def wait(seconds: float, configuration: dict[str, Any] | None = None) -> float:
    """Let ``seconds`` pass: simulated time in the twin (its engines keep running), real time live."""
    s = session(configuration)
    s.wait(float(seconds))
    return s.now()


def rollback_fault(fault: str, target: str, configuration: dict[str, Any] | None = None) -> list[str]:
    """End what is still observed of ``fault`` on ``target`` (start or reboot a server, restart a service, roll a
    release back); faults of hosts and zones end at their duration. Returns the actions taken."""
    s = session(configuration)
    obs = s.observe()
    try:
        actions = rollback_actions(obs, fault, target, force=False, latency_bound=math.inf,
                                   meta={"reason": "Chaos Toolkit rollback", "evidence": {"chaos_rollback": target}})
    finally:
        obs.close()
    return [f"{a.kind} {a.target()}: {s.submit(a).outcome}" for a in actions]


def start_server(server_id: str, configuration: dict[str, Any] | None = None) -> str:
    """Start a stopped server."""
    return session(configuration).submit(StartServer(server_id=server_id, reason="Chaos Toolkit rollback")).outcome


def restart_service(service: str, configuration: dict[str, Any] | None = None) -> str:
    """Restart every server of a service."""
    return session(configuration).submit(RestartService(service=service, reason="Chaos Toolkit rollback")).outcome
