"""Does a runbook fit an incident? The reasons, or None."""

from __future__ import annotations

from adapters.base import Observation
from engines.ops.types import IncidentContext
from engines.runbooks import bindings as bnd
from engines.runbooks.schema import Runbook
from engines.runbooks.templating import RenderError, render


def why_it_fits(rb: Runbook, ctx: IncidentContext, obs: Observation, b: bnd.Bindings, focus: str | None) -> list[str] | None:
    """Why ``rb`` fits the incident with ``focus`` as its component, or None when it does not."""
    v = b.vars
    cls = v["fault_class"]
    why: list[str] = []
    comp = f"{v['component']} ({v['component_kind'] or 'unknown kind'})"
    if rb.fault_classes:
        if cls not in rb.fault_classes:
            return None
        why.append(f"{comp} is classified {cls}")
    m = rb.match
    if m is not None:
        if m.fault_class is not None:
            if cls not in m.fault_class:
                return None
            why.append(f"{comp} is classified {cls}")
        if m.component_kind is not None:
            if v["component_kind"] not in m.component_kind:
                return None
            why.append(f"{v['component']} is a {v['component_kind']}")
        if m.severity is not None:
            if ctx.severity not in m.severity:
                return None
            why.append(f"severity {ctx.severity}")
        if m.service is not None:
            if v["service"] not in m.service:
                return None
            why.append(f"service {v['service']}")
        for am in m.anomaly or ():
            hit = next((a for a in ctx.anomalies if (am.metric is None or a.metric == am.metric)
                        and (am.source is None or a.source == am.source)
                        and (not am.on_focus or a.component in (v["component"], v["service"]))), None)
            if hit is None:
                return None
            why.append(f"{hit.source} anomaly {hit.metric} on {hit.component}")
        if m.recent_deploy is not None:
            svc = v["service"]
            deps = [d for d in obs.deploys(since=b.t_ref - m.recent_deploy) if d.service == svc
                    and d.at <= ctx.declared_at]
            if not deps:
                return None
            d = deps[-1]
            why.append(f"{svc} got version {d.version} (from {d.previous}) {ctx.declared_at - d.at:.0f} s before "
                       "the incident")
    for name in sorted(rb.base_vars_used()):
        if v.get(name) is None:
            return None
    for s in rb.steps:
        if s.for_each is None:
            try:
                render(s.params, v)
            except RenderError:
                return None
    return list(dict.fromkeys(why))
