"""Gradual-rollout presets (the design's "Gradual Rollout" weeks) as configuration profiles.

* ``week1`` observe: every action is a proposal for a human (HumanApproval).
* ``week2`` low-risk automation: only low-risk kinds run unattended, at most 10 VMs.
* ``week3`` expanded automation: more kinds, at most 100 VMs.
* ``week4`` full zero-ops: everything within the production guardrails, 1,000 VMs.
"""

from __future__ import annotations

from control.safety.config import SafetyConfig

LOW_RISK_KINDS: tuple[str, ...] = ("notify", "reboot_server", "start_server", "create_server", "set_metadata",
                                   "restart_service")
EXPANDED_KINDS: tuple[str, ...] = LOW_RISK_KINDS + ("delete_server", "resize_server", "migrate_server",
                                                    "set_lb_weights", "set_service_setting")

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
