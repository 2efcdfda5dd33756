"""Print ``benchmarks/results.json`` as markdown tables: ``python -m benchmarks.report``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.measure import RESULTS


def fleet_table(data: dict[str, Any]) -> str:
    lines = ["| case | servers / services | simulated | wall (s) | real-time factor | target | peak RSS (MB) | status |",
             "|---|---|---|---|---|---|---|---|"]
    for name in ("fleet-1k-week", "fleet-10k-day"):
        r = data.get(name)
        if not r:
            continue
        target = f">= {r['target_rtf']:,}x" + (f", <= {r['target_rss_mb']:,} MB" if r.get("target_rss_mb") else "")
        lines.append(f"| {name} | {r['servers']:,} / {r['services']} | {r['simulated_s'] / 86400:g} d | "
                     f"{r['wall_s']:.1f} | {r['realtime_factor']:,}x | {target} | {r['peak_rss_mb']:.0f} | {r['targets']} |")
    return "\n".join(lines)


def naive_table(data: dict[str, Any]) -> str:
    lines = ["| static fleet | naive wall (s) | twin wall (s) | speed-up | naive RTF | twin RTF |", "|---|---|---|---|---|---|"]
    for size in ("100-day", "1k-6h"):
        n, t = data.get(f"naive-{size}-static"), data.get(f"twin-{size}-static")
        if not (n and t):
            continue
        lines.append(f"| {t['servers']:,} servers / {t['services']} services, {t['simulated_s'] / 3600:g} h | "
                     f"{n['wall_s']:.2f} | {t['wall_s']:.2f} | {n['wall_s'] / t['wall_s']:.1f}x | "
                     f"{n['realtime_factor']:,}x | {t['realtime_factor']:,}x |")
    return "\n".join(lines)


def main(path: Path = RESULTS) -> None:
    data = json.loads(path.read_text()) if path.exists() else {}
    if not data:
        print(f"no results in {path}: run `make bench` first")
        return
    machine = next(iter(data.values())).get("machine", "?")
    print(f"Machine: {machine}\n")
    print(fleet_table(data))
    print()
    print(naive_table(data))


if __name__ == "__main__":
    main()
