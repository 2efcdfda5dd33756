"""Self-service: requests decided by policy within seconds, carried out through the gate, quotas adjusted by
usage (docs/self-service.md)."""

from engines.selfservice.decide import Decision, decide
from engines.selfservice.engine import SelfService, SelfServiceConfig
from engines.selfservice.policy import Policy, PolicyError, load_policy, parse_policy

__all__ = ["Decision", "Policy", "PolicyError", "SelfService", "SelfServiceConfig", "decide", "load_policy",
           "parse_policy"]
