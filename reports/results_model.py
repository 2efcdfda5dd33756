"""A results folder as the reports read it: runs grouped by scenario, engine set and seed.

Reads ``summary.json`` (every run's metrics and target statuses, docs/results.md) and, when present, the
runs of ``zeroops sweep`` (``sweep.json``, else ``sweep.csv``: one row per scenario × engine set × seed): they
replace the summary's runs of the same scenario and engine set, so figures get intervals across seeds.  A
sweep folder without ``summary.json`` is read from the sweep alone.  Nothing here computes a figure the files do not hold.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

BASELINES = ("static", "reactive")  # the registered baseline engine sets (engines/registry.py)
SWEEP_FILES = ("sweep.json", "sweep.csv")  # written by ``zeroops sweep`` (scenarios/sweep_stats.py)
NOT_METRICS = {"scenario", "engines", "seed", "wall_s", "worker", "targets", "targets_met", "targets_missed"}


class ReportError(ValueError):
    """The folder is not a results folder written by ``zeroops suite``/``run``; the message says why."""


def _num(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    return v


@dataclass
class Results:
    """Every run of a results folder. ``runs`` are summary dicts (scenario, engines, seed, metrics, targets)."""

    folder: Path
    runs: list[dict[str, Any]]
    sweep: Path | None = None
    scenarios: list[str] = field(default_factory=list)
    engines: list[str] = field(default_factory=list)

    @property
    def primary(self) -> str:
        """The engine set under test: the last one that is not a baseline (else the last one)."""
        others = [e for e in self.engines if e not in BASELINES] or self.engines
        n = {e: len(self.of(engines=e)) for e in others}
        return max(reversed(others), key=lambda e: n[e])  # the most runs; of equals, the last listed

    @property
    def baselines(self) -> list[str]:
        return [e for e in self.engines if e != self.primary]

    def seeds(self) -> int:
        """The most seeds any (scenario, engine set) has."""
        n: dict[tuple[str, str], int] = {}
        for r in self.runs:
            k = (r["scenario"], r["engines"])
            n[k] = n.get(k, 0) + 1
        return max(n.values(), default=0)

    def of(self, scenario: str | None = None, engines: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.runs if (scenario is None or r["scenario"] == scenario)
                and (engines is None or r["engines"] == engines)]

    def run_dir(self, scenario: str, engines: str) -> Path:
        return self.folder / scenario / engines

    def primary_in(self, scenario: str) -> str:
        """The engine set under test in one scenario: the primary if it ran there, else its last non-baseline."""
        here = [e for e in self.engines if self.of(scenario, e)]
        if self.primary in here or not here:
            return self.primary
        return ([e for e in here if e not in BASELINES] or here)[-1]


def _sweep_runs(path: Path) -> list[dict[str, Any]]:
    """One run dict per row of ``sweep.json`` (its ``runs``, targets included) or ``sweep.csv``."""
    try:
        if path.suffix == ".json":
            doc = json.loads(path.read_text())
            rows = doc.get("runs") if isinstance(doc, dict) else None
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise ReportError(f"{path}: expected an object with a 'runs' list (written by zeroops sweep)")
        else:
            rows = pd.read_csv(path).to_dict("records")
    except (OSError, ValueError) as e:
        raise ReportError(f"{path}: unreadable sweep table ({e})") from None
    cols = set().union(*(r.keys() for r in rows)) if rows else set()
    missing = [c for c in ("scenario", "engines", "seed") if c not in cols]
    if missing:
        raise ReportError(f"{path}: not a sweep table: missing columns {', '.join(missing)} "
                          "(expected one row per scenario, engines, seed)")
    out = []
    for row in rows:
        metrics = {k: _num(v) for k, v in row.items() if k not in NOT_METRICS}
        targets = row.get("targets") if isinstance(row.get("targets"), dict) else {}
        out.append({"scenario": str(row["scenario"]), "engines": str(row["engines"]), "seed": row["seed"],
                    "metrics": metrics, "targets": targets, "from": path.name})
    return out


def load_results(folder: Path) -> Results:
    """Read ``folder/summary.json`` (and ``sweep.csv`` when present); clear errors for anything else."""
    folder = Path(folder)
    path = folder / "summary.json"
    if not folder.is_dir():
        raise ReportError(f"{folder}: no such results folder (write one with `zeroops suite --out {folder}`)")
    sweep = next((folder / f for f in SWEEP_FILES if (folder / f).is_file()), None)
    if not path.exists() and sweep is None:
        raise ReportError(f"{folder}: no summary.json (write one with `zeroops suite --out {folder}`)")
    try:
        doc = json.loads(path.read_text()) if path.exists() else {"runs": []}
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), list):
        raise ReportError(f"{path}: expected an object with a 'runs' list")
    runs = []
    for i, r in enumerate(doc["runs"]):
        if not isinstance(r, dict) or not {"scenario", "engines", "metrics"} <= set(r):
            raise ReportError(f"{path}: runs[{i}] lacks scenario, engines or metrics")
        runs.append(r)
    if sweep is not None:
        extra = _sweep_runs(sweep)
        swept = {(r["scenario"], r["engines"]) for r in extra}
        targets = {(r["scenario"], r["engines"]): r.get("targets", {}) for r in runs}
        for r in extra:
            r["targets"] = r["targets"] or targets.get((r["scenario"], r["engines"]), {})
        runs = [r for r in runs if (r["scenario"], r["engines"]) not in swept] + extra
    if not runs:
        raise ReportError(f"{path if path.exists() else sweep}: no runs in it")
    res = Results(folder, runs, sweep)
    res.scenarios = list(dict.fromkeys(r["scenario"] for r in runs))
    res.engines = list(dict.fromkeys(r["engines"] for r in runs))
    return res
