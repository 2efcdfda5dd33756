"""Chaos Toolkit experiments (JSON or YAML) read as they are, checked with errors that name the file and field.

The document is the Chaos Toolkit's own (https://chaostoolkit.org/reference/api/experiment/): ``title``,
``description``, ``steady-state-hypothesis`` (``title``, ``probes`` each with a ``tolerance``), ``method``
(actions and probes), ``rollbacks``.  :func:`load_experiment` checks what both ``chaos run`` and ``zeroops chaos
run`` need; :func:`to_plan` turns one that uses this package's activities into the chaos engine's plan (one
:class:`engines.chaos.Spec` per injected fault, the hypothesis as its probes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from adapters.base import SERVICE_METRICS
from engines.chaos import KINDS, Kind, Probe, Spec

ACTIVITY_TYPES = ("action", "probe")
PROVIDER_TYPES = ("python", "process", "http")
ACTIONS_MODULE = "zeroops.chaostoolkit.actions"
PROBES_MODULE = "zeroops.chaostoolkit.probes"
INJECTING = {"inject_fault": None, "kill_server": "server_crash"}  # func -> fault (None: its ``fault`` argument)
IN_SCENARIO = {ACTIONS_MODULE: ("inject_fault", "kill_server", "wait", "rollback_fault", "start_server",
                                "restart_service"),
               PROBES_MODULE: ("service_metric",)}


class ExperimentError(ValueError):
    """An experiment file that cannot be used; the message names the file, the field and what is allowed."""


@dataclass(frozen=True)
class Experiment:
    """A checked Chaos Toolkit experiment (``doc`` is the document as read)."""

    path: Path
    doc: dict[str, Any]

    @property
    def title(self) -> str:
        return str(self.doc["title"])


def load_experiment(path: str | Path) -> Experiment:
    """Read and check a Chaos Toolkit experiment file (``.json``, ``.yaml`` or ``.yml``)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ExperimentError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ExperimentError(f"{p}: cannot read: {e}") from None
    try:
        doc = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ExperimentError(f"{p}: not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'}: "
                              f"{str(e).splitlines()[0]}") from None
    check(doc, str(p))
    return Experiment(p, doc)


def check(doc: Any, src: str) -> None:
    """Raise :class:`ExperimentError` at the first problem of an experiment document."""
    if not isinstance(doc, dict):
        raise ExperimentError(f"{src}: an experiment is a mapping with title, description and method, "
                              f"got {type(doc).__name__}")
    for key in ("title", "description"):
        if not isinstance(doc.get(key), str) or not doc[key].strip():
            raise ExperimentError(f"{src}: {key}: required, a non-empty string")
    method = doc.get("method")
    if not isinstance(method, list) or not method:
        raise ExperimentError(f"{src}: method: required, a non-empty list of activities (actions and probes)")
    ssh = doc.get("steady-state-hypothesis")
    if ssh is not None:
        if not isinstance(ssh, dict) or not isinstance(ssh.get("title"), str):
            raise ExperimentError(f"{src}: steady-state-hypothesis: a mapping with a title and probes")
        probes = ssh.get("probes", [])
        if not isinstance(probes, list):
            raise ExperimentError(f"{src}: steady-state-hypothesis.probes: a list of probes")
        for i, a in enumerate(probes):
            _activity(a, f"{src}: steady-state-hypothesis.probes[{i}]")
            if a.get("type") != "probe":
                raise ExperimentError(f"{src}: steady-state-hypothesis.probes[{i}].type: must be 'probe'")
            if "tolerance" not in a:
                raise ExperimentError(f"{src}: steady-state-hypothesis.probes[{i}].tolerance: required (a bool, a "
                                      "number, a list of values or {type: range, range: [low, high]})")
    for i, a in enumerate(method):
        _activity(a, f"{src}: method[{i}]")
    rollbacks = doc.get("rollbacks", [])
    if not isinstance(rollbacks, list):
        raise ExperimentError(f"{src}: rollbacks: a list of actions")
    for i, a in enumerate(rollbacks):
        _activity(a, f"{src}: rollbacks[{i}]")


def _activity(a: Any, where: str) -> None:
    if isinstance(a, str):
        return  # a reference to an activity defined earlier, by name
    if not isinstance(a, dict):
        raise ExperimentError(f"{where}: an activity is a mapping (type, name, provider), got {type(a).__name__}")
    if a.get("type") not in ACTIVITY_TYPES:
        raise ExperimentError(f"{where}.type: {a.get('type')!r}; allowed: {', '.join(ACTIVITY_TYPES)}")
    if not isinstance(a.get("name"), str) or not a["name"]:
        raise ExperimentError(f"{where}.name: required, a non-empty string")
    prov = a.get("provider")
    if not isinstance(prov, dict):
        raise ExperimentError(f"{where}.provider: required, a mapping with type and module/func (python)")
    if prov.get("type") not in PROVIDER_TYPES:
        raise ExperimentError(f"{where}.provider.type: {prov.get('type')!r}; allowed: {', '.join(PROVIDER_TYPES)}")
    if prov["type"] == "python":
        for key in ("module", "func"):
            if not isinstance(prov.get(key), str) or not prov[key]:
                raise ExperimentError(f"{where}.provider.{key}: required for a python provider")
        args = prov.get("arguments", {})
        if not isinstance(args, dict):
            raise ExperimentError(f"{where}.provider.arguments: a mapping of argument names to values")


def to_plan(exp: Experiment, configuration: dict[str, Any] | None = None) -> list[Spec]:
    """The chaos engine's plan for ``zeroops chaos run``: one Spec per fault the method injects, with the
    hypothesis's ``service_metric`` probes as its steady state.  Only this package's activities can run inside
    a scenario; any other is an error naming it."""
    src, doc = str(exp.path), exp.doc
    conf = {**_configuration(doc), **(configuration or {})}
    probes = tuple(_probe(a, f"{src}: steady-state-hypothesis.probes[{i}]", conf)
                   for i, a in enumerate((doc.get("steady-state-hypothesis") or {}).get("probes", [])))
    specs: list[Spec] = []
    for i, a in enumerate(doc["method"]):
        where = f"{src}: method[{i}]"
        if isinstance(a, str):
            continue
        prov = a["provider"]
        mod, func = prov.get("module"), prov.get("func")
        if prov["type"] != "python" or func not in IN_SCENARIO.get(str(mod), ()):
            allowed = ", ".join(f"{m}.{f}" for m, fs in IN_SCENARIO.items() for f in fs)
            raise ExperimentError(f"{where}.provider: {mod}.{func} cannot run inside a scenario; allowed: {allowed}")
        if func not in INJECTING:
            continue
        args = _subst(prov.get("arguments", {}), conf)
        fault = INJECTING[func] or args.get("fault")
        kind = next((k for k in KINDS.values() if k.fault == fault), None)
        if kind is None:
            faults = sorted({k.fault for k in KINDS.values() if k.fault})
            raise ExperimentError(f"{where}.provider.arguments.fault: {fault!r}; allowed: {', '.join(faults)}")
        target = args.get("target") or args.get("server_id") or args.get("service")
        if not target:
            raise ExperimentError(f"{where}.provider.arguments.target: required (a server id, service, hypervisor "
                                  "or zone)")
        specs.append(Spec(f"{exp.title} #{len(specs) + 1}", Kind(kind.name, fault, kind.aim, kind.radius),
                          target=str(target), duration=_num(args.get("duration"), f"{where}.duration"),
                          magnitude=_num(args.get("magnitude"), f"{where}.magnitude"), probes=probes or None))
    if not specs:
        raise ExperimentError(f"{src}: method: injects no fault (use {ACTIONS_MODULE}.inject_fault or kill_server)")
    return specs


def _probe(a: Any, where: str, conf: dict[str, Any]) -> Probe:
    if isinstance(a, str) or a["provider"].get("func") != "service_metric":
        raise ExperimentError(f"{where}.provider: inside a scenario the hypothesis uses "
                              f"{PROBES_MODULE}.service_metric probes")
    args = _subst(a["provider"].get("arguments", {}), conf)
    metric, service = args.get("metric"), args.get("service")
    if metric not in SERVICE_METRICS:
        raise ExperimentError(f"{where}.provider.arguments.metric: {metric!r}; allowed: {', '.join(SERVICE_METRICS)}")
    if not isinstance(service, str) or not service:
        raise ExperimentError(f"{where}.provider.arguments.service: required, a service name")
    tol = a["tolerance"]
    if isinstance(tol, dict) and tol.get("type") == "range" and isinstance(tol.get("range"), list) \
            and len(tol["range"]) == 2:
        lo, hi = (_num(x, f"{where}.tolerance.range") for x in tol["range"])
        return Probe(metric, service, min=lo, max=hi)
    if isinstance(tol, int | float) and not isinstance(tol, bool):
        return Probe(metric, service, min=float(tol), max=float(tol))
    raise ExperimentError(f"{where}.tolerance: inside a scenario a service_metric probe needs "
                          "{type: range, range: [low, high]} or a number")


def _num(v: Any, where: str) -> float | None:
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        raise ExperimentError(f"{where}: expected a number, got {v!r}") from None


def _configuration(doc: dict[str, Any]) -> dict[str, Any]:
    """Plain configuration values (``{type: env, key, default}`` entries take their default)."""
    out = {}
    for k, v in (doc.get("configuration") or {}).items():
        out[k] = v.get("default") if isinstance(v, dict) else v
    return out


def _subst(args: dict[str, Any], conf: dict[str, Any]) -> dict[str, Any]:
    """Chaos Toolkit's ``${name}`` substitution from the configuration, for whole-string values."""
    out = {}
    for k, v in args.items():
        if isinstance(v, str) and v.startswith("${") and v.endswith("}") and v[2:-1] in conf:
            v = conf[v[2:-1]]
        out[k] = v
    return out
