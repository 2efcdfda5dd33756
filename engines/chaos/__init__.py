"""Chaos engineering: scheduled experiments within a blast radius, a steady-state hypothesis, abort and rollback
(docs/chaos.md)."""

from engines.chaos.catalog import DAILY, GAME_DAY, KINDS, Kind
from engines.chaos.engine import ChaosEngineer, ChaosEngineerConfig, Run, Spec
from engines.chaos.hypothesis import Probe, SteadyState, Violation

__all__ = ["DAILY", "GAME_DAY", "KINDS", "ChaosEngineer", "ChaosEngineerConfig", "Kind", "Probe", "Run", "Spec",
           "SteadyState", "Violation"]
