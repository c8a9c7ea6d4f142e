"""A sweep is one unit: every job runs, the sweep ends with one summary of what each job did, and
its exit status says whether every job succeeded.

Each job's entry point (``phuber.app.cli``) returns a ``JobOutcome`` (a refused or failed job too,
so the others still run); the sweeper (``hydra_plugins.phuber_sweeper``, Hydra's basic sweeper
with this at its end) gathers them from whichever launcher ran the jobs, prints the summary,
records it in ``sweep.json`` in the sweep directory (one entry per launch) and exits non-zero if
any job failed. Imports nothing heavy.
"""

import glob
import os
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from phuber.app.processes import stop_requested
from phuber.core.files import save_json

EXIT_FAILED = 2
SUMMARY = "sweep.json"
PROGRESS = ".progress"  # one line per finished job, while the sweep runs


def default_jobs() -> int:
    """``--multirun``'s parallel jobs by default (``${phuber_jobs:}`` in
    ``conf/hydra/launcher/local.yaml``): one per visible GPU where there are GPUs
    (``CUDA_VISIBLE_DEVICES``, else the ``/dev/nvidia<N>`` devices), else one per CPU core this
    process may use. Found without importing torch."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        gpus = len([d for d in visible.split(",") if d.strip() not in ("", "-1")])
    else:
        gpus = len(glob.glob("/dev/nvidia[0-9]*"))
    return gpus or len(os.sched_getaffinity(0))


# conf/hydra/launcher/local.yaml: --multirun's parallel jobs by default
OmegaConf.register_new_resolver("phuber_jobs", default_jobs, replace=True)


def record_progress(sweep_dir: Path, status: str) -> None:
    """A finished job's status appended to the sweep's progress file: one short ``O_APPEND``
    write, whole even when parallel workers write at once. Progress is advisory: an unwritable
    file costs the line, not the job."""
    try:
        fd = os.open(sweep_dir / PROGRESS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{status}\n".encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def progress_text(counts: Counter, total: int, elapsed: float) -> str:
    """The sweep's line: jobs finished of the total, how, the time so far and the estimate of
    what remains (from the mean time per finished job)."""
    done = sum(counts.values())
    stopped = f", {counts['stopped']} stopped" if counts["stopped"] else ""
    text = (
        f"sweep: {done}/{total} jobs finished ({counts['completed']} completed, "
        f"{counts['skipped']} skipped, {counts['failed']} failed{stopped}), "
        f"{_duration(elapsed)} elapsed"
    )
    if 0 < done < total:
        text += f", ETA {_duration(elapsed / done * (total - done))}"
    return text


class ProgressLine:
    """One line for the whole sweep, where the runs' own bars would interleave (they are off in
    sweeps; each job's log stays in its ``train.log``). A thread reads the progress file the
    jobs append to once a second: on a terminal the line is redrawn in place, elsewhere printed
    when it changes."""

    def __init__(self, sweep_dir: Path, total: int, interval: float = 1.0) -> None:
        self.path, self.total, self.interval = sweep_dir / PROGRESS, total, interval
        self.stream = sys.stderr
        self.tty = self.stream.isatty()
        self.shown: Counter | None = None
        self.stop = threading.Event()

    def __enter__(self) -> "ProgressLine":
        self.path.unlink(missing_ok=True)
        self.started = time.time()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self._draw()
        if self.tty:
            self.stream.write("\n")
        self.path.unlink(missing_ok=True)

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            self._draw()

    def _draw(self) -> None:
        try:
            counts = Counter(self.path.read_text().split())
        except OSError:
            counts = Counter()
        if counts == self.shown and not self.tty:
            return
        self.shown = counts
        text = progress_text(counts, self.total, time.time() - self.started)
        self.stream.write(f"\r{text}\x1b[K" if self.tty else f"{text}\n")
        self.stream.flush()


@dataclass
class JobOutcome:
    """What one job did: ``completed`` (trained or evaluated now), ``skipped`` (its run dir held
    the result already), ``failed`` (refused or stopped by an error; ``detail`` says why) or
    ``stopped`` (by a signal to the sweep: at a checkpoint it resumes from, or not started)."""

    status: str
    detail: str = ""


@dataclass
class JobLine:
    """A job of the sweep as the summary shows it."""

    num: int
    overrides: list[str]
    status: str
    detail: str


def one_line(message: str, limit: int = 300) -> str:
    """An error message on one line: its lines joined, cut to ``limit`` characters."""
    text = ""
    for line in (line.strip() for line in str(message).splitlines()):
        if line:
            text += (" " if not text or text.endswith(":") else "; ") + line
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def job_line(num: int, overrides: list[str], value: Any, error: BaseException | None) -> JobLine:
    """A job's line from what it returned (``value``) or raised (``error``: a defect, since the
    entry point turns every user error into a ``JobOutcome``)."""
    if error is not None:
        detail = f"crashed: {type(error).__name__}: {one_line(str(error))} (traceback in its log)"
        return JobLine(num, overrides, "failed", detail)
    if isinstance(value, JobOutcome):
        return JobLine(num, overrides, value.status, value.detail)
    return JobLine(num, overrides, "completed", "")  # a task that does not report (a test's)


def rerun_hint(sweep_dir: Path, pinned: bool) -> str:
    """How to continue a sweep: the same command into the same sweep directory."""
    return "the same command" + ("" if pinned else f" plus hydra.sweep.dir={sweep_dir}")


def summary_lines(
    jobs: list[JobLine], sweep_dir: Path, pinned: bool, stopped_by: int | None = None
) -> list[str]:
    """The summary the sweep ends with: counts, one line per failed job (with the overrides
    that tell it from the other jobs), what to do next."""
    counts = Counter(job.status for job in jobs)
    stopped = f", {counts['stopped']} stopped" if counts["stopped"] else ""
    lines = [
        f"Sweep of {len(jobs)} jobs in {sweep_dir}: {counts['completed']} completed, "
        f"{counts['skipped']} skipped (already done), {counts['failed']} failed{stopped}"
    ]
    shared = set.intersection(*(set(job.overrides) for job in jobs)) if len(jobs) > 1 else set()
    for job in jobs:
        if job.status == "failed":
            own = " ".join(o for o in job.overrides if o not in shared) or "no overrides"
            lines.append(f"  failed #{job.num} ({own}): {job.detail}")
    if counts["failed"]:
        lines.append(
            f"  fix what the failed jobs name, then run {rerun_hint(sweep_dir, pinned)}: "
            f"completed jobs are skipped, unfinished ones resume"
        )
    if stopped_by is not None:
        lines.append(
            f"  stopped by {signal.Signals(stopped_by).name}: resume the sweep with "
            f"{rerun_hint(sweep_dir, pinned)}: completed jobs are skipped, stopped ones resume "
            f"from their checkpoints"
        )
    return lines


def finish(jobs: list[JobLine], sweep_dir: Path, pinned: bool, started: float) -> None:
    """Print the summary, append this launch to ``sweep.json`` and exit: 128 + the signal's
    number if a signal stopped the sweep, ``EXIT_FAILED`` if a job failed."""
    stopped_by = stop_requested(sweep_dir)
    lines = summary_lines(jobs, sweep_dir, pinned, stopped_by)
    print("\n".join(lines), flush=True)
    path = sweep_dir / SUMMARY
    launches = _launches(path)
    launches.append(
        {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
            "wall_time_s": time.time() - started,
            "jobs": [asdict(job) for job in jobs],
        }
    )
    save_json(path, {"launches": launches})
    if stopped_by is not None:
        sys.exit(128 + stopped_by)
    if any(job.status == "failed" for job in jobs):
        sys.exit(EXIT_FAILED)


def _launches(path: Path) -> list[dict[str, Any]]:
    """The launches ``sweep.json`` recorded before (none if it is absent or unreadable)."""
    import json

    try:
        launches = json.loads(path.read_text()).get("launches")
    except (OSError, ValueError, AttributeError):
        return []
    return launches if isinstance(launches, list) else []
