"""Glue between Hydra entry points and the library: output dir, and user errors as one screen."""

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from phuber.config import check_added_keys, validate
from phuber.errors import PhuberError, Preempted

log = logging.getLogger(__name__)

EXIT_USER_ERROR = 2


def entry_point(
    task: Callable[[DictConfig, Path], Any], check_first: bool = False
) -> Callable[[DictConfig], Any]:
    """Wrap ``task(cfg, out_dir)`` for ``@hydra.main``. With ``check_first`` the training config
    is validated first, so an error in it answers before ``task`` imports torch (``eval.py``
    validates after merging the checkpoint's config, in its task).

    A ``PhuberError`` (bad config, missing data, unsafe checkpoint, preemption, ...) prints one
    message without a traceback (the traceback goes to the run's log file) and exits non-zero;
    in a ``--multirun`` sweep the failed job is logged and the sweep goes on.
    """

    @functools.wraps(task)
    def wrapper(cfg: DictConfig) -> Any:
        hydra_cfg = HydraConfig.get()
        try:
            check_added_keys(
                cfg, hydra_cfg.overrides.task, hydra_cfg.runtime.choices, hydra_cfg.job.config_name
            )
            if check_first:
                validate(cfg)
            return task(cfg, Path(hydra_cfg.runtime.output_dir))
        except PhuberError as err:
            log.debug("Traceback of the error below", exc_info=True)
            log.error(f"{type(err).__name__}: {err}")
            if isinstance(err, Preempted):  # let a launcher's handler requeue it
                err.hand_on()
            if hydra_cfg.mode == RunMode.MULTIRUN and err.exit_code is None:
                return None
            sys.exit(err.exit_code or EXIT_USER_ERROR)

    return wrapper
