"""Engines see only the adapter seam: checked by import-linter and by reading the sources."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imports_of(folder: str) -> dict[str, set[str]]:
    out = {}
    for f in (ROOT / folder).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        out[str(f.relative_to(ROOT))] = names
    return out


def test_engines_import_neither_twin_nor_simpy_nor_openstack() -> None:
    for f, names in imports_of("engines").items():
        assert not names & {"twin", "simpy", "openstack", "scenarios"}, f


def test_control_plane_imports_neither_twin_nor_simpy_nor_openstack() -> None:
    for f, names in imports_of("control").items():
        assert not names & {"twin", "simpy", "openstack", "scenarios", "zeroops"}, f


def test_twin_never_imports_engines_control_or_adapters() -> None:
    for f, names in imports_of("twin").items():
        assert not names & {"engines", "control", "adapters"}, f


def test_import_linter_contracts_hold() -> None:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(exe).exists():
        pytest.skip("import-linter is not installed")
    r = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "broken" not in r.stdout.lower().replace("0 broken", "")
