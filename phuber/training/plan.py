"""Settings that cannot act in the run as planned: once the training set's size is known, the
loss is told the run's plan (``Loss.check_plan``) and refuses a setting that would make the run
another method under its name (NLS's warm-up as long as the run, OGC's threshold never fitted);
a schedule's milestones past the run's end are warned about and recorded, since the method is
still the one named."""

import logging

from omegaconf import DictConfig
from torch import nn

from phuber.core.errors import ConfigError, InvalidValue
from phuber.losses.base import RunPlan

log = logging.getLogger(__name__)


def run_plan(cfg: DictConfig, train_size: int) -> RunPlan:
    return RunPlan(cfg.hparams.epochs, train_size, cfg.hparams.batch_size)


def check_plan(cfg: DictConfig, loss_fn: nn.Module, plan: RunPlan) -> list[str]:
    """Refuse (``ConfigError`` naming the key) what cannot act; the warnings about what acts
    only in part, logged here and returned for ``metrics.json``."""
    if hasattr(loss_fn, "check_plan") and plan.epochs > 0:
        try:
            loss_fn.check_plan(plan)
        except InvalidValue as err:
            lines = err.lines("loss")
            raise ConfigError("\n  ".join(lines), lines) from err
    warnings = _schedule_warnings(cfg, plan)
    for warning in warnings:
        log.warning(warning)
    return warnings


def _schedule_warnings(cfg: DictConfig, plan: RunPlan) -> list[str]:
    """Milestones of a step schedule that the run ends before (epochs, or optimiser steps with
    ``hparams.scheduler_interval=step``)."""
    milestones = cfg.hparams.scheduler.get("milestones")
    if not milestones or plan.epochs == 0:
        return []
    per_step = cfg.hparams.get("scheduler_interval", "epoch") == "step"
    end = plan.epochs * plan.steps_per_epoch if per_step else plan.epochs
    unit = "optimiser steps" if per_step else "epochs"
    late = [m for m in milestones if m >= end]
    if not late:
        return []
    return [
        f"hparams.scheduler.milestones={list(milestones)}: {late} lie at or past the run's end "
        f"({end} {unit}): the learning rate is not changed there in this run"
    ]
