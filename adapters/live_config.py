"""The live-mode configuration file (YAML), validated with pydantic.

A service of the protocol is a set of servers carrying the metadata
``zeroops_service=<name>``; this file says which services exist and how to
build their servers.  Errors name the file, the field and the allowed values::

    cloud: mycloud                 # clouds.yaml entry (``--cloud`` overrides)
    network: none                  # 'none', 'auto' or a network name/id for new servers
    services:
      - name: web
        flavor: m1.small
        image: ubuntu-24.04
        min_servers: 2
        max_servers: 10
        dependencies: [db]
    prometheus:
      url: http://127.0.0.1:9090
      queries: {cpu_util: 'avg by (service) (rate(...))'}
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from adapters.prometheus import PrometheusConfig


class ConfigError(ValueError):
    """The live configuration is invalid; the message names file, field and allowed values."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RolloutSpec(_Strict):
    """How a service-wide action (RestartService; Deploy/RollbackDeploy with releases) rolls over the servers."""

    max_unavailable: int = Field(1, ge=1, description="servers the roll takes down at once")
    health_metric: str = Field("server_up", description="per-server metric under prometheus.queries that is > 0 "
                                                        "while a server answers its scrape; absent: Nova's ACTIVE only")
    health_timeout: float = Field(120.0, gt=0, description="seconds a server may take to be ACTIVE and healthy "
                                                           "again before the roll is aborted")
    health_settle: float = Field(2.0, ge=0, description="seconds after ACTIVE before the health check: at least one "
                                                        "scrape interval, so a sample from before the reboot cannot pass")

    @field_validator("health_metric")
    @classmethod
    def _per_server(cls, v: str) -> str:
        if not v.startswith("server_"):
            raise ValueError(f"health_metric {v!r} must be a per-server metric (a name starting with 'server_', "
                             "keyed by prometheus.server_label), e.g. server_up")
        return v


class ServiceSpec(_Strict):
    """One service: servers built from ``flavor`` and ``image``, kept between min and max."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    flavor: str
    image: str
    project: str | None = None  # None: the project of the cloud entry
    zone: str | None = None
    min_servers: int = Field(0, ge=0)
    max_servers: int = Field(1_000_000, ge=0)
    dependencies: list[str] = Field(default_factory=list)
    key_name: str | None = None
    network: str | None = None  # None: the file-wide ``network``
    releases: dict[str, str] = Field(
        default_factory=dict, description="version -> Glance image (name or id): Deploy and RollbackDeploy rebuild "
                                          "servers with it (Nova rebuild); without releases/release_image they only "
                                          "tag servers (zeroops_version metadata)")
    release_image: str | None = Field(
        None, description="Glance image name of a version not under releases, a template with {version}, "
                          "e.g. 'myapp-{version}'")
    lb_pool: str | None = Field(
        None, description="Octavia pool (name or id) holding this service's servers as members (matched by address): "
                          "SetLBWeights sets their weights there when the cloud has Octavia")
    lb_weight_scale: int = Field(10, ge=1, le=256, description="Octavia weight of protocol weight 1.0 (a non-zero "
                                                               "weight is at least 1; Octavia's maximum is 256)")
    rollout: RolloutSpec = Field(default_factory=lambda: RolloutSpec())

    @model_validator(mode="after")
    def _bounds(self) -> ServiceSpec:
        if self.max_servers < self.min_servers:
            raise ValueError(f"max_servers ({self.max_servers}) must be >= min_servers ({self.min_servers})")
        return self

    @field_validator("releases")
    @classmethod
    def _releases(cls, v: dict[str, str]) -> dict[str, str]:
        bad = sorted(k for k, img in v.items() if not k.strip() or not str(img).strip())
        if bad:
            raise ValueError(f"releases: every version and image must be non-empty; empty at version(s) {bad}")
        return v

    @field_validator("release_image")
    @classmethod
    def _template(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(v) if f is not None]
        except ValueError as e:
            raise ValueError(f"release_image {v!r} is not a valid template ({e}); allowed placeholder: {{version}}") from None
        if fields != ["version"]:
            raise ValueError(f"release_image {v!r} must contain {{version}} exactly once and no other placeholder "
                             f"(found {fields}); e.g. 'myapp-{{version}}'")
        return v


class RetryConfig(_Strict):
    """Retries of API calls that failed with a 5xx, a 429 or a time-out."""

    attempts: int = Field(5, ge=1, le=20)
    base_delay: float = Field(0.5, ge=0)
    max_delay: float = Field(8.0, ge=0)
    jitter: float = Field(0.5, ge=0, le=1, description="fraction of each delay drawn at random")


class WaitConfig(_Strict):
    """Seconds an action waits for the cloud to settle (0: do not wait)."""

    create: float = Field(120.0, ge=0)
    resize: float = Field(300.0, ge=0)
    rebuild: float = Field(300.0, ge=0, description="seconds a Nova rebuild (Deploy with releases) may take")
    poll: float = Field(0.5, gt=0)


class BudgetSpec(_Strict):
    """A spending limit for a project (``*``: the whole account) over a period, reported by ``budgets()``."""

    project: str = "*"
    limit: float = Field(gt=0)
    period_s: float = Field(30 * 86400.0, gt=0, description="length of a budget period, seconds")
    period_start: float = Field(0.0, ge=0, description="epoch seconds of the start of some period (periods repeat)")
    alert_at: tuple[float, ...] = (0.5, 0.8, 1.0)
    hard: bool = False


class ReservationSpec(_Strict):
    """A commitment bought outside zeroops (OpenStack has no reservations without Blazar), shown by ``reservations()``."""

    id: str
    project: str
    flavor: str
    count: int = Field(ge=1)
    per_hour: float = Field(ge=0, description="price per server and hour")
    start: float = Field(ge=0, description="epoch seconds")
    end: float = Field(gt=0, description="epoch seconds")


class ScopeSpec(_Strict):
    """What this controller manages; every other server is read-only context (never a target of an action).

    A server is managed when it is in one of ``projects`` and its metadata matches ``managed_by`` (every
    key with that value; ``"*"`` matches any value).  Without ``managed_by``: ``zeroops_managed=<name>``,
    or ``zeroops_service`` naming one of this config's services.  New servers get the ``managed_by``
    metadata (by default ``zeroops_managed=<name>``), so they are managed from birth.
    """

    name: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$",
                      description="the controller's scope name (the default zeroops_managed value)")
    projects: list[str] = Field(default_factory=list,
                                description="project names or ids acted in (default: the cloud entry's project); "
                                            "more than one needs a role that lists servers of all projects")
    managed_by: dict[str, str] | None = Field(
        None, description="metadata key: value a managed server carries ('*': any value); default: "
                          "zeroops_managed=<name>, or zeroops_service naming a configured service")

    @field_validator("managed_by")
    @classmethod
    def _nonempty(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is not None and not v:
            raise ValueError("managed_by must name at least one metadata key (or be left out for the default)")
        return v


class EngineSpec(_Strict):
    """The older form of one engine, ``{kind: reactive_scaler, params: {target: 0.5}}``; still accepted, and the
    same as ``{engine: reactive_scaler, target: 0.5}``."""

    kind: str
    params: dict[str, Any] = Field(default_factory=dict)


class LiveConfig(_Strict):
    """The whole live configuration file."""

    cloud: str | None = None
    network: str = "none"
    api_timeout: float = Field(30.0, gt=0, description="seconds per API request")
    services: list[ServiceSpec] = Field(default_factory=list)
    prometheus: PrometheusConfig | None = None
    retry: RetryConfig = Field(default_factory=RetryConfig)
    wait: WaitConfig = Field(default_factory=WaitConfig)
    prices: dict[str, float] = Field(default_factory=dict, description="flavor name -> price per hour")
    budgets: list[BudgetSpec] = Field(default_factory=list)
    reservations: list[ReservationSpec] = Field(default_factory=list)
    engines: str | list[dict[str, Any]] | dict[str, Any] = Field(
        "reactive",
        description="the engine set: a registered name (reactive, static, ...), a list of engines "
                    "[{engine: reactive_scaler, target: 0.5}, {engine: crash_restarter}], or an inline set "
                    "{name, engines, handles_alerting}; checked against engines.registry when live mode starts")
    scope: ScopeSpec = Field(default_factory=ScopeSpec, description="the servers and projects this controller "
                                                                     "manages; everything else is read-only")
    keep_min_servers: bool = Field(True, description="keep every service at min_servers, from zero and without "
                                                     "metrics (adds min_floor_keeper when the engine set lacks it)")
    prometheus_wait: float = Field(120.0, ge=0, description="seconds Prometheus may stay unreachable after start "
                                                             "(degraded mode) before the controller exits non-zero")
    journal: str | None = Field(None, description="SQLite journal of in-flight actions; a relative path lies in the "
                                                  "state directory (default: live-journal.sqlite there)")
    decisions: str | None = Field(None, description="JSON lines record of every decision; relative: in the state "
                                                    "directory (default: live-decisions.jsonl there)")
    audit: str | None = Field(None, description="hash-chained SQLite audit trail (control.audit) of every decision; "
                                                 "relative: in the state directory; default: $ZEROOPS_AUDIT_DB, else "
                                                 "audit.db in the state directory, where `zeroops audit verify` looks")
    sinks: list[dict[str, Any]] = Field(default_factory=list, description="where executed pages and notifications "
                                        "go: [{type: slack|smtp|alertmanager|recording, ...}] (control.sinks)")

    @field_validator("services")
    @classmethod
    def _unique(cls, v: list[ServiceSpec]) -> list[ServiceSpec]:
        names = [s.name for s in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"service names must be unique; repeated: {dup}")
        known = set(names)
        for s in v:
            missing = [d for d in s.dependencies if d not in known]
            if missing:
                raise ValueError(f"service {s.name!r} depends on unknown {missing}; known services: {sorted(known)}")
        return v

    def service(self, name: str) -> ServiceSpec | None:
        return next((s for s in self.services if s.name == name), None)


def _loc(loc: tuple[Any, ...], data: Any) -> str:
    """``services[0](web).flavor`` style location of a validation error."""
    out, node = "", data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and "name" in node:
                out += f"({node['name']})"
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "(top level)"


def parse_config(data: Any, source: str = "<config>") -> LiveConfig:
    """Validate already-parsed YAML; raise :class:`ConfigError` naming ``source`` and each bad field."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(data).__name__}")
    try:
        return LiveConfig.model_validate(data)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            where = _loc(tuple(err["loc"]), data)
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                model = _model_at(tuple(err["loc"][:-1]))
                allowed = sorted(model.model_fields) if model else []
                msg = f"unknown field; allowed fields: {', '.join(allowed)}"
            elif err["type"] == "literal_error":
                msg = f"{msg} (got {err.get('input')!r})"
            lines.append(f"{source}: {where}: {msg}")
        raise ConfigError("\n".join(lines)) from None


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: Any = LiveConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if model else None
        if field is None:
            return None
        ann = field.annotation
        nxt = None
        for cand in (ann, *getattr(ann, "__args__", ())):
            for c in (cand, *getattr(cand, "__args__", ())):
                if isinstance(c, type) and issubclass(c, BaseModel):
                    nxt = c
        model = nxt
    return model


def load_config(path: str | Path | None) -> LiveConfig:
    """Read and validate a live configuration file (None: defaults, no services)."""
    if path is None:
        return LiveConfig()
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from None
    return parse_config(data, str(p))
