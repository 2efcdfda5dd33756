"""Batch workloads: job queues worked off by a service's vCPUs, deadlines, what operators see, scoring."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from adapters.base import Observation
from adapters.sim import SimAdapter
from scenarios.schema import Scenario
from tests.builders import scenario_dict
from tests.gaming import run_engines
from twin.batch import job_arrivals
from twin.config import BatchJobs
from twin.world import World


def _batch_scenario(servers: int = 1, jobs: int = 3, work: float = 100.0, deadline: float = 120.0,
                    duration: float = 600.0, at: float = 10.0, tick: float = 5.0, **batch: Any) -> Scenario:
    d = scenario_dict(duration=duration, tick=tick)
    d["services"].append({"name": "etl", "project": "p", "flavor": "small", "servers": servers, "min_servers": 1,
                          "max_servers": 8, "workload": "batch",
                          "batch": {"schedule": [{"at": at, "jobs": jobs}], "work_vcpu_s": work,
                                    "deadline": deadline, **batch}})
    return Scenario.model_validate(d)


def test_schedule_and_poisson_arrivals() -> None:
    spec = BatchJobs(schedule=[{"at": 3600, "every": 86400, "jobs": 3}], work_vcpu_s=10, deadline=60)
    t, work = job_arrivals(spec, 2 * 86400.0, np.random.default_rng(0))
    assert list(t) == [3600.0] * 3 + [90000.0] * 3 and list(work) == [10.0] * 6
    spec = BatchJobs(rate_per_hour=60, work_vcpu_s=10, work_sigma=0.5, deadline=60)
    t, work = job_arrivals(spec, 36000.0, np.random.default_rng(0))
    assert 500 < len(t) < 700 and np.all(np.diff(t) >= 0) and 7 < work.mean() < 13


def test_fifo_completions_and_a_missed_deadline() -> None:
    """One 2-vCPU server, three 100 vCPU-s jobs at t=10: done at 60, 110, 160; the deadline (130) misses one."""
    w = World(_batch_scenario())
    w.run()
    q = w.batch.queues[0]
    assert q.completed_at == pytest.approx([60.0, 110.0, 160.0])
    assert w.batch.counts(w.now())["etl"] == {"arrived": 3, "completed": 3, "on_time": 2, "missed": 1, "pending": 0}


def test_jobs_arriving_within_a_tick_start_at_their_arrival() -> None:
    w = World(_batch_scenario(work=4.0, at=13.0, tick=10.0))
    w.run()
    assert w.batch.queues[0].completed_at == pytest.approx([15.0, 17.0, 19.0])


def test_operators_see_queue_length_busy_cpu_and_the_deadline() -> None:
    w = World(_batch_scenario(jobs=20))
    adapter = SimAdapter(w)
    w.run(until=300)
    obs = Observation(adapter, w.now())
    assert obs.latest("queue_length")["etl"] > 10  # 20 jobs of 50 s each on one server: most still queued
    assert obs.latest("queue_length")["api"] == 0
    assert obs.latest("cpu_util")["etl"] > 0.9  # busy working them off
    etl_servers = [x.id for x in obs.servers() if x.service == "etl"]
    assert etl_servers and all(obs.window("server_cpu_util", 60, server=x).last() > 0.9 for x in etl_servers)
    etl = obs.services["etl"]
    assert etl.settings["batch_deadline_s"] == 120.0 and etl.settings["batch_work_vcpu_s"] == 100.0


def test_pending_jobs_with_deadlines_ahead_are_not_misses() -> None:
    w = World(_batch_scenario(jobs=50, deadline=10_000.0, duration=600.0))
    w.run()
    c = w.batch.counts(w.now())["etl"]
    assert c["missed"] == 0 and c["pending"] == 50 - c["completed"] > 0


def test_scoring_counts_jobs_and_misses_and_interactive_worlds_report_none() -> None:
    m = run_engines(_batch_scenario(), "static").score.metrics
    assert (m["batch_jobs"], m["batch_jobs_completed"], m["batch_deadline_misses"]) == (3, 3, 1)
    plain = run_engines(Scenario.model_validate(scenario_dict(duration=300)), "static").score.metrics
    assert plain["batch_deadline_misses"] is None and plain["batch_jobs_completed"] is None


def test_gaming_doing_nothing_misses_deadlines_that_scaling_meets() -> None:
    """A do-nothing engine leaves the batch to one server and misses; the reactive baseline scales and meets
    more deadlines; deleting capacity cannot hide a miss (overdue pending jobs count)."""
    scn = _batch_scenario(jobs=40, deadline=600.0, duration=1800.0)
    idle = run_engines(scn, "do-nothing").score.metrics
    hpa = run_engines(scn, "reactive").score.metrics
    assert idle["batch_deadline_misses"] > 20
    assert hpa["batch_deadline_misses"] < idle["batch_deadline_misses"]


@pytest.mark.parametrize(("patch", "needle"), [
    ({"batch": None}, "workload 'batch' needs a batch section"),
    ({"traffic": {"base": 10}}, "a batch service takes no request traffic"),
    ({"workload": "interactive"}, "only for workload 'batch'"),
    ({"batch": {"work_vcpu_s": 10, "deadline": 60}}, "no jobs arrive"),
])
def test_bad_batch_config_names_the_service_and_the_fix(patch: dict[str, Any], needle: str) -> None:
    d = _batch_scenario().model_dump(mode="json", exclude_unset=True, by_alias=True)
    d["services"][-1].update(patch)
    with pytest.raises(ValidationError, match=needle) as e:
        Scenario.model_validate(d)
    assert "etl" in str(e.value)
