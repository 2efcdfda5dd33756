"""Safety configuration: the design's ``SafetyConstraints`` as a pydantic model.

Field names follow the design document (``MaxAutomatedCost``,
``RequireApprovalAbove``, ...); YAML may use those CamelCase names or their
snake_case forms.  :func:`load_safety_config` reads a YAML file and turns any
problem into one :class:`SafetyConfigError` that names the file, the field and
what is allowed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from adapters.base import ACTION_TYPES
from common.durations import parse_duration as _parse_duration

ACTION_KINDS: tuple[str, ...] = tuple(ACTION_TYPES)
TB = 1024**4

_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}
_DURATION_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


class SafetyConfigError(ValueError):
    """A safety configuration that cannot be used; the message says where and why."""


def parse_size(value: Any) -> int:
    """Bytes from an int or a string such as ``"1TB"``, ``"500 GiB"`` (units are binary: the design's 1TB = 1024**4)."""
    if isinstance(value, bool):
        raise ValueError("expected a size in bytes or a string like '1TB', got a boolean")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a size must be >= 0, got {value}")
        return int(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", value)
        unit = m.group(2).lower() if m else ""
        unit = unit.removesuffix("ib").removesuffix("b") if unit not in ("b", "") else ""
        if not m or unit not in _SIZE_UNITS:
            raise ValueError(f"expected a size like '1TB', '500GiB' or a byte count, got {value!r}")
        return int(float(m.group(1)) * _SIZE_UNITS[unit])
    raise ValueError(f"expected a size in bytes or a string like '1TB', got {type(value).__name__}")


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as ``"30m"``, ``"2h"``, ``"90s"``, ``"1d"`` (:mod:`common.durations`)."""
    return _parse_duration(value)


def _f(default: Any, alias: str, snake: str, doc: str, **kw: Any) -> Any:
    return Field(default, validation_alias=AliasChoices(alias, snake), serialization_alias=alias, description=doc, **kw)


# How far one chaos experiment may reach, smallest first (the design's ``MaxBlastRadius: "single-az"``).
BLAST_RADII: tuple[str, ...] = ("single-server", "single-service", "single-hypervisor", "single-az", "single-region")
BlastRadius = Literal["single-server", "single-service", "single-hypervisor", "single-az", "single-region"]


class ChaosPolicy(BaseModel):
    """When actions that always need a human (``always_approval``: fault injection) may run unattended."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    allow: bool = _f(False, "Allow", "allow", "true: chaos experiments within MaxBlastRadius run without approval")
    max_blast_radius: BlastRadius = _f("single-az", "MaxBlastRadius", "max_blast_radius",
                                       "the widest target any experiment may hit (deny: max-blast-radius): "
                                       + ", ".join(BLAST_RADII))
    business_hours_only: bool = _f(False, "BusinessHoursOnly", "business_hours_only",
                                   "inject faults only inside BusinessHours / BusinessDays (deny: chaos-business-hours)")
    canary_regions_first: bool = _f(False, "CanaryRegionsFirst", "canary_regions_first",
                                    "a fault type reaches other regions only after it ran in a canary region "
                                    "(deny: chaos-canary-first)")
    canary_regions: tuple[str, ...] = _f((), "CanaryRegions", "canary_regions",
                                         "regions (or zones) where each fault type runs first; empty: rule inactive")
    canary_bake_seconds: float = _f(3600.0, "CanaryBake", "canary_bake_seconds",
                                    "time since a fault type's first canary run before it may run elsewhere", ge=0)

    @field_validator("canary_bake_seconds", mode="before")
    @classmethod
    def _bake(cls, v: Any) -> Any:
        return parse_duration(v)


class SafetyConfig(BaseModel):
    """Guardrails every automated action must pass (``None`` disables a limit).

    Money is in the price list's currency per hour; the "cost" of an action is
    the change in hourly spend it causes (a server's hourly price for one hour).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    enable_full_automation: bool = _f(True, "EnableFullAutomation", "enable_full_automation",
                                      "False: every action is only proposed (like HumanApproval)")
    human_approval: bool = _f(False, "HumanApproval", "human_approval",
                              "observation mode: every action becomes a proposal in the approval queue")
    max_automated_cost: float | None = _f(10_000.0, "MaxAutomatedCost", "max_automated_cost",
                                          "added spend per hour that automation may commit in any trailing hour",
                                          ge=0)
    require_approval_above: float | None = _f(1_000.0, "RequireApprovalAbove", "require_approval_above",
                                              "one action adding more than this per hour needs approval", ge=0)
    max_vms_auto_provisioned: int | None = _f(1_000, "MaxVMsAutoProvisioned", "max_vms_auto_provisioned",
                                              "servers automation may create in any accounting window", ge=0)
    max_data_deleted: int | None = _f(TB, "MaxDataDeleted", "max_data_deleted",
                                      "bytes of server disk automation may delete in any accounting window", ge=0)
    rate_limit_actions: int | None = _f(100, "RateLimitActions", "rate_limit_actions",
                                        "actions executed in any 60-second window", ge=0)
    max_scale_up_percent: float | None = _f(200.0, "MaxScaleUpPercent", "max_scale_up_percent",
                                            "servers automation may add within ScaleWindow, in % of the service's "
                                            "lowest active count in that window", ge=0)
    max_scale_down_percent: float | None = _f(50.0, "MaxScaleDownPercent", "max_scale_down_percent",
                                              "active servers automation may remove within ScaleWindow, in % of the "
                                              "service's highest active count in that window", ge=0, le=100)
    incident_ownership: bool = _f(True, "IncidentOwnership", "incident_ownership",
                                  "an open incident owns its components: actions not tied to it may not touch its "
                                  "servers or change its services' capacity (deny: incident-owned)")
    incident_ownership_seconds: float = _f(900.0, "IncidentOwnershipTTL", "incident_ownership_seconds",
                                           "ownership lapses when the incident has not been updated for this long "
                                           "(a stuck incident must not freeze its services' capacity)", gt=0)
    scale_window_seconds: float = _f(60.0, "ScaleWindow", "scale_window_seconds",
                                     "sliding window of MaxScaleUpPercent / MaxScaleDownPercent (0: one instant)",
                                     ge=0)
    allow_scale_to_zero: bool = _f(True, "AllowScaleToZero", "allow_scale_to_zero",
                                   "a service with min_servers 0 may lose its last server within MaxScaleDownPercent "
                                   "(scale to zero); false: the last server never goes")
    min_scale_step: int = _f(4, "MinScaleStep", "min_scale_step",
                             "servers a scale-up may always add within ScaleWindow, whatever the percentage (so a "
                             "service can grow from 0 or 1; 4 as Kubernetes HPA's default scale-up policy)", ge=0)
    require_multi_approval: bool = _f(True, "RequireMultiApproval", "require_multi_approval",
                                      "high-risk actions needing approval need MultiApprovers approvers")
    multi_approvers: int = _f(2, "MultiApprovers", "multi_approvers", "approvers a high-risk action needs", ge=2)
    high_risk_kinds: tuple[str, ...] | None = _f(None, "HighRiskKinds", "high_risk_kinds",
                                                 "action kinds that are high-risk (null: those declaring risk 'high')")
    automated_kinds: tuple[str, ...] | None = _f(None, "AutomatedKinds", "automated_kinds",
                                                 "kinds automation may run without approval (null: all)")
    business_hours_only: bool = _f(False, "BusinessHoursOnly", "business_hours_only",
                                   "execute nothing outside business hours")
    business_hours: tuple[int, int] = _f((9, 17), "BusinessHours", "business_hours",
                                         "[start hour, end hour) in local time")
    business_days: tuple[int, ...] = _f((0, 1, 2, 3, 4), "BusinessDays", "business_days", "weekdays, Monday = 0")
    utc_offset_hours: float = _f(0.0, "UTCOffsetHours", "utc_offset_hours",
                                 "local time = UTC + this; 'now' is read as POSIX seconds", ge=-14, le=14)
    canary_regions_first: bool = _f(True, "CanaryRegionsFirst", "canary_regions_first",
                                    "a change reaches other regions only after it succeeded in a canary region")
    canary_regions: tuple[str, ...] = _f((), "CanaryRegions", "canary_regions",
                                         "regions (or zones) that take changes first; empty: rule inactive")
    canary_kinds: tuple[str, ...] = _f(("resize_server", "set_metadata"), "CanaryKinds", "canary_kinds",
                                       "action kinds rolled out canary-first")
    canary_bake_seconds: float = _f(300.0, "CanaryBakeSeconds", "canary_bake_seconds",
                                    "time a change must have run in a canary region first")
    accounting_window_seconds: float = _f(86_400.0, "AccountingWindow", "accounting_window_seconds",
                                          "window of MaxVMsAutoProvisioned and MaxDataDeleted", gt=0)
    approval_ttl_seconds: float = _f(3_600.0, "ApprovalTTL", "approval_ttl_seconds",
                                     "a proposal not executed within this expires", gt=0)
    chaos: ChaosPolicy = _f(ChaosPolicy(), "Chaos", "chaos",
                            "chaos policy: {Allow: false, MaxBlastRadius: single-az}; without Allow every fault "
                            "injection needs a human approval")
    budget_hard_limit_per_hour: float | None = _f(None, "BudgetHardLimit", "budget_hard_limit_per_hour",
                                                  "deny actions that would take total spend per hour above this",
                                                  ge=0)
    enforce_hard_limit: bool = _f(False, "EnforceHardLimit", "enforce_hard_limit",
                                  "every budget is hard at the gate: deny new spend that would end a budget's "
                                  "period over its limit (budgets marked hard always are)")

    @model_validator(mode="before")
    @classmethod
    def _nested_and_profile(cls, data: Any) -> Any:
        return _expand(data)

    @field_validator("max_data_deleted", mode="before")
    @classmethod
    def _size(cls, v: Any) -> Any:
        return None if v is None else parse_size(v)

    @field_validator("canary_bake_seconds", "accounting_window_seconds", "approval_ttl_seconds",
                     "scale_window_seconds", "incident_ownership_seconds", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> Any:
        return parse_duration(v)

    @field_validator("high_risk_kinds", "automated_kinds", "canary_kinds", mode="after")
    @classmethod
    def _kinds(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for k in v or ():
            if k not in ACTION_KINDS:
                raise ValueError(f"unknown action kind {k!r}; allowed: {', '.join(ACTION_KINDS)}")
        return v

    @field_validator("business_days", mode="after")
    @classmethod
    def _days(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(d < 0 or d > 6 for d in v):
            raise ValueError(f"weekdays are 0 (Monday) .. 6 (Sunday), got {list(v)}")
        return v

    @model_validator(mode="after")
    def _hours(self) -> SafetyConfig:
        start, end = self.business_hours
        if not (0 <= start < end <= 24):
            raise ValueError(f"BusinessHours must be [start, end) with 0 <= start < end <= 24, got {[start, end]}")
        return self

    @property
    def observation_mode(self) -> bool:
        """True when every action must be approved by a human."""
        return self.human_approval or not self.enable_full_automation

    def to_yaml_dict(self) -> dict[str, Any]:
        """The design's CamelCase form, ready for YAML."""
        return self.model_dump(mode="json", by_alias=True)


def field_names() -> list[str]:
    """Every accepted key: CamelCase and snake_case."""
    out: list[str] = []
    for name, f in SafetyConfig.model_fields.items():
        out += [str(f.serialization_alias), name]
    return out


def format_validation_error(e: ValidationError, source: str) -> str:
    """One line per problem: ``source: field: message``."""
    camel = [str(f.serialization_alias) for f in SafetyConfig.model_fields.values()]
    lines = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden" and len(err["loc"]) > 1 and err["loc"][0] in ("Chaos", "chaos"):
            names = [str(f.serialization_alias) for f in ChaosPolicy.model_fields.values()]
            near = difflib.get_close_matches(str(err["loc"][-1]), names + list(ChaosPolicy.model_fields), n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            msg = f"unknown field; {hint}allowed: {', '.join(names)} (or their snake_case forms)"
        elif err["type"] == "extra_forbidden":
            near = difflib.get_close_matches(str(err["loc"][-1]), field_names(), n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            msg = f"unknown field; {hint}allowed: {', '.join(camel)} (or their snake_case forms)"
        elif loc and "input" in err and err["type"] != "missing" and "got " not in msg:
            msg = f"{msg} (got {err['input']!r:.80})"
        lines.append(f"{source}: {loc}: {msg}" if loc else f"{source}: {msg}")
    return "\n".join(lines)


def _expand(data: Any) -> Any:
    """Flatten a nested ``SafetyConstraints:`` block and apply a ``profile:`` base; file keys win."""
    if not isinstance(data, Mapping):
        return data
    data = dict(data)
    for key in ("SafetyConstraints", "safety_constraints"):
        if key in data:
            inner = data.pop(key)
            if not isinstance(inner, Mapping):
                raise ValueError(f"{key}: expected a mapping, got {type(inner).__name__}")
            data.update(inner)
    profile = data.pop("profile", data.pop("Profile", None))
    if profile is None:
        return data
    from control.safety.profiles import PROFILES

    if not isinstance(profile, str) or profile not in PROFILES:
        raise ValueError(f"profile: unknown profile {profile!r}; allowed: {', '.join(PROFILES)}")
    names = {str(f.serialization_alias): n for n, f in SafetyConfig.model_fields.items()}
    merged = PROFILES[profile].model_dump()
    for k, v in data.items():
        merged[names.get(k, k) if isinstance(k, str) else k] = v
    return merged


def config_from_mapping(data: Any, source: str = "<config>") -> SafetyConfig:
    """Validate a mapping (a ``SafetyConstraints:`` block may be nested, a ``profile:`` key picks a base)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise SafetyConfigError(f"{source}: expected a mapping of safety settings, got {type(data).__name__}")
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise SafetyConfigError(f"{source}: {bad[0]!r}: field names must be strings")
    try:
        return SafetyConfig.model_validate(data)
    except ValidationError as e:
        raise SafetyConfigError(format_validation_error(e, source)) from None


def load_safety_config(path: str | Path) -> SafetyConfig:
    """Read a YAML safety configuration; raise :class:`SafetyConfigError` on any problem."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SafetyConfigError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SafetyConfigError(f"{p}: cannot read: {e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SafetyConfigError(f"{p}{where}: not valid YAML: {problem}") from None
    except Exception as e:  # noqa: BLE001 - yaml can raise odd errors on binary junk
        raise SafetyConfigError(f"{p}: not valid YAML: {e}") from None
    return config_from_mapping(data, str(p))
