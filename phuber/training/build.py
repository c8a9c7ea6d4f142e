"""Building is validating: the run's objects are made from the config before any data is read,
and a value an object rejects becomes a ``ConfigError`` naming the config key. Every object that
can be built is built, so one message lists every problem; what depends on a broken value is
skipped rather than reported twice."""

import inspect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from phuber.core.checks import depends, raise_problems
from phuber.core.errors import ConfigError, InvalidValue
from phuber.datasets.load import noise_model
from phuber.datasets.registry import DatasetInfo, dataset_info
from phuber.training.clipping import GradientStep
from phuber.training.config import PARTS, parts_to_build
from phuber.training.domains import at_keys, check_foreign, judge_declared, judge_node
from phuber.training.runtime import Precision, select_device


@dataclass
class Parts:
    """What a training run is made of, before its data."""

    info: DatasetInfo
    device: torch.device
    model: nn.Module  # on the device, channels_last
    forward: Callable[[torch.Tensor], torch.Tensor]  # the model, compiled if cfg.compile
    loss_fn: nn.Module
    optimizer: Any
    scheduler: Any
    precision: Precision
    gradient_step: GradientStep
    noise: np.ndarray | None  # the K×K transition matrix of the labels' noise; None: data's


def build(node: DictConfig, key: str, *args: Any, **kwargs: Any) -> Any:
    """``instantiate(node, *args, **kwargs)``; a rejected value is a ``ConfigError`` naming
    ``key`` (the node's place in the config, e.g. ``loss``)."""
    try:
        check_foreign(node)  # a torch class's arguments, judged as our classes judge theirs
        return instantiate(node, *args, **kwargs)
    except Exception as err:
        lines = explain(err, node, key)
        raise ConfigError("\n  ".join(lines), lines) from err


def explain(err: Exception, node: DictConfig, key: str) -> list[str]:
    """Why building ``node`` failed, one line per rejected value: ``loss.tau=1: must be > 1``."""
    cause = err.__cause__ if isinstance(err, InstantiationException) and err.__cause__ else err
    if isinstance(cause, InvalidValue):
        return cause.lines(key)
    target = node.get("_target_", "?")
    unexpected = re.search(r"unexpected keyword argument '(\w+)'", str(cause))
    if isinstance(cause, TypeError) and unexpected:
        name = unexpected.group(1)
        return [
            f"{key}.{name}={node.get(name)!r}: {target} takes no parameter {name!r}; "
            f"it takes {', '.join(_parameters(target)) or 'none'}"
        ]
    return [f"{key} ({target}): {type(cause).__name__}: {' '.join(str(cause).split())[:300]}"]


def _parameters(target: str) -> list[str]:
    """The arguments ``target`` takes besides what the builder passes; none if it is unknown."""
    try:
        signature = inspect.signature(get_object(target))
    except Exception:  # an unknown target: build() names it
        return []
    return [p for p in signature.parameters if p not in ("self", "params", "optimizer")]


def build_loss(
    loss: DictConfig,
    noise: np.ndarray | None,
    logit_clip: float | None = None,
    num_classes: int | None = None,
) -> Any:
    """The loss of config node ``loss``; a loss that corrects for the noise (takes
    ``transition``) gets the ``loss.transition`` the config gives (checked: K×K, row-stochastic)
    or else the run's transition matrix ``noise``; ``logit_clip=τ`` wraps it in ``LogitClip``.
    With ``num_classes`` the built loss is probed (``probe_loss``)."""
    needs = "transition" in _parameters(loss._target_)  # corrects for the noise
    given = needs and loss.get("transition") is not None
    needs = needs and loss.get("estimate_from") is None  # else estimated once the data is read
    if given and num_classes is not None:
        shape = np.shape(OmegaConf.to_container(loss.transition))
        if shape != (num_classes, num_classes):
            raise ConfigError(
                f"loss.transition: must be a {num_classes}×{num_classes} row-stochastic matrix "
                f"(dataset.num_classes={num_classes}), got shape {shape}"
            )
    try:
        loss_fn = (
            build(loss, "loss", transition=noise) if needs and not given else build(loss, "loss")
        )
    except ConfigError as err:  # LogitClip's τ is judged too, for the one message
        clip: list[str] = []
        if logit_clip is not None:
            try:
                judge_declared({"tau": logit_clip}, LOGIT_CLIP)
            except ConfigError as also:
                clip = also.problems
        raise ConfigError("\n  ".join(err.problems + clip), err.problems + clip) from err
    if logit_clip is not None:
        from phuber.losses.logit_clip import LogitClip

        try:
            loss_fn = LogitClip(loss_fn, logit_clip)
        except InvalidValue as err:
            raise at_keys(err, LOGIT_CLIP) from err
    if num_classes is not None:
        probe_loss(loss_fn, num_classes, loss_settings(loss, logit_clip))
    return loss_fn


def loss_settings(loss: DictConfig, logit_clip: float | None) -> list[str]:
    """The settings that shape a loss, as ``key=value`` (for messages about it)."""
    shown = [
        f"loss.{k}={v!r}"
        for k, v in OmegaConf.to_container(loss, resolve=True).items()
        if k not in ("_target_", "reduction", "transition")
    ]
    return shown + ([f"hparams.logit_clip={logit_clip!r}"] if logit_clip is not None else [])


_PROBE_SCALES = (1.0, 10.0, 100.0)  # logit standard deviations the probe tries
_PROBE_TARGETS = 128  # classes the probe labels rows with: all of them, up to this many


def probe_loss(loss_fn: nn.Module, num_classes: int, settings: Iterable[str]) -> None:
    """Judge a loss where it is used: on a fixed batch of float32 logits (scales 1, 10 and 100,
    every class as a target, or 128 spread over them) its values and logit gradients must be
    finite, and its values must not all be equal up to float32 rounding (nor its gradients all
    zero). A parameter that overflows float32 (``loss.alpha=1e38``), or a combination that makes
    the loss constant (``loss=sce loss.alpha=0 loss.beta=0``, a forward correction through a T
    whose rows are equal) is refused here, naming the loss's settings. The loss is probed in
    eval mode, in which a loss with state keeps it (``Loss``), and left as it was."""
    if any(getattr(m, "log_transition", "") is None for m in loss_fn.modules()):
        return  # a forward correction waiting for the data's T: probed once it has it
    g = torch.Generator().manual_seed(0)
    classes = torch.linspace(0, num_classes - 1, min(num_classes, _PROBE_TARGETS)).round().long()
    n = 2 * len(classes)
    rows = [torch.randn(n, num_classes, generator=g) * s for s in _PROBE_SCALES]
    logits = torch.cat(rows).requires_grad_()
    targets = classes.repeat(2 * len(_PROBE_SCALES))
    reductions = {m: m.reduction for m in loss_fn.modules() if hasattr(m, "reduction")}
    was_training = loss_fn.training
    loss_fn.eval()  # a loss's state changes only in training mode: probing leaves it as it is
    try:
        for module in reductions:
            module.reduction = "none"  # one value per example
        values = loss_fn(logits, targets)
        (grad,) = torch.autograd.grad(values.sum(), logits)
    except (RuntimeError, IndexError, ValueError, ArithmeticError) as err:
        problem = f"cannot be computed on {num_classes} classes ({type(err).__name__}: {err})"
    else:
        if not (values.isfinite().all() and grad.isfinite().all()):
            problem = "is not finite in float32 (its value or gradient overflows)"
        elif not grad.any() or _spread(values) <= 1e-6 * values.abs().max().item():
            problem = "is constant (its gradient is zero wherever it was probed): it learns nothing"
        else:
            return
    finally:
        for module, reduction in reductions.items():
            module.reduction = reduction
        loss_fn.train(was_training)
    listed = list(settings)
    if any(getattr(m, "log_transition", None) is not None for m in loss_fn.modules()):
        listed.append("its transition matrix (loss.transition, or the noise's: dataset.train.*)")
    raise ConfigError(
        f"loss: {type(loss_fn).__name__} {problem}, with {', '.join(listed) or 'its defaults'}"
    )


def _spread(values: torch.Tensor) -> float:
    return (values.max() - values.min()).item()


def noise_matrix(dataset: DictConfig) -> np.ndarray | None:
    """The transition matrix of ``dataset.train``'s noise (``None``: known only with the data,
    see ``phuber.datasets.load.noise_model``); a value no noise model takes is a ``ConfigError``."""
    try:
        return noise_model(dataset)
    except InvalidValue as err:
        lines = err.lines("dataset.train")
        raise ConfigError("\n  ".join(lines), lines) from err


def _fast(node: DictConfig) -> dict[str, bool]:
    """For a torch optimiser the config does not tell otherwise: ``fused=True`` where it takes it
    (one kernel for the whole update; on the CPU Adam's step is 12% faster, and its weights
    differ from the per-parameter loop's by float32 rounding, about 5e-8 after 50 steps), else
    ``foreach=True``."""
    if "foreach" in node or "fused" in node:
        return {}
    accepts = _parameters(node._target_)
    return next(({option: True} for option in ("fused", "foreach") if option in accepts), {})


def build_parts(
    cfg: DictConfig, broken: Iterable[str] = (), changed: Iterable[str] | None = None
) -> Parts:
    """Device, model, loss, optimiser, schedule, precision, gradient step and noise model of a
    training config, or one ``ConfigError`` listing every value they reject. A part whose config
    keys are ``broken`` (reported already), or whose inputs failed, is not built; with
    ``changed``, only the parts those keys feed (and their inputs) are (``parts_to_build``)."""
    broken = set(broken)
    wanted = parts_to_build(changed)
    problems: list[str] = []

    def attempt(part: str, make: Callable[[], Any], *inputs: Any, alone: Any = None) -> Any:
        """Build ``part``; where its inputs failed or one of its keys is broken, judge only
        its parameters that can be judged alone (``alone``), so that every bad value is still
        in the one message."""
        if part not in wanted:
            return None
        try:
            if depends(PARTS[part], broken) or any(x is None for x in inputs):
                return alone() if alone is not None else None
            return make()
        except ConfigError as err:
            problems.extend(err.problems)
            return None

    if {"dataset.name", "dataset", "hparams"} & broken:  # reported already: nothing to add
        raise ConfigError("nothing can be built without a data set and a recipe", problems=[])
    info = dataset_info(cfg.dataset)
    k = cfg.dataset.num_classes
    precision = attempt("precision", lambda: _precision(cfg))
    device = precision.device if precision is not None else None
    model = attempt("model", lambda: _model(cfg, info, device), device)
    noise = attempt(
        "noise", lambda: noise_matrix(cfg.dataset), alone=lambda: _human_labels(cfg.dataset, info)
    )
    logit_clip = cfg.hparams.get("logit_clip")
    loss_fn = attempt("loss", lambda: build_loss(cfg.loss, noise, logit_clip, k))
    optimizer = attempt(
        "optimizer",
        lambda: build(
            cfg.hparams.optimizer,
            "hparams.optimizer",
            model.parameters(),
            **_fast(cfg.hparams.optimizer),
        ),
        model,
        alone=lambda: judge_node(cfg.hparams.optimizer, "hparams.optimizer"),
    )
    scheduler = attempt(
        "scheduler",
        lambda: build(cfg.hparams.scheduler, "hparams.scheduler", optimizer),
        optimizer,
        alone=lambda: judge_node(cfg.hparams.scheduler, "hparams.scheduler"),
    )
    forward = (torch.compile(model) if cfg.compile else model) if model is not None else None
    gradient_step = attempt(
        "gradient_step",
        lambda: _gradient_step(cfg, model, forward, loss_fn, optimizer, precision),
        model,
        loss_fn,
        optimizer,
        precision,
        alone=lambda: judge_declared(_clipping(cfg), GRADIENT_STEP),
    )
    raise_problems(problems)
    return Parts(
        info, device, model, forward, loss_fn, optimizer, scheduler, precision, gradient_step, noise
    )


def build_problems(
    cfg: DictConfig, broken: Iterable[str], changed: Iterable[str] | None = None
) -> list[str]:
    """The problems ``build_parts`` finds (besides the ``broken`` keys reported already)."""
    try:
        build_parts(cfg, broken, changed)
    except ConfigError as err:
        return err.problems
    return []


def _human_labels(dataset: DictConfig, info: DatasetInfo) -> None:
    """The choice of human labels, judged alone (the noise model's other keys are broken)."""
    choice = dataset.train.get("human_labels")
    if info.human is not None:
        try:
            info.human.domain.check(choice)
        except ValueError as err:
            raise ConfigError(f"dataset.train.human_labels={choice!r}: must be {err}") from None


GRADIENT_STEP = "phuber.training.clipping.GradientStep"
LOGIT_CLIP = "phuber.losses.logit_clip.LogitClip"


def _clipping(cfg: DictConfig) -> dict[str, Any]:
    """The gradient step's settings, by the names ``GradientStep`` takes them."""
    hparams = cfg.hparams
    return {"mode": hparams.get("grad_clip_mode", "global"), "max_norm": hparams.grad_clip_max_norm}


def _gradient_step(cfg: DictConfig, *parts: Any) -> GradientStep:
    try:
        return GradientStep(*_clipping(cfg).values(), *parts)
    except InvalidValue as err:
        raise at_keys(err, GRADIENT_STEP) from err


def _precision(cfg: DictConfig) -> Precision:
    return Precision(cfg.mixed_precision, select_device(cfg.device, cfg.auto_cpu_if_no_gpu))


def _model(cfg: DictConfig, info: DatasetInfo, device: torch.device) -> nn.Module:
    model = build(cfg.model, "model", in_channels=info.channels).to(device)
    # channels_last on the CPU too: LeNet's step is 13% faster with it (benchmarks/RESULTS.md)
    return model.to(memory_format=torch.channels_last)
