"""A sweep task that kills its own worker process the first time it runs one chosen run (a marker file
remembers), then runs like :func:`scenarios.sweep.run_job`: what a worker lost to the OOM killer looks like."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from scenarios.sweep import Job, RunKey, run_job


def kill_once(marker: str, victim: RunKey, job: Job) -> dict[str, Any]:
    """``functools.partial(kill_once, marker, victim)`` is the task; the marker holds the killed pid."""
    m = Path(marker)
    if job.key == victim and not m.exists():
        m.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return run_job(job)
