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


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _between(lo: float, hi: float, hi_open: bool = False) -> Callable[[Any], bool]:
    return lambda v: _is_num(v) and lo <= v and (v < hi if hi_open else v <= hi)


_RULES: list[tuple[str, Callable[[Any], bool], str]] = [
    ("dataset.train.corrupt_prob", _between(0, 1), "a number in [0, 1]"),
    ("dataset.train.noise_seed", lambda v: v is None or _is_int(v), "an integer or null"),
    ("dataset.train.augment", lambda v: isinstance(v, bool), "true or false"),
    ("dataset.val.split", lambda v: v is None or _between(0, 1, True)(v), "in [0, 1) or null"),
    ("dataset.val.seed", _is_int, "an integer"),
    ("dataset.download", lambda v: isinstance(v, bool), "true or false"),
    ("loss.tau", lambda v: _is_num(v) and v > 1, "a number > 1"),
    ("loss.q", lambda v: _is_num(v) and 0 < v <= 1, "a number in (0, 1]"),
    ("hparams.epochs", lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    ("hparams.batch_size", lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    (
        "hparams.grad_clip_max_norm",
        lambda v: v is None or (_is_num(v) and v > 0),
        "a number > 0, or null for no clipping",
    ),
    ("hparams.optimizer.lr", lambda v: _is_num(v) and v > 0, "a number > 0"),
    ("hparams.optimizer.weight_decay", lambda v: _is_num(v) and v >= 0, "a number >= 0"),
    ("hparams.optimizer.momentum", lambda v: _is_num(v) and v >= 0, "a number >= 0"),
    ("eval_batch_size", lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    ("seed", lambda v: v is None or (_is_int(v) and v >= 0), "an integer >= 0, or null"),
    ("mixed_precision", lambda v: isinstance(v, bool), "true or false"),
    ("tensorboard", lambda v: isinstance(v, bool), "true or false"),
    ("save", lambda v: isinstance(v, bool), "true or false"),
    ("compile", lambda v: isinstance(v, bool), "true or false"),
    ("dataset.train.use", lambda v: isinstance(v, bool), "true or false"),
    ("dataset.val.use", lambda v: isinstance(v, bool), "true or false"),
    ("dataset.test.use", lambda v: isinstance(v, bool), "true or false"),
]


def validate(cfg: DictConfig, need_checkpoint: bool = False) -> None:
    """Raise one ``ConfigError`` listing every bad value: key, value and what is allowed."""
    problems: list[str] = []

    def bad(key: str, value: Any, allowed: str) -> None:
        problems.append(f"{key}={value!r}: must be {allowed}")

    for key, check, allowed in _RULES:
        value = OmegaConf.select(cfg, key, default="<absent>")
        if value != "<absent>" and not check(value):
            bad(key, value, allowed)

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
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


def _resolves(target: str) -> bool:
    try:
        get_object(target)
    except Exception:
        return False
    return True
