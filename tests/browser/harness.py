"""The browser tests' handles: a running server with its tokens, and a page's console errors."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Server:
    """A running ``zeroops serve`` and the tokens minted for it."""

    base: str
    tokens: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] = field(repr=False)

    def get(self, path: str, role: str = "viewer") -> Any:
        req = urllib.request.Request(self.base + path, headers={"Authorization": f"Bearer {self.tokens[role]}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def post(self, path: str, body: dict[str, Any], role: str = "admin") -> Any:
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {self.tokens[role]}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:]) if self.log.exists() else ""


@dataclass
class Console:
    """Console errors, uncaught exceptions and requests to anywhere but the server, seen by a page."""

    errors: list[str] = field(default_factory=list)

    def check(self, shot: Path | None = None) -> None:
        assert not self.errors, f"browser console errors: {self.errors}" + (f" (screenshot: {shot})" if shot else "")
