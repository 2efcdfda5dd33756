"""``zeroops chaos run FILE --scenario S``: a Chaos Toolkit experiment inside a scenario; ``zeroops chaos
validate FILE``: check an experiment file (docs/chaos.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_DEVIATED, EXIT_INPUT = 0, 1, 2
PLAN_ENGINE = "chaos_engineer_plan"  # the chaos engine, registered for one run with the experiment as its plan


def run_experiment(path: str, scenario: str, engines: str | None = None, seed: int | None = None,
                   at: float = 1800.0, duration: float | None = None) -> dict[str, Any]:
    """Run the experiment in ``path`` inside ``scenario`` beside its engine set; the chaos engine's log, the
    resilience figures and the ops figures of the run."""
    from engines.chaos import ChaosEngineer, ChaosEngineerConfig
    from engines.registry import REGISTRY, EngineSetSpec
    from scenarios.loader import load_scenario
    from scenarios.runner import run_scenario
    from scenarios.scoring import METRICS
    from zeroops.chaostoolkit.experiment import load_experiment, to_plan

    exp = load_experiment(path)
    specs = to_plan(exp)
    scn = load_scenario(scenario)
    base = scn.engine_set(engines or scn.engines[0])
    longest = sum((s.duration or 900.0) for s in specs) + 1800.0 * len(specs)
    scn = scn.model_copy(update={"duration": duration or min(scn.duration, at + longest)})
    cfg = ChaosEngineerConfig(business_days=tuple(range(7)), start_hour=0.0, end_hour=24.0, gap_s=1800.0)
    engines_log: list[ChaosEngineer] = []

    def build(c: ChaosEngineerConfig) -> ChaosEngineer:
        e = ChaosEngineer(c, plan=specs)
        e.next_at = at
        engines_log.append(e)
        return e

    REGISTRY.register(PLAN_ENGINE, build, ChaosEngineerConfig, replace=True)
    try:
        uses = [*(u.model_dump() for u in base.engines or ()), {"engine": PLAN_ENGINE, **cfg.model_dump()}]
        spec = EngineSetSpec.model_validate({"name": f"{base.name}-chaos", "engines": uses,
                                             "handles_alerting": base.alerting})
        result = run_scenario(scn, spec, seed=seed, base_dir=Path(scenario).parent)
    finally:
        REGISTRY.unregister(PLAN_ENGINE)
    m = result.score.metrics
    keep = [k for k in METRICS if k.startswith(("chaos_", "resilience_"))] + [
        "incidents", "incidents_chaos", "mttd_s", "mttr_s", "ttm_s", "detection_precision", "automation_rate",
        "availability", "slo_violation_minutes"]
    return {"experiment": exp.title, "file": str(path), "scenario": scn.name, "engines": spec.name,
            "seed": result.seed, "runs": [r.as_dict() for e in engines_log for r in e.log],
            "metrics": {k: m.get(k) for k in keep}}


def cmd_run(a: argparse.Namespace) -> int:
    from engines.registry import RegistryError
    from scenarios.loader import ScenarioError
    from zeroops.chaostoolkit.experiment import ExperimentError

    try:
        out = run_experiment(a.file, a.scenario, a.engines, a.seed, a.at, a.duration)
    except (ExperimentError, RegistryError, ScenarioError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    if a.json:
        print(json.dumps(out, indent=1, default=str))
    else:
        print(render(out))
    return EXIT_DEVIATED if any(r["outcome"] != "completed" for r in out["runs"]) else EXIT_OK


def render(out: dict[str, Any]) -> str:
    lines = [f"{out['experiment']} ({out['file']}) in {out['scenario']} with {out['engines']}, seed {out['seed']}"]
    for r in out["runs"]:
        v = r["violation"]
        lines.append(f"  {r['experiment']}: {r['fault']} on {r['target']} ({r['blast_radius']}): {r['outcome']}"
                     f" - {r['detail']}")
        if v:
            lines.append(f"    violation at {v['sample_at']:.0f} s, aborted {r['abort_delay_s']:.0f} s later; "
                         f"rollback: {', '.join(r['rollbacks']) or 'none (ends at its duration)'}")
    m = out["metrics"]
    lines.append("  " + ", ".join(f"{k} {_fmt(m.get(k))}" for k in (
        "resilience_score", "resilience_recovery", "resilience_detection", "resilience_blast_radius",
        "resilience_auto_remediation", "resilience_coverage", "chaos_faults_left")))
    lines.append("  ops: " + ", ".join(f"{k} {_fmt(m.get(k))}" for k in (
        "incidents_chaos", "mttd_s", "mttr_s", "automation_rate", "availability")))
    if m.get("resilience_weaknesses"):
        lines.append(f"  weaknesses: {m['resilience_weaknesses']}")
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def cmd_validate(a: argparse.Namespace) -> int:
    from zeroops.chaostoolkit.experiment import ExperimentError, load_experiment, to_plan

    try:
        exp = load_experiment(a.file)
        plan = to_plan(exp)
    except ExperimentError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT
    for s in plan:
        print(f"{exp.path}: {s.name}: {s.kind.fault} on {s.target} ({s.kind.radius})")
    return EXIT_OK


def add_chaos_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("chaos", help="chaos experiments (Chaos Toolkit format) inside a scenario",
                       description="Chaos Toolkit experiments on the twin (docs/chaos.md); the real `chaos run` "
                                   "drives the twin or OpenStack through zeroops.chaostoolkit.")
    s = p.add_subparsers(dest="chaos_cmd")
    r = s.add_parser("run", help="run an experiment file inside a scenario, beside its engine set",
                     description="Run a Chaos Toolkit experiment (JSON or YAML) with the chaos engine inside a "
                                 "scenario: steady-state watch, abort and rollback, resilience score.")
    r.add_argument("file", metavar="FILE", help="a Chaos Toolkit experiment (.json, .yaml)")
    r.add_argument("--scenario", required=True, help="the scenario file to run it in")
    r.add_argument("--engines", help="the engine set beside the chaos engine (default: the scenario's first)")
    r.add_argument("--seed", type=int, help="override the scenario's seed")
    r.add_argument("--at", type=float, default=1800.0, help="simulated seconds before the experiment starts")
    r.add_argument("--duration", type=float, help="simulated seconds to run (default: long enough for the plan)")
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    r.set_defaults(fn=cmd_run)
    v = s.add_parser("validate", help="check an experiment file", description="Check a Chaos Toolkit experiment "
                     "file and print the plan it makes for the chaos engine.")
    v.add_argument("file", metavar="FILE")
    v.set_defaults(fn=cmd_validate)
    p.set_defaults(fn=lambda a: (p.print_help(), EXIT_INPUT)[1])
