"""The runbook file format: pydantic models, the verification grammar and one-line validation errors.

A runbook is a YAML mapping::

    name: server-crash-reboot
    description: Hard-reboot servers that stopped answering; verify capacity and errors.
    fault_classes: [server_crash]          # and/or
    match: {component_kind: [server, service]}
    steps:
      - action: reboot_server              # a kind of adapters.base.ACTION_TYPES
        for_each: down_servers             # one action per item (see bindings.FOR_EACH)
        params: {server_id: "{server}", hard: true}
        wait: 10s                          # after the step's actions completed
    verify:
      within: 3m
      conditions: ["active_servers >= before for 20s", "error_ratio < 0.05 for 20s"]
    timeout: 10m
    rollback: []
    escalate: {who: oncall, severity: P2}

:func:`engines.runbooks.loading.parse_runbook` validates a mapping; errors are :class:`RunbookError`
whose message has one line per problem, ``FILE: FIELD: problem (allowed: ...)``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, fields
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from adapters.base import ACTION_TYPES, SERVER_METRICS, SERVICE_METRICS, Action
from engines.ops.types import FAULT_CLASSES

ComponentKind = Literal["service", "server", "hypervisor", "zone"]
COMPONENT_KINDS: tuple[str, ...] = ("service", "server", "hypervisor", "zone")
ANOMALY_SOURCES: tuple[str, ...] = ("metric", "inventory", "alert", "trend")
SERVER_STATUSES: tuple[str, ...] = ("BUILD", "ACTIVE", "SHUTOFF", "SHELVED_OFFLOADED", "ERROR")

#: variables every runbook may use in its params (bound from the incident and the observation at start)
BASE_VARS: tuple[str, ...] = (
    "incident", "component", "component_kind", "fault_class", "severity", "service", "server", "hypervisor",
    "zone", "other_zone", "flavor", "bigger_flavor", "settings", "active", "min", "max", "before", "deficit",
    "scale_out",
)
#: what a ``for_each`` source iterates over, and the variables each item binds
FOR_EACH: dict[str, tuple[str, ...]] = {
    "down_servers": ("server", "service", "hypervisor", "zone", "status"),
    "servers_on_hypervisor": ("server", "service", "hypervisor", "zone", "status"),
    "worst_server": ("server", "service", "hypervisor", "zone", "status", "value"),
    "zone_services": ("service", "zone", "servers", "count", "outside", "drain", "restore"),
    "lost_capacity": ("service", "count"),
    "failed_servers": ("server", "service", "hypervisor", "zone", "status"),
}
_DUR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_COND = re.compile(
    r"^\s*(?:(?P<servers>servers)\s+(?P<status>[A-Z_]+)|(?P<metric>[a-z_][a-z0-9_]*))\s*"
    r"(?P<op><=|>=|==|!=|<|>)\s*"
    r"(?P<rhs>(?:\d+(?:\.\d+)?\s*[*x]\s*)?(?:baseline|before|min)|\d+(?:\.\d+)?)\s*"
    r"(?:for\s+(?P<dur>\S+))?\s*$")
OPS: tuple[str, ...] = ("<", "<=", ">", ">=", "==", "!=")
WHEN = re.compile(r"^\s*([a-z_]+)\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$")


class RunbookError(ValueError):
    """Invalid runbook files; the message has one line per problem (file, field, what is allowed)."""


def duration(v: Any) -> float:
    """Seconds from a number or a string like ``30s``, ``5m``, ``1h``."""
    if isinstance(v, bool):
        raise ValueError(f"expected a duration like 30s, 5m or a number of seconds, got {v!r}")
    if isinstance(v, int | float):
        if v < 0 or v != v:
            raise ValueError(f"a duration must be >= 0 seconds, got {v!r}")
        return float(v)
    m = _DUR.match(str(v))
    if not m:
        raise ValueError(f"expected a duration like 30s, 5m, 1h or a number of seconds, got {v!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


class Condition(BaseModel):
    """One verification condition, parsed from ``METRIC OP RHS [for DUR]`` or ``servers STATUS OP RHS [for DUR]``.

    ``RHS``: a number, ``baseline`` (the metric's pre-incident median, optionally ``1.5*baseline``),
    ``before`` (its pre-incident maximum, e.g. of ``active_servers``) or ``min`` (the service's min_servers).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    metric: str | None = None  # None: a server-status count
    status: str | None = None
    op: str
    rhs: Literal["number", "baseline", "before", "min"]
    value: float  # the number, or the factor of baseline/before/min
    for_s: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Condition:
        m = _COND.match(text)
        if not m:
            raise ValueError(f"cannot read condition {text!r}; expected 'METRIC OP VALUE [for DUR]' (e.g. "
                             f"'error_ratio < 0.01 for 30s', 'latency_p95_ms <= 1.5*baseline for 30s') or "
                             f"'servers STATUS OP VALUE' (e.g. 'servers ACTIVE >= min'); OP one of {' '.join(OPS)}")
        metric = m.group("metric")
        status = m.group("status")
        if metric is not None and metric not in SERVICE_METRICS + SERVER_METRICS:
            raise ValueError(f"unknown metric {metric!r} in {text!r}; allowed: "
                             f"{', '.join(SERVICE_METRICS + SERVER_METRICS)}")
        if status is not None and status not in SERVER_STATUSES:
            raise ValueError(f"unknown server status {status!r} in {text!r}; allowed: {', '.join(SERVER_STATUSES)}")
        rhs_text = m.group("rhs").replace(" ", "")
        kind: Literal["number", "baseline", "before", "min"] = "number"
        value = 1.0
        for word in ("baseline", "before", "min"):
            if rhs_text.endswith(word):
                kind = word  # type: ignore[assignment]
                factor = rhs_text[: -len(word)].rstrip("*x")
                value = float(factor) if factor else 1.0
                break
        else:
            value = float(rhs_text)
        if kind == "baseline" and metric is None:
            raise ValueError(f"'baseline' needs a metric, not a server count, in {text!r}; use a number, before or min")
        for_s = duration(m.group("dur")) if m.group("dur") else 0.0
        return cls(text=text.strip(), metric=metric, status=status, op=m.group("op"), rhs=kind, value=value,
                   for_s=for_s)


class AnomalyMatch(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str | None = None
    source: Literal["metric", "inventory", "alert", "trend"] | None = None
    on_focus: bool = Field(False, description="the anomaly is on the focus component (or its service)")


class Match(BaseModel):
    """Conditions on the incident context; all given ones must hold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fault_class: list[str] | None = Field(None, description="the focus candidate's fault class is one of these")
    component_kind: list[ComponentKind] | None = Field(None, description="the focus component is of one of these kinds")
    anomaly: list[AnomalyMatch] | None = Field(None, description="each: an anomaly of this metric/source is present")
    severity: list[Literal["P0", "P1", "P2", "P3", "P4"]] | None = None
    service: list[str] | None = Field(None, description="the incident's service is one of these")
    recent_deploy: float | None = Field(None, description="a deploy of the service within this many seconds before "
                                                          "the incident")

    @field_validator("fault_class", "component_kind", "severity", "service", "anomaly", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str | dict) else v

    @field_validator("fault_class")
    @classmethod
    def _known_class(cls, v: list[str] | None) -> list[str] | None:
        for c in v or ():
            if c not in FAULT_CLASSES:
                raise ValueError(f"unknown fault class {c!r}; allowed: {', '.join(FAULT_CLASSES)}")
        return v

    @field_validator("recent_deploy", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> Any:
        return None if v is None else duration(v)

    def size(self) -> int:
        """How many conditions are given (a more specific match ranks first)."""
        return len(self.model_dump(exclude_none=True))


class Step(BaseModel):
    """One adapter action (or one per ``for_each`` item) with templated params."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: str
    name: str = ""
    params: dict[str, Any] = Field(default_factory=dict)
    for_each: Literal["down_servers", "servers_on_hypervisor", "worst_server", "zone_services",
                      "lost_capacity", "failed_servers"] | None = None
    by: str | None = Field(None, description="worst_server: the server metric to rank by")
    when: str | None = Field(None, description="only items where 'VAR OP NUMBER' holds (e.g. 'outside >= 1')")
    limit: int = Field(20, ge=1, le=500, description="at most this many actions from one for_each")
    wait: float = Field(0.0, description="seconds to wait after the step's actions completed")
    retries: int = Field(0, ge=0, le=5, description="re-issue a failed action this many times (after its result)")
    retry_delay: float = Field(15.0, description="seconds after a failure before its re-issue")
    on_failure: Literal["abort", "continue"] = "abort"

    @field_validator("wait", "retry_delay", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> Any:
        return duration(v)

    @field_validator("action")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        if v not in ACTION_TYPES:
            raise ValueError(f"unknown action {v!r}; allowed: {', '.join(ACTION_TYPES)}")
        return v

    @field_validator("by")
    @classmethod
    def _server_metric(cls, v: str | None) -> str | None:
        if v is not None and v not in SERVER_METRICS:
            raise ValueError(f"unknown server metric {v!r}; allowed: {', '.join(SERVER_METRICS)}")
        return v

    @model_validator(mode="after")
    def _params_fit_the_action(self) -> Step:
        cls = ACTION_TYPES[self.action]
        known = action_fields(cls)
        for k in self.params:
            if k not in known:
                raise ValueError(f"params: {self.action} has no parameter {k!r}; allowed: {', '.join(known)}")
        missing = [k for k, required in known.items() if required and k not in self.params]
        if missing:
            raise ValueError(f"params: {self.action} needs {', '.join(missing)}")
        allowed = set(BASE_VARS) | set(FOR_EACH.get(self.for_each or "", ()))
        for name in placeholders(self.params):
            if name not in allowed:
                raise ValueError(f"params: unknown variable {{{name}}}; allowed here: {', '.join(sorted(allowed))}")
        if self.when is not None:
            m = WHEN.match(self.when)
            if not m:
                raise ValueError(f"when: cannot read {self.when!r}; expected 'VAR OP NUMBER' (e.g. 'outside >= 1')")
            item = FOR_EACH.get(self.for_each or "", ())
            if m.group(1) not in item:
                raise ValueError(f"when: {m.group(1)!r} is not a variable of for_each {self.for_each}; "
                                 f"allowed: {', '.join(item) or 'none (when needs a for_each)'}")
        if self.for_each == "worst_server" and self.by is None:
            raise ValueError("for_each worst_server needs 'by: <server metric>' (e.g. server_disk_util)")
        return self


class Verify(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    conditions: list[Condition] = Field(min_length=1)
    within: float = Field(180.0, description="seconds the conditions may take to hold after the steps")

    @field_validator("conditions", mode="before")
    @classmethod
    def _parse(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list):
            return v
        return [Condition.parse(c) if isinstance(c, str) else c for c in v]

    @field_validator("within", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> Any:
        return duration(v)

    @model_validator(mode="after")
    def _can_hold(self) -> Verify:
        for c in self.conditions:
            if c.for_s > self.within:
                raise ValueError(f"condition {c.text!r} must hold {c.for_s:g} s but within is only {self.within:g} s "
                                 "(it could never verify)")
        return self


class Escalate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    who: str = "oncall"
    severity: Literal["P0", "P1", "P2", "P3", "P4"] | None = Field(None, description="None: the incident's severity")
    page: bool = Field(True, description="False: end as rolled_back without paging anyone")


class Runbook(BaseModel):
    """One runbook file. After :meth:`RunbookLibrary.match`, ``why`` says why it matched."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    fault_classes: list[str] = Field(default_factory=list)
    match: Match | None = None
    priority: int = Field(0, description="among equally specific matches, higher first")
    steps: list[Step] = Field(min_length=1)
    verify: Verify | None = None
    timeout: float = Field(600.0, gt=0, description="seconds from start to a verified fix; then rollback")
    rollback: list[Step] = Field(default_factory=list)
    escalate: Escalate = Field(default_factory=Escalate)
    _why: tuple[str, ...] = PrivateAttr(default=())
    _focus: str | None = PrivateAttr(default=None)
    _source: str = PrivateAttr(default="")

    @field_validator("fault_classes", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("fault_classes")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        for c in v:
            if c not in FAULT_CLASSES:
                raise ValueError(f"unknown fault class {c!r}; allowed: {', '.join(FAULT_CLASSES)}")
        return v

    @field_validator("timeout", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> Any:
        return duration(v)

    @model_validator(mode="after")
    def _matches_something(self) -> Runbook:
        if not self.fault_classes and (self.match is None or self.match.size() == 0):
            raise ValueError("a runbook needs fault_classes and/or match conditions (else it would match everything)")
        return self

    @property
    def why(self) -> tuple[str, ...]:
        """Why :meth:`RunbookLibrary.match` chose it (empty for a runbook not returned by match)."""
        return self._why

    @property
    def focus(self) -> str | None:
        """The candidate component the match was made on (None: the incident's top candidate)."""
        return self._focus

    @property
    def source(self) -> str:
        """The file it was read from."""
        return self._source

    def with_match(self, why: Iterable[str], focus: str | None) -> Runbook:
        """A copy carrying why it matched and on which component."""
        rb = self.model_copy()
        rb._why, rb._focus, rb._source = tuple(why), focus, self._source
        return rb

    def base_vars_used(self) -> set[str]:
        """Base variables its steps use outside for_each items (they must be bound for it to run)."""
        out: set[str] = set()
        for s in [*self.steps, *self.rollback]:
            item = set(FOR_EACH.get(s.for_each or "", ()))
            out |= {n for n in placeholders(s.params) if n not in item}
        return out



def action_fields(cls: type[Action]) -> dict[str, bool]:
    """The action's parameter names -> required (no default)."""
    meta = {"reason", "confidence", "evidence", "alternatives", "incident"}
    return {f.name: f.default is MISSING and f.default_factory is MISSING  # type: ignore[misc]
            for f in fields(cls) if f.name not in meta}


def placeholders(value: Any) -> set[str]:
    """Variable names used as ``{name}`` (or ``{name[key]}``) in the strings of a params tree."""
    out: set[str] = set()
    if isinstance(value, str):
        try:
            parsed = list(string.Formatter().parse(value))
        except ValueError:
            return out
        for _, name, _, _ in parsed:
            if name:
                out.add(re.split(r"[.\[]", name, maxsplit=1)[0])
    elif isinstance(value, Mapping):
        for k, v in value.items():
            out |= placeholders(k) | placeholders(v)
    elif isinstance(value, list | tuple):
        for v in value:
            out |= placeholders(v)
    return out
