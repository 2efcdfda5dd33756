"""The one registry of engines and engine sets.

*Engines* are registered by name with a factory and a pydantic config model:
the config validates an engine's settings (unknown keys and out-of-range
values are errors that name the engine, the setting and what is allowed), and
the factory builds a fresh engine from a validated config.

*Engine sets* are named compositions of registered engines with their
settings, plus flags the world needs to know about the set:
``handles_alerting`` means the set pages the on-call human itself (``Page``
actions), so the twin routes the simulated human through pages only (the
``"pages"`` route); a set without it (the baselines) leaves the human paged by
raw alerts (``"raw_alerts"``).

Scenario files, ``zeroops run`` and ``zeroops live`` all resolve engine sets
here; tests and future engines plug in with :func:`register` and
:func:`register_set`::

    register("gaming", lambda cfg: Gaming(cfg.level), GamingConfig, description="...")
    register_set("gamed", [{"engine": "gaming", "level": 3}], handles_alerting=True)

An engine set is written as its registered name (``reactive``) or inline::

    {name: my-set, engines: [{engine: reactive_scaler, target: 0.5}, {engine: crash_restarter}]}
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from control.runtime import Engine

OperatorRoute = Literal["raw_alerts", "pages"]
SET_NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"  # set names end up in output paths


class RegistryError(ValueError):
    """An unknown engine or engine set, or invalid engine settings; the message says what is allowed."""


class NoSettings(BaseModel):
    """The config of an engine that takes no settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class EngineType:
    """A registered engine: ``factory(config)`` builds one from a validated ``config`` model."""

    name: str
    factory: Callable[[Any], Engine]
    config: type[BaseModel]
    description: str = ""

    def settings(self) -> list[str]:
        return sorted(self.config.model_fields)

    def validate(self, params: Mapping[str, Any], where: str = "") -> BaseModel:
        """The validated config; :class:`RegistryError` names ``where``, the engine, the setting and the bounds."""
        if not isinstance(params, Mapping):
            raise RegistryError(f"{where or self.name}: settings must be a mapping, got {type(params).__name__}")
        try:
            return self.config.model_validate(dict(params))
        except ValidationError as e:
            raise RegistryError(_format(e, self, where or self.name)) from None

    def build(self, params: Mapping[str, Any] | None = None) -> Engine:
        return self.factory(self.validate(params or {}))


def _format(e: ValidationError, et: EngineType, where: str) -> str:
    lines = []
    for err in e.errors():
        key = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            near = difflib.get_close_matches(key, et.settings(), n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            allowed = ", ".join(et.settings()) or "(none)"
            msg = f"unknown setting of engine {et.name}; {hint}allowed: {allowed}"
        elif "input" in err and "got" not in msg:
            msg = f"{msg} (got {err['input']!r:.60})"
        lines.append(f"{where}.{key}: {msg}" if key else f"{where}: {msg}")
    return "\n".join(lines)


class EngineUse(BaseModel):
    """One engine in a composition: ``{engine: reactive_scaler, target: 0.5}`` (settings beside the name)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    engine: str = Field(description="a registered engine (reactive_scaler, crash_restarter, ...)")

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @model_validator(mode="after")
    def _known(self) -> EngineUse:
        REGISTRY.engine(self.engine).validate(self.params, self.engine)
        return self

    def build(self, min_cadence: float = 0.0) -> Engine:
        """A fresh engine; ``min_cadence`` raises a *default* cadence below it (an explicit one is kept, and so is
        the cadence of an engine whose config sets ``steps_between_ticks``: it answers events that arrive between
        ticks, such as self-service requests)."""
        et = REGISTRY.engine(self.engine)
        params = self.params
        field = et.config.model_fields.get("cadence")
        if (field is not None and "cadence" not in params and float(field.default or 0.0) < min_cadence
                and not getattr(et.config, "steps_between_ticks", False)):
            try:
                return et.build({**params, "cadence": min_cadence})
            except RegistryError:
                pass  # the engine's own bound is lower than the world's step: keep its default
        return et.build(params)


class EngineSetSpec(BaseModel):
    """An engine set: a registered name alone, or an inline composition with ``engines``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=SET_NAME_PATTERN, description="the set's name (used in output paths)")
    engines: tuple[EngineUse, ...] | None = Field(
        None, description="inline composition: [{engine: NAME, SETTING: VALUE, ...}]; omit to use a registered set")
    handles_alerting: bool | None = Field(
        None, description="the set pages the on-call human itself (Page actions): the simulated human is paged "
                          "only by pages, not by raw alerts (default: false for inline sets)")
    description: str = ""

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> Any:
        obj = handler(core_schema)
        return {"anyOf": [{"type": "string", "pattern": SET_NAME_PATTERN,
                           "description": "a registered engine set: static, reactive, ..."}, obj]}

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"name": data}
        if not isinstance(data, Mapping | EngineSetSpec):
            raise ValueError(f"an engine set is a name ({', '.join(REGISTRY.set_names())}) or a mapping "
                             f"{{name, engines: [{{engine: NAME, ...}}]}}, got {type(data).__name__}")
        return data

    @model_validator(mode="after")
    def _resolvable(self) -> EngineSetSpec:
        registered = REGISTRY.has_set(self.name)
        if self.engines is None:
            if not registered:
                raise ValueError(f"unknown engine set {self.name!r}; allowed: {', '.join(REGISTRY.set_names())} "
                                 f"(or an inline composition with 'engines')")
            if self.handles_alerting is not None and self.handles_alerting != REGISTRY.engine_set(
                    self.name).handles_alerting:
                raise ValueError(f"engine set {self.name!r} is registered; its handles_alerting cannot be changed "
                                 f"here (define an inline set with another name)")
        elif registered and REGISTRY.engine_set(self.name) != self:
            raise ValueError(f"{self.name!r} is a registered engine set; give the inline composition another name")
        else:
            _check_unique(self.engines)
        return self

    @property
    def is_reference(self) -> bool:
        return self.engines is None

    @property
    def alerting(self) -> bool:
        return bool(self.handles_alerting)

    @property
    def operator_route(self) -> OperatorRoute:
        """How the twin's simulated human is paged while this set runs."""
        return "pages" if self.resolved().alerting else "raw_alerts"

    def resolved(self) -> EngineSetSpec:
        """The full composition (a name is looked up in the registry)."""
        return REGISTRY.engine_set(self.name) if self.engines is None else self

    def build(self, min_cadence: float = 0.0) -> list[Engine]:
        """Fresh engines for one run.  ``min_cadence``: the world's step (the twin's tick) — an engine whose
        default cadence is shorter steps once per step instead, as nothing it observes changes in between."""
        return [u.build(min_cadence) for u in self.resolved().engines or ()]


def _check_unique(uses: Iterable[EngineUse]) -> None:
    names = [u.engine for u in uses]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"engine {dup[0]!r} appears more than once in one set (each engine runs once per set)")


class Registry:
    """Named engines (factory + config) and named engine sets."""

    def __init__(self) -> None:
        self._engines: dict[str, EngineType] = {}
        self._sets: dict[str, EngineSetSpec] = {}

    # ---------------------------------------------------------------- engines
    def register(self, name: str, factory: Callable[[Any], Engine], config: type[BaseModel] = NoSettings, *,
                 description: str = "", replace: bool = False) -> EngineType:
        """Register an engine; ``factory`` receives a validated instance of ``config``."""
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise RegistryError(f"engine name {name!r}: use letters, digits, '_' and '-'")
        if name in self._engines and not replace:
            raise RegistryError(f"engine {name!r} is already registered (pass replace=True to replace it)")
        if config.model_config.get("extra") != "forbid":
            raise RegistryError(f"engine {name!r}: its config must forbid unknown settings (extra='forbid')")
        et = EngineType(name, factory, config, description)
        self._engines[name] = et
        return et

    def unregister(self, name: str) -> None:
        self._engines.pop(name, None)

    def engine(self, name: str) -> EngineType:
        try:
            return self._engines[name]
        except (KeyError, TypeError):
            near = difflib.get_close_matches(str(name), self.engine_names(), n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise RegistryError(f"unknown engine {name!r}; {hint}allowed: {', '.join(self.engine_names())}") from None

    def engine_names(self) -> list[str]:
        return sorted(self._engines)

    # ------------------------------------------------------------------ sets
    def register_set(self, name: str, engines: Sequence[str | Mapping[str, Any] | EngineUse], *,
                     handles_alerting: bool = False, description: str = "", replace: bool = False) -> EngineSetSpec:
        """Register a named set of registered engines (a name alone, or ``{engine: NAME, SETTING: VALUE}``)."""
        if name in self._sets and not replace:
            raise RegistryError(f"engine set {name!r} is already registered (pass replace=True to replace it)")
        uses = []
        for i, u in enumerate(engines):
            try:
                uses.append(u if isinstance(u, EngineUse) else EngineUse.model_validate(
                    {"engine": u} if isinstance(u, str) else u))
            except ValidationError as e:
                raise RegistryError(f"engine set {name!r}: engines[{i}]: "
                                    + "; ".join(str(x["msg"]).removeprefix("Value error, ") for x in e.errors())) from None
        self._sets.pop(name, None)  # a replaced set must not refuse its own new definition as "registered"
        try:
            spec = EngineSetSpec(name=name, engines=tuple(uses), handles_alerting=handles_alerting,
                                 description=description)
        except ValidationError as e:
            raise RegistryError(f"engine set {name!r}: "
                                + "; ".join(str(x["msg"]).removeprefix("Value error, ") for x in e.errors())) from None
        self._sets[name] = spec
        return spec

    def unregister_set(self, name: str) -> None:
        self._sets.pop(name, None)

    def has_set(self, name: str) -> bool:
        return name in self._sets

    def engine_set(self, name: str) -> EngineSetSpec:
        try:
            return self._sets[name]
        except (KeyError, TypeError):
            raise RegistryError(f"unknown engine set {name!r}; allowed: {', '.join(self.set_names())}") from None

    def set_names(self) -> list[str]:
        return list(self._sets)

    def resolve(self, ref: str | Mapping[str, Any] | EngineSetSpec) -> EngineSetSpec:
        """A full engine set from a name, a mapping (inline composition) or a spec."""
        if isinstance(ref, EngineSetSpec):
            return ref.resolved()
        try:
            return EngineSetSpec.model_validate(ref).resolved()
        except ValidationError as e:
            lines = []
            for err in e.errors():
                loc = ".".join(str(p) for p in err["loc"])
                msg = str(err["msg"]).removeprefix("Value error, ")
                lines.append(f"{loc}: {msg}" if loc else msg)
            raise RegistryError("\n".join(lines)) from None

    def build(self, ref: str | Mapping[str, Any] | EngineSetSpec) -> list[Engine]:
        """Fresh engines of a set."""
        return self.resolve(ref).build()


REGISTRY = Registry()
register = REGISTRY.register
register_set = REGISTRY.register_set
resolve = REGISTRY.resolve
build_engines = REGISTRY.build


def _builtins() -> None:
    from engines.baselines import CrashRestarter, CrashRestarterConfig, ReactiveScaler, ReactiveScalerConfig

    register("reactive_scaler", lambda c: ReactiveScaler(**c.model_dump()), ReactiveScalerConfig,
             description="HPA-style scaling on mean CPU utilisation")
    register("crash_restarter", lambda c: CrashRestarter(**c.model_dump()), CrashRestarterConfig,
             description="starts SHUTOFF servers, hard-reboots ERROR ones, replaces those on a dead host")
    from engines.floor import MinFloorKeeper, MinFloorKeeperConfig

    register("min_floor_keeper", lambda c: MinFloorKeeper(**c.model_dump()), MinFloorKeeperConfig,
             description="creates what a service lacks below min_servers, from zero and without metrics")
    from engines.scaling import PredictiveScaler, PredictiveScalerConfig

    register("predictive_scaler", PredictiveScaler, PredictiveScalerConfig,
             description="forecast-first multi-dimensional autoscaling with a reactive safety net, boot-time lead, "
                         "scale to/from zero (docs/scaling.md)")
    from engines.alerting import SmartAlerting, SmartAlertingConfig

    register("smart_alerting", SmartAlerting, SmartAlertingConfig,
             description="auto-remediation first, suppression, correlation, P0-P4 severity, capped pages "
                         "(docs/alerting.md)")
    from engines.ops.center import OpsCenter, OpsCenterConfig

    register("ops_center", OpsCenter, OpsCenterConfig,
             description="anomalies -> incidents -> RCA and severity -> runbooks -> resolution, pages when it "
                         "must (docs/ops-center.md)")
    from engines.ops.undrain import DrainProber, DrainProberConfig

    register("drain_prober", DrainProber, DrainProberConfig,
             description="probes drained servers with a little traffic and puts them back once one serves "
                         "cleanly (docs/ops-center.md)")
    from engines.provisioning import Provisioner, ProvisionerConfig

    register("provisioner", Provisioner, ProvisionerConfig,
             description="idle deprovisioning, rightsizing, retry elsewhere, spot fallback, reservations, "
                         "capacity planning (docs/provisioning.md)")
    from engines.budget import BudgetManager, BudgetManagerConfig

    register("budget_manager", BudgetManager, BudgetManagerConfig,
             description="budget alerts, spend forecast, cost anomalies, low-priority scale-down, reallocation "
                         "(docs/budgets.md)")
    from engines.improvement import (
        ContinuousImprovement,
        ContinuousImprovementConfig,
        FixedThresholdCanary,
        FixedThresholdCanaryConfig,
    )

    register("continuous_improvement", ContinuousImprovement, ContinuousImprovementConfig,
             description="canary analysis (Mann-Whitney vs baseline) with step promotion and automatic rollback, "
                         "cost drift, A/B experiments by mSPRT (docs/improvement.md)")
    register("fixed_threshold_canary", FixedThresholdCanary, FixedThresholdCanaryConfig,
             description="Flagger/Argo-style canary: promote after N checks under fixed error and latency "
                         "thresholds, else roll back (the peer)")
    from engines.selfservice import SelfService, SelfServiceConfig

    register("self_service", SelfService, SelfServiceConfig,
             description="self-service requests decided by policy in seconds (approve, route to an approver, "
                         "refuse, with the rule), carried out through the gate; usage-based quotas "
                         "(docs/self-service.md)")
    from engines.chaos import ChaosEngineer, ChaosEngineerConfig

    register("chaos_engineer", ChaosEngineer, ChaosEngineerConfig,
             description="daily chaos tests and weekly game days within a blast radius, steady-state watch, "
                         "abort and rollback (docs/chaos.md)")
    register_set("static", [], description="nothing automated: the fleet is provisioned for peak, humans fix")
    register_set("reactive", ["reactive_scaler", "crash_restarter"],
                 description="threshold autoscaling and a crash restarter (the baselines' automation)")
    register_set("predictive", ["predictive_scaler", "provisioner"],
                 description="the predictive scaler and the provisioner alone (capacity and cost, no incidents)")
    register_set("ops", ["ops_center", "predictive_scaler", "provisioner", "budget_manager", "smart_alerting",
                         "drain_prober"], handles_alerting=True,
                 description="the autonomous operations center with predictive scaling, provisioning, budgets and "
                             "smart alerting")


_builtins()
