"""Where live mode keeps its state: one absolute directory for the audit trail, journal, safety state, decisions.

``--state-dir``, else ``$ZEROOPS_STATE_DIR``, else ``/var/lib/zeroops`` for root and
``$XDG_STATE_HOME/zeroops`` (``~/.local/state/zeroops``) for anyone else.  Absolute, so two
controllers (and ``zeroops audit verify``, ``zeroops approvals``) started from different working
directories find the same files.
"""

from __future__ import annotations

import os
from pathlib import Path

STATE_DIR_ENV = "ZEROOPS_STATE_DIR"
AUDIT_FILE = "audit.db"
SAFETY_FILE = "safety.db"
JOURNAL_FILE = "live-journal.sqlite"
DECISIONS_FILE = "live-decisions.jsonl"


def state_dir(explicit: str | Path | None = None) -> Path:
    """The state directory (absolute; not created here)."""
    if explicit:
        return Path(explicit).expanduser().absolute()
    env = os.environ.get(STATE_DIR_ENV)
    if env:
        return Path(env).expanduser().absolute()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/zeroops")
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return (base / "zeroops").absolute()


def in_state_dir(path: str | Path | None, default: str, directory: str | Path | None = None) -> Path:
    """``path`` made absolute: a relative one lies under the state directory; None gives ``default`` there."""
    if path is None or str(path) == "":
        return state_dir(directory) / default
    if str(path) == ":memory:":
        return Path(":memory:")
    p = Path(path).expanduser()
    return p if p.is_absolute() else state_dir(directory) / p
