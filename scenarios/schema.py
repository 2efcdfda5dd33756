"""The scenario file format: a world, the engine sets to run on it, and its targets."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PrivateAttr, model_validator

from control.safety import SafetyConfig
from engines.registry import REGISTRY, EngineSetSpec
from scenarios.scoring import METRICS, NON_NUMERIC_METRICS
from twin.config import Duration, Model, WorldConfig

SCHEMA_VERSION = 2  # 2: seam-v2 scoring (declarations, percentiles, precision, alert funnel)

# Every numeric result metric can be a target (docs/results.md lists them).
TargetMetric = Literal[tuple(m for m in METRICS if m not in NON_NUMERIC_METRICS)]  # type: ignore[valid-type]

ENGINE_SETS = ("static", "reactive")  # the built-in sets (engines.registry holds every registered one)


class Target(Model):
    """A bound on one result metric: ``min`` (at least) and/or ``max`` (at most)."""

    min: float | None = None
    max: float | None = None

    def check(self, value: float | None) -> str:
        if value is None:
            return "n/a"
        if self.min is not None and value < self.min:
            return "missed"
        if self.max is not None and value > self.max:
            return "missed"
        return "met"

    def describe(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        return " and ".join(parts) or "any"


class Approvers(Model):
    """The people who answer approval requests in the twin."""

    count: int = Field(2, ge=0, description="simulated approvers (0: proposals wait forever)")
    delay: Duration = Field(300.0, description="how long an approver takes to answer")
    cadence: Duration = Field(60.0, gt=0, description="how often approvers look at the queue")


class Scenario(WorldConfig):
    """One scenario: the world (see :class:`twin.config.WorldConfig`) plus what to run and expect."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$", max_length=100,
                      description="used in output paths: letters, digits, '_', '-' and '.', not starting with '.'")
    description: str = ""
    engines: list[EngineSetSpec] = Field(
        default_factory=lambda: list(ENGINE_SETS), min_length=1,  # type: ignore[arg-type]
        description="engine sets to compare: registered names (static, reactive, ...) or inline compositions "
                    "{name, engines: [{engine: NAME, SETTING: VALUE}], handles_alerting}")
    targets: dict[TargetMetric, Target] = Field(default_factory=dict)
    safety: SafetyConfig | None = Field(None, description="safety constraints (docs/safety.md); default: the design's")
    approvers: Approvers = Approvers()

    _engine_sets: dict[str, EngineSetSpec] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _engine_names(self) -> Scenario:
        """Keep ``engines`` a list of names (output folders, tables); inline compositions stay by name."""
        specs: dict[str, EngineSetSpec] = {}
        for i, e in enumerate(self.engines):
            spec = REGISTRY.resolve(e) if isinstance(e, str) else e
            if spec.name in specs:
                raise ValueError(f"engines[{i}]: engine set {spec.name!r} is listed twice")
            specs[spec.name] = spec
        self._engine_sets = specs
        self.__dict__["engines"] = list(specs)  # frozen model: set once, here
        return self

    def engine_set(self, name: str) -> EngineSetSpec:
        """The engine set called ``name``: one of this scenario's inline compositions, else a registered one."""
        spec = self._engine_sets.get(name)
        return spec.resolved() if spec is not None else REGISTRY.resolve(name)


_STANDARD_BOUNDS = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}


def _standard_keywords(node: Any, names: bool = False) -> Any:
    """pydantic writes a constraint it cannot place (e.g. on a type with a before-validator) under its own name
    (``ge``); editors ignore those, so they become the standard ``minimum`` & co.  ``names``: ``node`` maps
    field or definition names to schemas (a field may be called ``ge``)."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if not names and k in _STANDARD_BOUNDS and isinstance(v, int | float):
                out[_STANDARD_BOUNDS[k]] = v
            else:
                out[k] = _standard_keywords(v, names=not names and k in ("properties", "$defs"))
        return out
    if isinstance(node, list):
        return [_standard_keywords(x) for x in node]
    return node


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12, standard keywords only) of scenario files, for editors (``zeroops schema``)."""
    schema = _standard_keywords(Scenario.model_json_schema(by_alias=True))
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "zeroops scenario"
    return schema
