"""Benchmarks section of the report, from a pytest-benchmark JSON (``pytest --benchmark-json=FILE``).

Per benchmark: wall time (the case's own ``wall_s`` in ``extra_info`` when recorded, else pytest-benchmark's
mean), real-time factor, peak memory, decisions per second (``actions`` / wall time) and the recorded targets,
whichever of these the JSON holds.  ``benchmarks/results.json`` (one object per case) is read the same way.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from reports.doc import Block, Heading, Image, Para, Table  # noqa: E402
from reports.plots import DPI  # noqa: E402
from reports.results_model import ReportError  # noqa: E402


def _f(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def read_bench(path: Path) -> list[dict[str, Any]]:
    """One row per benchmark: name, wall_s, rtf, peak_mb, decisions_per_s, target_rtf, targets."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ReportError(f"--bench {path}: not a readable JSON file ({e})") from None
    if isinstance(doc, dict) and isinstance(doc.get("benchmarks"), list):
        items = [(b.get("name", "?"), b.get("extra_info") or {}, b.get("stats") or {}) for b in doc["benchmarks"]]
    elif isinstance(doc, dict) and doc and all(isinstance(v, dict) for v in doc.values()):
        items = [(k, v, {}) for k, v in doc.items()]
    else:
        raise ReportError(f"--bench {path}: expected pytest-benchmark JSON (an object with a 'benchmarks' list)")
    rows = []
    for name, x, st in items:
        wall = _f(x.get("wall_s")) or _f(st.get("mean"))
        sim = _f(x.get("simulated_s"))
        rtf = _f(x.get("realtime_factor")) or (sim / wall if sim and wall else None)
        acts = _f(x.get("actions")) or _f(x.get("decisions"))
        dps = _f(x.get("decisions_per_s")) or (acts / wall if acts is not None and wall else None)
        rows.append({"name": str(name), "wall_s": wall, "rtf": rtf, "peak_mb": _f(x.get("peak_rss_mb")),
                     "decisions_per_s": dps, "target_rtf": _f(x.get("target_rtf")),
                     "targets": str(x.get("targets") or ""), "rounds": st.get("rounds")})
    return rows


def _c(v: float | None, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def bench_blocks(path: Path, plots: Path) -> list[Block]:
    rows = read_bench(path)
    out: list[Block] = [Heading(2, "Benchmarks", "benchmarks"),
                        Para(f"From `{Path(path).name}` ({len(rows)} benchmarks); real-time factor = simulated "
                             "time / wall time; decisions per second = actions / wall time.")]
    table = [[r["name"], _c(r["wall_s"], ".3f"), _c(r["rtf"], ",.0f"), _c(r["target_rtf"], ",.0f"),
              _c(r["peak_mb"], ",.1f"), _c(r["decisions_per_s"], ",.0f"), r["targets"] or "–"] for r in rows]
    out.append(Table(["benchmark", "wall time, s", "real-time factor", "target", "peak memory, MB",
                      "decisions / s", "targets"], table,
                     [{"met": "met", "missed": "missed"}.get(r["targets"], "") for r in rows]))
    have = [r for r in rows if r["rtf"]]
    if have:
        fig, ax = plt.subplots(figsize=(11, 0.45 * len(have) + 1.4), constrained_layout=True)
        names = [r["name"] for r in have]
        ax.barh(names, [r["rtf"] for r in have], color="#1f77b4", label="measured")
        tg = [(i, r["target_rtf"]) for i, r in enumerate(have) if r["target_rtf"]]
        if tg:
            ax.scatter([t for _, t in tg], [i for i, _ in tg], marker="|", s=300, color="#c62828", label="target",
                       zorder=3)
        ax.set_xscale("log")
        ax.set_xlabel("real-time factor (simulated s per wall s), log scale")
        ax.invert_yaxis()
        ax.grid(True, axis="x", alpha=0.3)
        ax.legend(fontsize=8)
        p = plots / "benchmarks.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(p, dpi=DPI)
        plt.close(fig)
        out.append(Image(p, "benchmarks: real-time factor vs target"))
    return out
