"""``zeroops live`` in production: leader election, alerts pushed by Alertmanager, /healthz and /metrics.

:func:`add_production_arguments` adds the options, :func:`start_production` wires them around a built
:class:`zeroops.live.LiveController`, :func:`run_production` runs it (under the scope's lease with
``--ha-backend``).  Each part lives in its own module: :mod:`control.leader`, :mod:`adapters.alert_webhook`,
:mod:`control.health`; docs/live-mode.md describes them for operators.

* ``--ha-backend URL`` (``file:///DIR`` one host, ``mysql://USER:PASSWORD@HOST/DB`` several): two controllers
  for one scope, one acts.  Without it an acting controller still takes the scope's lock in a host-wide
  directory (``$ZEROOPS_LOCK_DIR``, else ``/run/lock/zeroops``, else ``<tmp>/zeroops-locks``): a second
  controller for the same scope on this host is refused (exit 6) whatever its journal or state directory.
* ``--webhook-port PORT``: Alertmanager's webhook receiver; its alerts join ``obs.alerts``
  (``$ZEROOPS_WEBHOOK_TOKEN``: the bearer token it must send).
* ``--metrics-port PORT``: ``/metrics`` and ``/healthz``.
* the config's ``sinks:`` (:func:`control.sinks.build_sinks`): where executed pages and notifications go.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from control.leader import (
    DEFAULT_LEASE,
    HAError,
    LeaderLease,
    Leadership,
    attach_leadership,
    check_url,
    lock_name,
    redact,
)

EXIT_CONFIG, EXIT_UNREACHABLE, EXIT_LOCKED = 2, 4, 6  # the values of zeroops.live's EXIT_CODES


def add_production_arguments(p: argparse.ArgumentParser) -> None:
    """The HA, webhook and metrics options of ``zeroops live``."""
    p.add_argument("--ha-backend", metavar="URL", default=os.environ.get("ZEROOPS_HA_BACKEND"),
                   help="leader election for act mode: file:///DIR (controllers on one host) or "
                        "mysql://USER:PASSWORD@HOST[:PORT]/DB (MariaDB/MySQL, several hosts); one controller per "
                        "scope acts, the others stand by (default: $ZEROOPS_HA_BACKEND, else none)")
    p.add_argument("--ha-lease", type=float, default=DEFAULT_LEASE, metavar="SECONDS",
                   help=f"lease of the leader: a standby takes over at most this long after the leader hangs "
                        f"(default {DEFAULT_LEASE:g}; heartbeat a third of it)")
    p.add_argument("--webhook-port", type=int, metavar="PORT",
                   help="receive Alertmanager's webhook on this port (POST /alerts); its alerts join obs.alerts "
                        "($ZEROOPS_WEBHOOK_TOKEN: a bearer token Alertmanager must send)")
    p.add_argument("--webhook-host", default="0.0.0.0", help="address of the webhook receiver (default 0.0.0.0)")
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve /metrics (Prometheus format) and /healthz (JSON) on this port")
    p.add_argument("--metrics-host", default="0.0.0.0", help="address of /metrics and /healthz (default 0.0.0.0)")


def default_lock_dir() -> Path:
    """Where an acting controller without ``--ha-backend`` takes its scope's lock (one per host)."""
    env = os.environ.get("ZEROOPS_LOCK_DIR")
    if env:
        return Path(env).expanduser().absolute()
    run = Path("/run/lock")
    if run.is_dir() and os.access(run, os.W_OK):
        return run / "zeroops"
    return Path(tempfile.gettempdir()) / "zeroops-locks"


@dataclass
class Production:
    """What :func:`start_production` started; :meth:`close` stops it all."""

    lease: LeaderLease | None = None  # the HA lease (--ha-backend)
    guard: LeaderLease | None = None  # the host-wide scope lock without HA
    leadership: Leadership | None = None
    webhook: Any = None
    metrics: Any = None
    health: Any = None
    server: Any = None
    notes: list[str] = field(default_factory=list)

    def close(self) -> None:
        for part in (self.server, self.webhook, self.lease, self.guard):
            if part is not None:
                part.close()


def scope_lock(ctl: Any) -> str:
    """The lock name of a controller's scope: scope name, projects and the cloud's Keystone (else cloud name)."""
    try:
        where = (ctl.adapter.describe() or {}).get("auth_url")
    except Exception:
        where = None
    return lock_name(ctl.scope.name, ctl.scope.projects, where or getattr(ctl.config, "cloud", None))


def start_production(ctl: Any, args: argparse.Namespace) -> Production:
    """Sinks, webhook, leader election (or the host-wide scope lock) and /metrics around ``ctl``; a problem is a
    one-line :class:`zeroops.live.LiveError` (exit 2 bad option, 4 backend unreachable, 6 scope taken)."""
    from zeroops.live import LiveError

    prod = Production()
    try:
        _sinks(ctl, getattr(args, "config", None) or "<config>")
        name = scope_lock(ctl)
        url = getattr(args, "ha_backend", None)
        lease_s = float(getattr(args, "ha_lease", None) or DEFAULT_LEASE)
        if ctl.mode == "act" and url:
            try:
                check_url(url)
                prod.lease = LeaderLease(url, name, lease=lease_s)
            except HAError as e:
                raise LiveError(str(e), EXIT_CONFIG) from None
            try:
                prod.leadership = attach_leadership(ctl, prod.lease)  # starts the lease: the backend must answer
            except HAError as e:
                raise LiveError(f"cannot use the HA backend: {e}", EXIT_UNREACHABLE) from None
            ctl._say(f"[live] HA: {redact(url)} lock {name}: "
                     + ("leader" if prod.lease.is_leader else "standby (another controller leads this scope)"))
        elif url:
            ctl._say("[live] HA: observe mode changes nothing, so it takes no lease (--ha-backend ignored)")
        elif ctl.mode == "act":
            d = default_lock_dir()
            prod.guard = LeaderLease(f"file://{d}", name, lease=lease_s)
            if not prod.guard.poll():
                err = prod.guard.state.last_error
                raise LiveError(f"another zeroops live controller acts for scope {ctl.scope.name!r} on this host "
                                f"(lock {d / name}{'; ' + err if err else ''}); stop it first, or run both with "
                                "--ha-backend for a standby", EXIT_LOCKED)
        port = getattr(args, "webhook_port", None)
        if port is not None:
            from adapters.alert_webhook import AlertWebhook, attach_webhook

            try:
                prod.webhook = AlertWebhook(args.webhook_host, port, token=os.environ.get("ZEROOPS_WEBHOOK_TOKEN")
                                            or None).start()
            except OSError as e:
                raise LiveError(f"--webhook-port {port}: cannot listen on {args.webhook_host}:{port}: "
                                f"{e.strerror or e}", EXIT_CONFIG) from None
            attach_webhook(ctl.adapter, prod.webhook)  # the runtime's, the gate's and the choke point's adapter
            ctl._say(f"[live] Alertmanager webhook: POST {prod.webhook.url}")
        mport = getattr(args, "metrics_port", None)
        if mport is not None:
            from control.health import ControllerMetrics, HealthServer, instrument

            prod.metrics = ControllerMetrics()
            prod.health = instrument(ctl, prod.metrics, leadership=prod.leadership)
            try:
                prod.server = HealthServer(prod.metrics, prod.health, port=mport, host=args.metrics_host)
            except OSError as e:
                raise LiveError(f"--metrics-port {mport}: cannot listen on {args.metrics_host}:{mport}: "
                                f"{e.strerror or e}", EXIT_CONFIG) from None
            ctl._say(f"[live] metrics: {prod.server.url}/metrics, health: {prod.server.url}/healthz")
    except BaseException:
        prod.close()
        raise
    return prod


def _sinks(ctl: Any, source: str) -> None:
    """The config's ``sinks:``: executed pages and notifications are delivered there after the choke point."""
    specs = getattr(ctl.config, "sinks", None)
    if not specs:
        return
    from control.sinks import Delivery, build_sinks
    from zeroops.live import LiveError

    try:
        sinks = build_sinks(specs, "sinks")
    except ValueError as e:
        raise LiveError("invalid config: " + "; ".join(f"{source}: {line}" for line in str(e).splitlines()),
                        EXIT_CONFIG) from None
    if not any(isinstance(fn, Delivery) for fn in ctl.choke.listeners):
        ctl.choke.listeners.append(Delivery(sinks))
        ctl._say(f"[live] pages and notifications -> {', '.join(s.name for s in sinks)}")


def run_production(ctl: Any, prod: Production, duration: float | None = None) -> None:
    """``ctl.run`` with leader election: takeover (journal lock, reconcile) only as leader; else as is."""
    if prod.leadership is None:
        ctl.run(duration)
        return
    ctl.check_prometheus()
    ctl.clock.run(until=None if duration is None else ctl.clock.now() + duration)
