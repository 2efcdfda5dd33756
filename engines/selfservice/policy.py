"""The self-service policy (ManageIQ-style): per-request limits for automatic approval, hard limits nobody may
pass, budget headroom, onboarding defaults and usage-based quota adjustment.

Loaded from YAML with :func:`load_policy`; every error names the file, the field and what is allowed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

HOURS_PER_MONTH = 730.0


class PolicyError(ValueError):
    """A policy file or mapping that does not validate; the message names the file, the field and the bounds."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_Model):
    """Per-request limits on a server request (``vm_provision``, ``create_servers``, ``resize``)."""

    max_vms: int = Field(ge=1, le=10_000, description="servers in one request")
    max_vcpus: int = Field(ge=1, le=1_000_000, description="vCPUs in one request (all its servers)")
    max_memory_gb: float = Field(gt=0, le=1e7, description="RAM in one request, GiB (all its servers)")
    max_storage_gb: float = Field(gt=0, le=1e9, description="disk in one request, GB (all its servers)")
    max_cost_per_month: float = Field(gt=0, description="estimated on-demand cost of the request per month")


class QuotaIncreaseLimits(_Model):
    """How much a ``quota_increase`` may add: automatically, and at all."""

    auto_instances: int = Field(10, ge=0)
    auto_cores: int = Field(40, ge=0)
    auto_ram_mb: int = Field(81_920, ge=0)
    max_instances: int = Field(200, ge=0, description="hard: a project's instance quota never goes above this")
    max_cores: int = Field(800, ge=0)
    max_ram_mb: int = Field(1_638_400, ge=0)


class Onboarding(_Model):
    """What a new project gets unless its request says otherwise (within the auto limits)."""

    instances: int = Field(10, ge=0)
    cores: int = Field(20, ge=0)
    ram_mb: int = Field(40_960, ge=0)
    budget_per_month: float = Field(500.0, gt=0)
    max_auto_budget_per_month: float = Field(2_000.0, gt=0, description="a larger budget needs an approver")
    alert_route: str = Field("team-{project}", description="default alert receiver; {project} is replaced")
    name_pattern: str = Field(r"^[a-z][a-z0-9-]{2,40}$", description="allowed project names (a regex)")


class QuotaAdjust(_Model):
    """Usage-based quota adjustment: raise busy projects, lower idle ones, within bounds."""

    enabled: bool = True
    high_usage: float = Field(0.8, gt=0, le=1, description="raise when usage stays above this share")
    low_usage: float = Field(0.2, ge=0, lt=1, description="lower when usage stays below this share")
    high_window_s: float = Field(3 * 86400.0, gt=0, description="'consistently': the high share held this long")
    low_window_s: float = Field(30 * 86400.0, gt=0, description="the low share held this long (30 days)")
    raise_factor: float = Field(1.25, gt=1, le=4)
    lower_factor: float = Field(0.75, gt=0, lt=1)
    min_instances: int = Field(2, ge=0)
    min_cores: int = Field(4, ge=0)
    min_ram_mb: int = Field(8_192, ge=0)
    cooldown_s: float = Field(86400.0, ge=0, description="at most one change per project per cooldown")
    projects: list[str] | None = Field(None, description="projects to adjust (default: all)")

    @model_validator(mode="after")
    def _order(self) -> QuotaAdjust:
        if self.low_usage >= self.high_usage:
            raise ValueError(f"low_usage ({self.low_usage}) must be below high_usage ({self.high_usage})")
        return self


class Policy(_Model):
    """The whole self-service policy; :meth:`decide` order: invalid → hard → quota → auto → budget → approve."""

    auto: Limits = Limits(max_vms=5, max_vcpus=16, max_memory_gb=64, max_storage_gb=500, max_cost_per_month=600)
    hard: Limits = Limits(max_vms=50, max_vcpus=256, max_memory_gb=1024, max_storage_gb=20_000,
                          max_cost_per_month=20_000)
    quota_increase: QuotaIncreaseLimits = QuotaIncreaseLimits()
    budget_headroom: float = Field(0.1, ge=0, lt=1, description="auto-approve only while the period's projected "
                                   "spend stays this share below the budget")
    onboarding: Onboarding = Onboarding()
    quota_adjust: QuotaAdjust = QuotaAdjust()
    offboard_auto: bool = Field(True, description="offboarding runs unattended (the gate still reviews each delete)")

    @model_validator(mode="before")
    @classmethod
    def _partial_limits(cls, data: Any) -> Any:
        """``auto:`` and ``hard:`` may name only the limits they change; the rest keep their defaults."""
        if isinstance(data, dict):
            data = dict(data)
            for key in ("auto", "hard"):
                if isinstance(data.get(key), dict):
                    data[key] = cls.model_fields[key].default.model_dump() | data[key]
        return data

    @model_validator(mode="after")
    def _auto_within_hard(self) -> Policy:
        auto, hard = self.auto.model_dump(), self.hard.model_dump()
        bad = [f for f in auto if auto[f] > hard[f]]
        if bad:
            raise ValueError(f"auto limits above the hard ones: {', '.join(f'auto.{f}' for f in bad)} "
                             "(allowed: at most the hard limit)")
        return self


def parse_policy(data: Any, where: str = "<policy>") -> Policy:
    """Validate a mapping; :class:`PolicyError` lists each bad field with what is allowed."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(f"{where}: a policy is a mapping, got {type(data).__name__}")
    try:
        return Policy.model_validate(data)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            allowed = _allowed(err["loc"])
            lines.append(f"{where}: {loc or '(top)'}: {msg}" + (f" (allowed: {allowed})" if allowed else ""))
        raise PolicyError("\n".join(lines)) from None


def _allowed(loc: tuple[Any, ...]) -> str:
    model: Any = Policy
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if fields is None:
            return ""
        if part not in fields:
            return ", ".join(fields)  # an unknown key: the known ones
        f = fields[part]
        model = f.annotation
        if not isinstance(model, type) or not issubclass(model, BaseModel):
            bounds = [f"{k} {v}" for m in f.metadata if dataclasses.is_dataclass(m) and not isinstance(m, type)
                      for k, v in dataclasses.asdict(m).items() if k in ("ge", "gt", "le", "lt")]
            return ", ".join(bounds)
    return ""


def load_policy(path: str | Path) -> Policy:
    """A policy from a YAML file (clear errors: file, field, allowed)."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as e:
        raise PolicyError(f"{p}: cannot read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise PolicyError(f"{p}: not YAML: {e}") from None
    return parse_policy(data, str(p))
