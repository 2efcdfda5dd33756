"""``zeroops serve``: the control loop behind an authenticated API (docs/serve.md)."""

from __future__ import annotations

from zeroops.serve.app import Settings, create_app
from zeroops.serve.auth import Principal, TokenAuthority, require_role
from zeroops.serve.state import AppState

__all__ = ["AppState", "Principal", "Settings", "TokenAuthority", "create_app", "require_role"]
