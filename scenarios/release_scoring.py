"""Release figures of a run, from the twin's releases (ground truth: each release's drawn effect) and deploys.

* ``releases_shipped`` — releases after each service's first version (the pipeline's and engines' builds);
  ``releases_bad`` — those with a harmful effect (``bad_deploy`` or ``memory_leak`` faults in the truth).
* ``bad_releases_reaching_full`` — bad releases that ran on 100 % of their service: a deploy of it at fraction
  1 (a promotion, or a rollback that landed on it) at any time.  The target is 0.
* ``good_releases_rolled_back`` — releases without a harmful effect that an engine or a human rolled back
  (``rollbacks_of_good_releases`` counts rollbacks; this counts releases); ``improvements_promoted`` — the
  share of the releases that improve a metric (``faster``, ``efficient``) that reached 100 %.
* ``change_success_rate`` — of the releases that reached 100 %, the share without a harmful effect (DORA's
  change success: changes in production that did not degrade it).
* ``bad_release_detection_s`` — mean time from a bad release's first deploy to its rollback (by an engine or
  a human), over the bad releases rolled back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twin.world import World

HARMFUL = frozenset({"error_ratio", "latency", "cpu", "memory", "memory_leak"})
IMPROVING = frozenset({"faster", "efficient"})
RELEASE_METRICS = ("releases_shipped", "releases_bad", "bad_releases_reaching_full", "good_releases_rolled_back",
                   "improvements_promoted", "change_success_rate", "bad_release_detection_s")


def release_metrics(world: World) -> dict[str, Any]:
    rm = getattr(world, "releases", None)
    rels = [r for r in getattr(rm, "releases", ()) if r.service >= 0 and r.seq > 1]
    if not rels:
        return {k: None for k in RELEASE_METRICS} | {"releases_shipped": 0}
    names = world.svc_names
    full = {(e.service, e.version) for e in rm.events if e.fraction >= 1.0}
    rolled: dict[tuple[str, str], float] = {}
    for t, svc, ver, _bad, actor in getattr(world.truth, "rollbacks", ()):
        if actor != "pipeline":
            rolled.setdefault((svc, ver), t)
    bad = [r for r in rels if r.effect in HARMFUL]
    reached = [r for r in rels if (names[r.service], r.version) in full]
    delays = [rolled[(names[r.service], r.version)] - r.at for r in bad if (names[r.service], r.version) in rolled]
    better = [r for r in rels if r.effect in IMPROVING]
    return {
        "releases_shipped": len(rels),
        "releases_bad": len(bad),
        "bad_releases_reaching_full": sum(1 for r in reached if r.effect in HARMFUL),
        "good_releases_rolled_back": sum(1 for r in rels if r.effect not in HARMFUL
                                         and (names[r.service], r.version) in rolled),
        "improvements_promoted": (sum(1 for r in better if (names[r.service], r.version) in full) / len(better)
                                  if better else None),
        "change_success_rate": (sum(1 for r in reached if r.effect not in HARMFUL) / len(reached)
                                if reached else None),
        "bad_release_detection_s": sum(delays) / len(delays) if delays else None,
    }
