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

A release is *rolled back* by a ``RollbackDeploy`` of it, or when an engine or a human (not the pipeline)
deploys an older version of its service to every server after it shipped (a roll back to the last good
version, over a release still in its canary).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twin.releases import FAULT_TYPE

if TYPE_CHECKING:
    from twin.world import World

HARMFUL = frozenset(FAULT_TYPE)  # the effects that make a release a fault: error_ratio, latency, cpu, memory, leaks
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
    rolled = _removed(world, rels)
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


def _removed(world: World, rels: list[Any]) -> dict[tuple[str, str], float]:
    """(service, version) -> when an engine or a human first rolled it back (see the module's docstring)."""
    out: dict[tuple[str, str], float] = {}
    for t, svc, ver, _bad, actor in getattr(world.truth, "rollbacks", ()):
        if actor != "pipeline":
            out.setdefault((svc, ver), t)
    seq = {(world.svc_names[r.service], r.version): r.seq for r in world.releases.releases if r.service >= 0}
    back = [(e.at, e.service, seq.get((e.service, e.version), 0)) for e in world.releases.events
            if e.actor != "pipeline" and e.fraction >= 1.0]
    for r in rels:
        key = (world.svc_names[r.service], r.version)
        t = next((at for at, svc, q in back if svc == key[0] and q < r.seq and at >= r.at), None)
        if t is not None and t < out.get(key, float("inf")):
            out[key] = t
    return out
