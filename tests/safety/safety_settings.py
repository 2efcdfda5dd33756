"""Hypothesis settings for the safety suites, applied per test (no global profile load).

``ZEROOPS_SAFETY_PROFILE=thorough`` runs many more examples; the default ``ci``
keeps the whole safety suite well under a minute on two cores.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile("safety-ci", max_examples=60, deadline=None, derandomize=True,
                          suppress_health_check=_SUPPRESS, print_blob=True)
settings.register_profile("safety-thorough", max_examples=1000, deadline=None, suppress_health_check=_SUPPRESS,
                          print_blob=True)

NAME = "safety-" + os.environ.get("ZEROOPS_SAFETY_PROFILE", "ci")
PROFILE = settings.get_profile(NAME)


def scaled(n: int) -> settings:
    """The profile with ``max_examples`` scaled: ``n`` examples in ci, 10x in thorough."""
    return settings(PROFILE, max_examples=n if NAME == "safety-ci" else 10 * n)
