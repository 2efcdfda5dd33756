"""Safety controls: the gate, approvals, overrides and rollout profiles.

Twin and live mode wire these through the one composition root,
:func:`control.compose.compose` (engines, gate, approval queue, audit trail,
choke point and runtime together).  The safety part alone::

    kit = SafetyKit.build(adapter, SafetyConfig(), audit_path="out/audit.db")
    runtime = Runtime(adapter, engines, choke=kit.choke)
    runtime.attach(clock); kit.attach(clock)   # approvers and the approval executor
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.base import Adapter, AdapterError
from control.runtime import ActionLog, ChokePoint, Clock, MemoryActionLog
from control.safety.approvals import (
    ApprovalError,
    ApprovalExecutor,
    ApprovalQueue,
    Proposal,
    SimulatedApprover,
)
from control.safety.config import SafetyConfig, SafetyConfigError, config_from_mapping, load_safety_config
from control.safety.gate import Assessment, BudgetGuard, SafetyGate, SpendRateLimit
from control.safety.override import OverrideError, Overrides
from control.safety.profiles import PROFILES, profile
from control.safety.store import Pause, SafetyStore

__all__ = [
    "PROFILES", "ApprovalError", "ApprovalExecutor", "ApprovalQueue", "Assessment", "BudgetGuard", "OverrideError",
    "Overrides", "Pause", "Proposal", "SafetyConfig", "SafetyConfigError", "SafetyGate", "SafetyKit", "SafetyStore",
    "SimulatedApprover", "SpendRateLimit", "config_from_mapping", "load_safety_config", "profile",
]


@dataclass
class SafetyKit:
    """Gate, audit log, approval queue, overrides and (in the twin) simulated approvers, wired to one choke point."""

    choke: ChokePoint
    gate: SafetyGate
    store: SafetyStore
    queue: ApprovalQueue
    overrides: Overrides
    executor: ApprovalExecutor
    approvers: list[SimulatedApprover] = field(default_factory=list)
    log: ActionLog | None = None

    @classmethod
    def build(cls, adapter: Adapter, config: SafetyConfig | None = None, *, state_path: str | Path = ":memory:",
              audit_path: str | Path | None = None, log: ActionLog | None = None,
              simulated_approvers: int = 0, approver_delay: float = 300.0, approver_cadence: float = 60.0,
              executor_cadence: float = 10.0, **gate_kw: Any) -> SafetyKit:
        """Wire everything; ``simulated_approvers`` > 0 adds that many approvers (the twin's people)."""
        store = SafetyStore(state_path)
        gate = SafetyGate(config, store, **gate_kw)
        if log is None and audit_path is not None:
            from control.audit import AuditLog

            log = AuditLog(audit_path)
        choke = ChokePoint(adapter, gate, log or MemoryActionLog())
        queue = ApprovalQueue(store)
        choke.listeners.append(queue.on_record)
        executor = ApprovalExecutor(queue, choke, gate, cadence=executor_cadence)
        approvers = [SimulatedApprover(queue, f"sim-approver-{i + 1}", delay=approver_delay,
                                       cadence=approver_cadence, seed=i) for i in range(simulated_approvers)]
        return cls(choke, gate, store, queue, Overrides(store), executor, approvers, choke.log)

    def attach(self, clock: Clock, on_error: Callable[[str], None] | None = None) -> None:
        """Drive the simulated approvers and the approval executor on ``clock``.

        ``on_error`` (live): an adapter error in the executor's step is reported and the step skipped,
        instead of ending the clock's run.
        """
        for a in self.approvers:
            clock.every(a.cadence, a.step, offset=a.cadence)
        step = self.executor.step
        if on_error is not None:
            inner = step

            def step(now: float) -> Any:
                try:
                    return inner(now)
                except AdapterError as e:
                    on_error(f"approval executor: step skipped: {type(e).__name__}: {str(e)[:300]}")
                    return []

        clock.every(self.executor.cadence, step, offset=self.executor.cadence)

    def close(self) -> None:
        close = getattr(self.log, "close", None)
        if close is not None:
            close()
        self.store.close()
