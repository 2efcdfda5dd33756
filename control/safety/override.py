"""Emergency override, disabling automation, and multi-approved changes to the safety limits.

* :meth:`Overrides.emergency_override` needs an incident id, an operator id, a
  justification and a TOTP code (MFA) of an enrolled operator; it pauses all
  automation (default 30 minutes, as in the design's runbook).
* :meth:`Overrides.disable_automation` pauses automation without MFA (the safe
  direction); ending any pause early needs MFA.
* :meth:`Overrides.propose_limits` / :meth:`Overrides.approve_limits`: new
  safety limits apply only after ``needed`` (>= 2) distinct operators other
  than the proposer approved them.

``now`` is the caller's clock; TOTP codes are checked against it, so live
callers pass wall time.  A code is accepted once (no replay).
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass

import pyotp

from control.safety.config import SafetyConfig
from control.safety.store import Pause, SafetyStore

DEFAULT_OVERRIDE_SECONDS = 30 * 60.0
TOTP_STEP = 30


class OverrideError(Exception):
    """A refused override or limit change; the message says why."""


@dataclass(frozen=True, slots=True)
class LimitChange:
    id: int
    proposed_by: str
    needed: int
    approvers: tuple[str, ...]
    status: str  # pending | applied
    config: SafetyConfig


class Overrides:
    """Operator-facing safety controls on a :class:`SafetyStore`."""

    def __init__(self, store: SafetyStore) -> None:
        self.store = store

    # -------------------------------------------------------------- operators
    def enroll(self, operator: str, now: float, secret: str | None = None) -> str:
        """Register ``operator`` for MFA; returns the base32 TOTP secret (show it once)."""
        if not operator.strip():
            raise OverrideError("operator id must not be empty")
        if self.store.execute("SELECT 1 FROM operators WHERE id=?", (operator,)).fetchone():
            raise OverrideError(f"operator {operator!r} is already enrolled")
        secret = secret or pyotp.random_base32()
        try:
            pyotp.TOTP(secret).at(0)
        except (ValueError, TypeError) as e:
            raise OverrideError(f"unusable TOTP secret: {e}") from None
        self.store.execute("INSERT INTO operators(id, secret, created_at) VALUES (?,?,?)", (operator, secret, now))
        return secret

    def provisioning_uri(self, operator: str, secret: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=operator, issuer_name="zeroops")

    def verify_mfa(self, operator: str, code: str, now: float) -> None:
        """Accept a current TOTP code (±1 step) of ``operator`` once; raise :class:`OverrideError` otherwise."""
        with self.store.transaction() as db:
            row = db.execute("SELECT secret, last_step FROM operators WHERE id=?", (operator,)).fetchone()
            if row is None:
                raise OverrideError(f"operator {operator!r} is not enrolled (zeroops override enroll --operator ID)")
            totp = pyotp.TOTP(row[0])
            code = str(code).strip()
            step_now = int(now // TOTP_STEP)
            for step in (step_now, step_now - 1, step_now + 1):
                if step >= 0 and hmac.compare_digest(totp.at(step * TOTP_STEP), code):
                    if step <= row[1]:
                        raise OverrideError("MFA code already used; wait for the next code")
                    db.execute("UPDATE operators SET last_step=? WHERE id=?", (step, operator))
                    return
        raise OverrideError(f"MFA code rejected for operator {operator!r}")

    # ----------------------------------------------------------------- pauses
    def emergency_override(self, now: float, incident: str, operator: str, justification: str, code: str,
                           duration: float = DEFAULT_OVERRIDE_SECONDS) -> Pause:
        """Pause all automation for ``duration`` seconds under an incident, after MFA."""
        for name, value in (("incident", incident), ("operator", operator), ("justification", justification)):
            if not value or not value.strip():
                raise OverrideError(f"{name} must not be empty")
        if duration <= 0:
            raise OverrideError(f"duration must be > 0 seconds, got {duration}")
        self.verify_mfa(operator, code, now)
        return self.store.add_pause("override", now, now + duration, incident=incident, operator=operator,
                                    justification=justification)

    def disable_automation(self, now: float, duration: float, operator: str = "", reason: str = "") -> Pause:
        """Pause all automation for ``duration`` seconds (no MFA: this only makes things safer)."""
        if duration <= 0:
            raise OverrideError(f"duration must be > 0 seconds, got {duration}")
        return self.store.add_pause("disable", now, now + duration, operator=operator or None,
                                    justification=reason or None)

    def resume(self, now: float, operator: str, code: str) -> int:
        """End every pause in force now (needs MFA); returns how many ended."""
        self.verify_mfa(operator, code, now)
        return self.store.end_pauses(now, operator)

    def active(self, now: float) -> list[Pause]:
        return [p for p in self.store.pauses() if p.active(now)]

    # ------------------------------------------------------------ limit changes
    def propose_limits(self, now: float, config: SafetyConfig, proposed_by: str, justification: str,
                       needed: int = 2) -> int:
        """Propose new limits; they apply once ``needed`` other operators approve."""
        if not proposed_by.strip() or not justification.strip():
            raise OverrideError("a limit change needs a proposer and a justification")
        needed = max(2, needed)
        cur = self.store.execute(
            "INSERT INTO config_changes(proposed_at, proposed_by, justification, config_json, needed, status)"
            " VALUES (?,?,?,?,?, 'pending')",
            (now, proposed_by, justification, json.dumps(config.model_dump(mode="json")), needed),
        )
        return int(cur.lastrowid or 0)

    def approve_limits(self, now: float, change_id: int, approver: str) -> LimitChange:
        """Add ``approver``'s approval; applies the change when enough distinct approvers agree."""
        with self.store.transaction() as db:
            row = db.execute("SELECT proposed_by, needed, status FROM config_changes WHERE id=?",
                             (change_id,)).fetchone()
            if row is None:
                raise OverrideError(f"no limit change #{change_id}")
            if row[2] != "pending":
                raise OverrideError(f"limit change #{change_id} is {row[2]}, not pending")
            if approver == row[0]:
                raise OverrideError("the proposer cannot approve their own limit change")
            if db.execute("SELECT 1 FROM config_votes WHERE change_id=? AND approver=?",
                          (change_id, approver)).fetchone():
                raise OverrideError(f"{approver!r} already approved limit change #{change_id}")
            db.execute("INSERT INTO config_votes(change_id, approver, at) VALUES (?,?,?)", (change_id, approver, now))
            n = db.execute("SELECT COUNT(*) FROM config_votes WHERE change_id=?", (change_id,)).fetchone()[0]
            if n >= row[1]:
                db.execute("UPDATE config_changes SET status='applied', applied_at=? WHERE id=?", (now, change_id))
        return self.limit_change(change_id)

    def limit_change(self, change_id: int) -> LimitChange:
        row = self.store.execute("SELECT id, proposed_by, needed, status, config_json FROM config_changes WHERE id=?",
                                 (change_id,)).fetchone()
        if row is None:
            raise OverrideError(f"no limit change #{change_id}")
        voters = tuple(r[0] for r in self.store.execute(
            "SELECT approver FROM config_votes WHERE change_id=? ORDER BY at, approver", (change_id,)))
        return LimitChange(row[0], row[1], row[2], voters, row[3], SafetyConfig.model_validate(json.loads(row[4])))

    def limit_changes(self) -> list[LimitChange]:
        return [self.limit_change(int(r[0])) for r in self.store.execute("SELECT id FROM config_changes ORDER BY id")]
