"""Glue between Hydra entry points and the library: output dir, and user errors as one screen."""

import functools
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from phuber.app.keys import added_key_problems, changed_keys
from phuber.app.processes import (
    hands_on,
    in_worker,
    request_stop,
    running_job,
    stop_requested,
    watch_parent,
)
from phuber.app.sweep import JobOutcome, one_line, record_progress, rerun_hint
from phuber.core.checks import raise_problems
from phuber.core.errors import PhuberError, Preempted
from phuber.core.rundir import Earlier
from phuber.training.config import validate

log = logging.getLogger(__name__)

EXIT_USER_ERROR = 2


def entry_point(
    task: Callable[[DictConfig, Path], Any], check_first: bool = False
) -> Callable[[DictConfig], JobOutcome]:
    """Wrap ``task(cfg, out_dir)`` for ``@hydra.main``. With ``check_first`` the training config
    is validated first (``eval.py`` validates after merging the checkpoint's config, in its
    task).

    A ``PhuberError`` (bad config, missing data, unsafe checkpoint, preemption, ...) prints one
    message without a traceback (the traceback goes to the run's log file) and exits non-zero.
    In a ``--multirun`` sweep the job returns its ``JobOutcome`` instead, so the other jobs run
    and the sweep's summary and exit status count it (``phuber.sweep``); a preemption still
    stops the sweep, with the advice to continue the whole sweep.
    """

    @functools.wraps(task)
    def wrapper(cfg: DictConfig) -> JobOutcome:
        hydra_cfg = HydraConfig.get()
        sweep = hydra_cfg.mode == RunMode.MULTIRUN
        sweep_dir = Path(str(hydra_cfg.sweep.dir))
        if sweep:
            if in_worker():
                watch_parent()  # the sweep's process dies: this job stops, this worker ends
            stopped_by = stop_requested(sweep_dir)
            if stopped_by is not None:
                done = JobOutcome(
                    "stopped", f"not started: the sweep was stopped by {_name(stopped_by)}"
                )
                record_progress(sweep_dir, done.status)
                return done
        try:
            added = added_key_problems(
                cfg, hydra_cfg.overrides.task, hydra_cfg.runtime.choices, hydra_cfg.job.config_name
            )
            if check_first:
                validate(cfg, also=added, changed=changed_keys(hydra_cfg.overrides.task))
            raise_problems(added)
            with running_job():
                done = outcome(task(cfg, Path(hydra_cfg.runtime.output_dir)))
        except PhuberError as err:
            log.debug("Traceback of the error below", exc_info=True)
            advice = (
                err.advice(_sweep_rerun(hydra_cfg) if sweep else None)
                if isinstance(err, Preempted)
                else ""
            )
            log.error(f"{type(err).__name__}: {err}{advice}")
            stopped = isinstance(err, Preempted)
            if stopped and sweep and not hands_on(err.previous_handler):
                request_stop(sweep_dir, err.signum)  # the sweep's other jobs stop too
                done = JobOutcome("stopped", one_line(str(err)))
            else:
                if stopped:  # let a launcher's handler requeue it (submitit)
                    err.hand_on()
                if not sweep or err.exit_code is not None:
                    sys.exit(err.exit_code or EXIT_USER_ERROR)
                done = JobOutcome("failed", one_line(f"{type(err).__name__}: {err}"))
        except Exception:
            if sweep:  # Hydra keeps the exception for the summary but logs nothing of it
                log.exception("This job crashed: a defect of phuber, please report it")
                record_progress(sweep_dir, "failed")
            raise
        if sweep:
            record_progress(sweep_dir, done.status)
        return done

    return wrapper


def _name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def outcome(result: Any) -> JobOutcome:
    """A finished task's outcome: skipped if its run dir held the result (``Earlier``)."""
    status = "skipped" if isinstance(result, Earlier) else "completed"
    acc = result.get("test_acc") if isinstance(result, dict) else None
    return JobOutcome(status, f"test accuracy {100 * acc:.2f}%" if isinstance(acc, float) else "")


def _sweep_rerun(hydra_cfg: DictConfig) -> str:
    given = [str(o) for o in hydra_cfg.overrides.hydra]
    pinned = any(o.lstrip("+").startswith("hydra.sweep.dir=") for o in given)
    return rerun_hint(Path(str(hydra_cfg.sweep.dir)), pinned)


class OutputDirCheck(Callback):
    """Before Hydra makes the run (or sweep) directory: one message and exit status 2 if it
    cannot be one (a file is in its place, a parent is a file, no permission, a read-only file
    system), where Hydra would end in a traceback."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_dir(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_dir(config.hydra.sweep.dir, "hydra.sweep.dir")


def _check_dir(path: Any, key: str) -> None:
    folder = Path(str(path))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as err:
        reason = "a file is in its place" if folder.is_file() else err.strerror or str(err)
        sys.stderr.write(
            f"Error: {key}={str(path)!r}: cannot be the output folder ({reason}); choose "
            f"another {key}\n"
        )
        sys.exit(EXIT_USER_ERROR)
