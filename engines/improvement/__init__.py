"""Continuous improvement (issue 10 §1): canary analysis, A/B experiments, and the fixed-threshold peer."""

from engines.improvement.engine import ContinuousImprovement, ContinuousImprovementConfig
from engines.improvement.peer import FixedThresholdCanary, FixedThresholdCanaryConfig

__all__ = ["ContinuousImprovement", "ContinuousImprovementConfig", "FixedThresholdCanary",
           "FixedThresholdCanaryConfig"]
