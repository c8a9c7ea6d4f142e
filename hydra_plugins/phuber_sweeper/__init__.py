"""phuber's sweeper: Hydra's basic sweeper, with every job's outcome gathered at the end
(``phuber.sweep``). Chosen in ``conf/train.yaml`` (``hydra/sweeper: phuber``); any launcher runs
the jobs."""

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.utils import JobReturn, JobStatus, filter_overrides

from phuber.app.launchers import launcher_problems
from phuber.app.processes import SweepSignals
from phuber.app.sweep import EXIT_FAILED, JobLine, JobOutcome, ProgressLine, finish, job_line


class PhuberSweeper(BasicSweeper):
    """Runs every job of the sweep whatever another job did, then ends with the summary."""

    def sweep(self, arguments: list[str]) -> Any:
        started = time.time()
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        problems = launcher_problems(self.config.hydra.launcher)
        if problems:
            sys.stderr.write("Error: invalid launcher settings:\n  " + "\n  ".join(problems) + "\n")
            sys.exit(EXIT_FAILED)
        jobs: list[JobLine] = []
        launcher = self.launcher
        self.launcher = _Recording(launcher, jobs)
        try:
            sweep_dir.mkdir(parents=True, exist_ok=True)
            with SweepSignals(sweep_dir):
                returns = super().sweep(arguments)
        finally:
            self.launcher = launcher
        given = [str(o) for o in self.config.hydra.overrides.hydra]
        pinned = any(o.lstrip("+").startswith("hydra.sweep.dir=") for o in given)
        finish(jobs, sweep_dir, pinned, started)
        return returns


class _Recording:
    """The launcher, with each job's return turned into its summary line: a job that raised is
    recorded as failed (and marked completed for Hydra, so the sweep goes on)."""

    def __init__(self, launcher: Any, jobs: list[JobLine]) -> None:
        self.launcher, self.jobs = launcher, jobs

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
        sweep_dir = Path(str(self.launcher.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        with ProgressLine(sweep_dir, len(job_overrides)):
            results: Sequence[JobReturn] = self.launcher.launch(
                job_overrides, initial_job_idx=initial_job_idx
            )
        jobs = zip(job_overrides, results, strict=True)
        for num, (overrides, ret) in enumerate(jobs, initial_job_idx):
            failed = ret.status == JobStatus.FAILED
            error = ret._return_value if failed else None
            value = None if failed else ret.return_value
            self.jobs.append(job_line(num, filter_overrides(overrides), value, error))
            if failed:
                ret.status, ret.return_value = JobStatus.COMPLETED, JobOutcome("failed")
        return results
