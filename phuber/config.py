"""Config validation: every value a user sets is checked here, before any data is read."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from phuber.clipping import CLIP_MODES
from phuber.dataset import DATASETS
from phuber.errors import ConfigError
from phuber.noise import ASYMMETRIC_FLIPS, NOISE_TYPES

# (key, check, what is allowed): the message for a value that fails is "key=value: must be allowed".
Rule = tuple[str, Callable[[Any], bool], str]


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def between(lo: float, hi: float, hi_open: bool = False) -> Callable[[Any], bool]:
    return lambda v: is_num(v) and lo <= v and (v < hi if hi_open else v <= hi)


def check_rules(cfg: DictConfig, rules: list[Rule]) -> list[str]:
    """The problem lines of the rules whose key is present in ``cfg`` and whose value fails."""
    problems = []
    for key, check, allowed in rules:
        value = OmegaConf.select(cfg, key, default="<absent>")
        if value != "<absent>" and not check(value):
            problems.append(f"{key}={value!r}: must be {allowed}")
    return problems


def raise_problems(problems: list[str]) -> None:
    """One ``ConfigError`` listing every problem, if there is any."""
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


_RULES: list[Rule] = [
    ("dataset.train.corrupt_prob", between(0, 1), "a number in [0, 1]"),
    ("dataset.train.noise_seed", lambda v: v is None or is_int(v), "an integer or null"),
    ("dataset.train.augment", _is_bool, "true or false"),
    ("dataset.val.split", lambda v: v is None or between(0, 1, True)(v), "in [0, 1) or null"),
    ("dataset.val.seed", is_int, "an integer"),
    ("dataset.download", _is_bool, "true or false"),
    ("loss.tau", lambda v: is_num(v) and v > 1, "a number > 1"),
    ("loss.q", lambda v: is_num(v) and 0 < v <= 1, "a number in (0, 1]"),
    ("hparams.epochs", lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    ("hparams.batch_size", lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    (
        "hparams.grad_clip_max_norm",
        lambda v: v is None or (is_num(v) and v > 0),
        "a number > 0, or null for no clipping",
    ),
    ("hparams.optimizer.lr", lambda v: is_num(v) and v > 0, "a number > 0"),
    ("hparams.optimizer.weight_decay", lambda v: is_num(v) and v >= 0, "a number >= 0"),
    ("hparams.optimizer.momentum", lambda v: is_num(v) and v >= 0, "a number >= 0"),
    ("eval_batch_size", lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    ("seed", lambda v: v is None or (is_int(v) and v >= 0), "an integer >= 0, or null"),
    ("mixed_precision", _is_bool, "true or false"),
    ("tensorboard", _is_bool, "true or false"),
    ("save", _is_bool, "true or false"),
    ("compile", _is_bool, "true or false"),
    ("dataset.train.use", _is_bool, "true or false"),
    ("dataset.val.use", _is_bool, "true or false"),
    ("dataset.test.use", _is_bool, "true or false"),
]


def validate(cfg: DictConfig, need_checkpoint: bool = False) -> None:
    """Raise one ``ConfigError`` listing every bad value: key, value and what is allowed."""
    problems = check_rules(cfg, _RULES)

    def bad(key: str, value: Any, allowed: str) -> None:
        problems.append(f"{key}={value!r}: must be {allowed}")

    name = OmegaConf.select(cfg, "dataset.name")
    info = DATASETS.get(name)
    if info is None:
        bad("dataset.name", name, f"one of {sorted(DATASETS)}")
    mode = OmegaConf.select(cfg, "hparams.grad_clip_mode", default="global")
    if mode not in CLIP_MODES:
        bad("hparams.grad_clip_mode", mode, f"one of {list(CLIP_MODES)}")
    elif mode != "global" and OmegaConf.select(cfg, "hparams.grad_clip_max_norm") is None:
        bad("hparams.grad_clip_mode", mode, "used with a hparams.grad_clip_max_norm")
    noise_type = OmegaConf.select(cfg, "dataset.train.noise_type", default="symmetric")
    if noise_type not in NOISE_TYPES:
        bad("dataset.train.noise_type", noise_type, f"one of {list(NOISE_TYPES)}")
    elif noise_type == "asymmetric" and name not in ASYMMETRIC_FLIPS:
        bad("dataset.train.noise_type", noise_type, f"used with one of {sorted(ASYMMETRIC_FLIPS)}")
    for key in ("dataset.num_classes", "model.num_classes"):
        value = OmegaConf.select(cfg, key)
        if info is not None and value is not None and value != info.num_classes:
            bad(key, value, f"{info.num_classes}, the number of classes of {name}")
    for key in ("model._target_", "loss._target_", "hparams.optimizer._target_"):
        target = OmegaConf.select(cfg, key)
        if target is not None and not _resolves(target):
            bad(key, target, "an importable class or function")
    model = str(OmegaConf.select(cfg, "model._target_", default=""))
    if model.endswith("LeNet") and info is not None and info.size != 28:
        bad("model", "lenet", f"used with 28×28 data; {name} images are {info.size}×{info.size}")
    try:
        torch.device(OmegaConf.select(cfg, "device", default="cpu"))
    except (RuntimeError, TypeError):
        bad("device", cfg.device, "a torch device such as cpu, cuda or cuda:0")
    checkpoint = OmegaConf.select(cfg, "checkpoint")
    if need_checkpoint and not checkpoint:
        bad(
            "checkpoint",
            checkpoint,
            "the path of a saved model, e.g. checkpoint=outputs/…/final_model.pt",
        )
    elif checkpoint and not Path(checkpoint).is_file():
        bad("checkpoint", checkpoint, "an existing file")
    raise_problems(problems)


def _resolves(target: str) -> bool:
    try:
        get_object(target)
    except Exception:
        return False
    return True
