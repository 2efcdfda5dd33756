"""Gradual-rollout presets (the design's "Gradual Rollout" weeks) as configuration profiles.

* ``week1`` observe: every action is a proposal for a human (HumanApproval).
* ``week2`` low-risk automation: only kinds declaring ``risk = "low"`` run unattended, at most 10 VMs.
* ``week3`` expanded automation: kinds declaring ``low`` or ``medium`` risk, at most 100 VMs.
* ``week4`` full zero-ops: everything within the production guardrails, 1,000 VMs.
"""

from __future__ import annotations

from adapters.base import ACTION_TYPES
from control.safety.config import SafetyConfig


def kinds_up_to(risk: str) -> tuple[str, ...]:
    """Every action kind whose declared ``risk`` is at most ``risk`` (low < medium < high), in declaration order.

    ``always_approval`` kinds (fault injection) are never listed: a chaos policy, not a profile, lets them run.
    """
    order = ("low", "medium", "high")
    limit = order.index(risk)
    return tuple(k for k, cls in ACTION_TYPES.items()
                 if order.index(cls.risk) <= limit and not cls.always_approval)


# Derived from each action class's declared ``risk``: a new verb lands in the right week by declaring it once.
LOW_RISK_KINDS: tuple[str, ...] = kinds_up_to("low")
EXPANDED_KINDS: tuple[str, ...] = kinds_up_to("medium")

PRODUCTION = SafetyConfig()  # the design's production SafetyConstraints

PROFILES: dict[str, SafetyConfig] = {
    "week1": SafetyConfig(human_approval=True, enable_full_automation=False),
    "week2": SafetyConfig(max_vms_auto_provisioned=10, automated_kinds=LOW_RISK_KINDS),
    "week3": SafetyConfig(max_vms_auto_provisioned=100, automated_kinds=EXPANDED_KINDS),
    "week4": SafetyConfig(human_approval=False, max_vms_auto_provisioned=1000),
    "production": PRODUCTION,
}
PROFILES["observe"] = PROFILES["week1"]
PROFILES["full"] = PROFILES["week4"]


def profile(name: str) -> SafetyConfig:
    """The preset called ``name`` (week1..week4, observe, full, production)."""
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"unknown safety profile {name!r}; allowed: {', '.join(PROFILES)}") from None
