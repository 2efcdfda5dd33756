"""Batch workloads: job queues that the servers of a ``workload: batch`` service work off, with deadlines.

Every job's arrival, work (vCPU-seconds) and deadline are drawn when the world is built, from a random stream of
its own (seed, service), so the engine sets compared on one seed face the same jobs.  Each physics tick a batch
service gets ``serving vCPUs × dt`` vCPU-seconds (its ACTIVE, up servers; throttling counted), spent on its
queued jobs first come first served (a fluid model: a job may use every vCPU of the service at once).  A job
completes at the instant its remaining work reaches zero; it misses its deadline if that is after
``arrival + deadline``.  What an operator sees: the ``queue_length`` metric (jobs arrived and not completed), the
service's ``cpu_util`` and its servers' ``server_cpu_util`` (the share of its vCPU time that did work), and the
batch settings on the service (``batch_deadline_s``, ``batch_work_vcpu_s``).  Only the scorer reads the per-job
truth (:meth:`counts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from twin.config import BatchJobs

if TYPE_CHECKING:
    from twin.world import World

STREAM = 0xBA7C4  # spawn key of the batch random streams (independent of the world's six)


@dataclass
class _Queue:
    """One batch service's jobs, in arrival order."""

    svc: int
    arrival: np.ndarray
    deadline_at: np.ndarray
    remaining: np.ndarray  # vCPU-seconds of work left
    completed_at: np.ndarray  # NaN until completed
    head: int = 0  # jobs before head are completed
    arrived: int = 0  # jobs before this have arrived


def job_arrivals(spec: BatchJobs, duration: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(arrival times, work per job) of ``spec`` within ``[0, duration)``, sorted by arrival."""
    times: list[np.ndarray] = []
    for run in spec.schedule:
        starts = np.arange(run.at, duration, run.every) if run.every else np.array([run.at])
        starts = starts[starts < duration]
        times.append(np.repeat(starts, run.jobs))
    if spec.rate_per_hour > 0:
        n = int(rng.poisson(spec.rate_per_hour * duration / 3600.0))
        times.append(rng.uniform(0.0, duration, n))
    t = np.sort(np.concatenate(times)) if times else np.zeros(0)
    if spec.work_sigma > 0:
        mu = np.log(spec.work_vcpu_s) - spec.work_sigma**2 / 2
        work = rng.lognormal(mu, spec.work_sigma, len(t))
    else:
        work = np.full(len(t), spec.work_vcpu_s)
    return t, work


class BatchQueues:
    """The job queues of a world's batch services (the world holds one only if it has a batch service)."""

    def __init__(self, world: World) -> None:
        self.queues: list[_Queue] = []
        nsvc = world.n_svc
        self.mask = np.zeros(nsvc, dtype=bool)
        self.queue_length = np.zeros(nsvc)
        self.busy = np.zeros(nsvc)  # share of the service's vCPU time that did work, last tick
        for i, s in enumerate(world.cfg.services):
            if s.workload != "batch" or s.batch is None:
                continue
            rng = np.random.default_rng([world.cfg.seed, STREAM, i])
            t, work = job_arrivals(s.batch, world.cfg.duration, rng)
            self.queues.append(_Queue(i, t, t + s.batch.deadline, work.copy(), np.full(len(t), np.nan)))
            self.mask[i] = True
            world.svc_settings[i].update({"batch_deadline_s": float(s.batch.deadline),
                                          "batch_work_vcpu_s": float(s.batch.work_vcpu_s)})
        self.services = [world.svc_names[q.svc] for q in self.queues]

    def step(self, t: float, dt: float, vcpus: np.ndarray) -> None:
        """Spend ``vcpus[svc] × dt`` vCPU-seconds of each batch service on its queue, over the tick ending at ``t``."""
        t0 = t - dt
        for q in self.queues:
            q.arrived = int(np.searchsorted(q.arrival, t, side="right"))
            v = float(vcpus[q.svc])
            budget = v * dt
            lo, hi = q.head, q.arrived
            spent = 0.0
            if budget > 0 and hi > lo:
                rem = q.remaining[lo:hi]
                start = np.maximum(q.arrival[lo:hi], t0)  # a job arriving within the tick starts at its arrival
                run = rem / v
                c = np.cumsum(run)
                # FIFO finish times: each job starts when the one before it ends, or at its arrival if later
                fin = c + np.maximum.accumulate(start - (c - run))
                ndone = int(np.searchsorted(fin, t + 1e-9, side="right"))  # fin is increasing
                if ndone:
                    q.completed_at[lo:lo + ndone] = fin[:ndone]
                    spent += float(rem[:ndone].sum())
                    q.remaining[lo:lo + ndone] = 0.0
                    q.head = lo + ndone
                if q.head < hi:  # the next job works for what is left of the tick after it starts
                    part = min(float(rem[ndone]), max(t - float(fin[ndone] - run[ndone]), 0.0) * v)
                    q.remaining[q.head] -= part
                    spent += part
            self.queue_length[q.svc] = q.arrived - q.head
            self.busy[q.svc] = spent / budget if budget > 0 else 0.0

    def cpu_util(self, cpu: np.ndarray) -> np.ndarray:
        """The service CPU utilisation with each batch service's busy share in place of its request load."""
        return np.where(self.mask, self.busy, cpu)

    def row_util(self, util: np.ndarray, svc: np.ndarray) -> np.ndarray:
        """Per-server (or per-group) utilisation with the servers of batch services at their service's busy share."""
        return np.where(self.mask[svc], self.busy[svc], util)

    def counts(self, run_end: float) -> dict[str, dict[str, int]]:
        """Per batch service: jobs arrived, completed, completed on time, missed (late, or past the deadline
        and still pending at ``run_end``) and pending (deadline still ahead at ``run_end``)."""
        out: dict[str, dict[str, int]] = {}
        for name, q in zip(self.services, self.queues, strict=True):
            arrived = q.arrival <= run_end
            done = ~np.isnan(q.completed_at) & (q.completed_at <= run_end + 1e-9)
            late = done & (q.completed_at > q.deadline_at + 1e-9)
            overdue = arrived & ~done & (q.deadline_at <= run_end)
            out[name] = {"arrived": int(arrived.sum()), "completed": int(done.sum()),
                         "on_time": int((done & ~late).sum()), "missed": int(late.sum() + overdue.sum()),
                         "pending": int((arrived & ~done & ~overdue).sum())}
        return out
