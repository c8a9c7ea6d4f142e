"""Building is validating: the run's objects are made from the config before any data is read,
and a value an object rejects becomes a ``ConfigError`` naming the config key."""

import inspect
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig
from torch import nn

from phuber.config import raise_problems
from phuber.dataset import DATASETS, DatasetInfo, noise_model
from phuber.errors import ConfigError, InvalidValue


@dataclass
class Parts:
    """What a training run is made of, before its data."""

    info: DatasetInfo
    model: nn.Module
    loss_fn: nn.Module
    optimizer: Any
    scheduler: Any
    noise: np.ndarray | None  # the K×K transition matrix of the labels' noise; None: data's


def build(node: DictConfig, key: str, *args: Any, **kwargs: Any) -> Any:
    """``instantiate(node, *args, **kwargs)``; a rejected value is a ``ConfigError`` naming
    ``key`` (the node's place in the config, e.g. ``loss``)."""
    try:
        return instantiate(node, *args, **kwargs)
    except Exception as err:
        raise ConfigError(explain(err, node, key)) from err


def explain(err: Exception, node: DictConfig, key: str) -> str:
    """One line for why building ``node`` failed: ``loss.tau=1: must be > 1``."""
    cause = err.__cause__ if isinstance(err, InstantiationException) and err.__cause__ else err
    if isinstance(cause, InvalidValue):
        return cause.at(key)
    target = node.get("_target_", "?")
    unexpected = re.search(r"unexpected keyword argument '(\w+)'", str(cause))
    if isinstance(cause, TypeError) and unexpected:
        name = unexpected.group(1)
        return (
            f"{key}.{name}={node.get(name)!r}: {target} takes no parameter {name!r}; "
            f"it takes {', '.join(_parameters(target)) or 'none'}"
        )
    return f"{key} ({target}): {type(cause).__name__}: {cause}"


def _parameters(target: str) -> list[str]:
    """The arguments ``target`` takes besides what the builder passes; none if it is unknown."""
    try:
        signature = inspect.signature(get_object(target))
    except Exception:  # an unknown target: build() names it
        return []
    return [p for p in signature.parameters if p not in ("self", "params", "optimizer")]


def build_loss(loss: DictConfig, noise: np.ndarray | None, logit_clip: float | None = None) -> Any:
    """The loss of config node ``loss``; a loss that corrects for the noise (takes ``transition``)
    gets the run's transition matrix ``noise``, and ``logit_clip=τ`` wraps it in ``LogitClip``."""
    needs = "transition" in _parameters(loss._target_)  # corrects for the noise
    loss_fn = build(loss, "loss", transition=noise) if needs else build(loss, "loss")
    if logit_clip is None:
        return loss_fn
    from phuber.clipping import LogitClip

    try:
        return LogitClip(loss_fn, logit_clip)
    except InvalidValue as err:
        raise ConfigError(err.at("hparams")) from err


def noise_matrix(dataset: DictConfig) -> np.ndarray | None:
    """The transition matrix of ``dataset.train``'s noise (``None``: known only with the data,
    see ``phuber.dataset.noise_model``); a value no noise model takes is a ``ConfigError``."""
    try:
        return noise_model(dataset)
    except InvalidValue as err:
        raise ConfigError(err.at("dataset.train")) from err


def _fast(node: DictConfig) -> dict[str, bool]:
    """For a torch optimiser the config does not tell otherwise: ``fused=True`` where it takes it
    (one kernel for the whole update; on the CPU Adam's step is 12% faster, and its weights
    differ from the per-parameter loop's by float32 rounding, about 5e-8 after 50 steps), else
    ``foreach=True``."""
    if "foreach" in node or "fused" in node:
        return {}
    accepts = _parameters(node._target_)
    return next(({option: True} for option in ("fused", "foreach") if option in accepts), {})


def build_parts(cfg: DictConfig) -> Parts:
    """Model, loss, optimiser, schedule and noise model of a training config, or a
    ``ConfigError`` listing every value they reject (model, noise and loss first)."""
    info = DATASETS[cfg.dataset.name]
    problems: list[str] = []

    def attempt(make: Any) -> Any:
        try:
            return make()
        except ConfigError as err:
            problems.append(str(err))
            return None

    model = attempt(lambda: build(cfg.model, "model", in_channels=info.channels))
    noise = attempt(lambda: noise_matrix(cfg.dataset))
    logit_clip = cfg.hparams.get("logit_clip")
    loss_fn = attempt(lambda: build_loss(cfg.loss, noise, logit_clip))
    # The first torch optimiser imports torch._dynamo (about 1.5 s): report the problems found
    # so far without waiting for it; the optimiser's and schedule's own come once they are fixed.
    raise_problems(problems)
    optimizer = scheduler = None
    if model is not None:
        speed = _fast(cfg.hparams.optimizer)
        optimizer = attempt(
            lambda: build(cfg.hparams.optimizer, "hparams.optimizer", model.parameters(), **speed)
        )
    if optimizer is not None:
        scheduler = attempt(lambda: build(cfg.hparams.scheduler, "hparams.scheduler", optimizer))
    raise_problems(problems)
    return Parts(info, model, loss_fn, optimizer, scheduler, noise)
