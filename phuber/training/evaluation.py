"""Batched evaluation on the device, and the ``eval.py`` entry point's work."""

import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from phuber.core.checks import raise_problems
from phuber.core.errors import CheckpointError, ConfigError
from phuber.core.files import save_json
from phuber.core.rundir import RunDir
from phuber.datasets.load import Split, load_data
from phuber.datasets.registry import dataset_info
from phuber.datasets.transforms import BatchTransform
from phuber.losses.forward import attach_transition
from phuber.training.build import build, build_loss, noise_matrix
from phuber.training.checkpoint import check_fields, load_checkpoint, load_model_state
from phuber.training.config import validate
from phuber.training.metrics import EVAL_SUM_NAMES, Sums
from phuber.training.runtime import Precision, select_device

log = logging.getLogger(__name__)


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    split: Split,
    transform: BatchTransform,
    loss_fn: nn.Module,
    batch_size: int,
    precision: Precision,
) -> dict[str, float]:
    """Mean loss and accuracy on ``split.labels``; on a noisy split also the accuracy on the
    true labels (``clean_acc``). One host sync at the end."""
    was_training, loss_was_training = model.training, loss_fn.training
    model.eval()
    loss_fn.eval()  # a stateful loss (OGC's queue) never learns from evaluation
    sums = Sums(split.labels.device, names=EVAL_SUM_NAMES)
    for start in range(0, len(split), batch_size):
        end = start + batch_size
        with precision.autocast():
            logits = model(transform(split.images[start:end]))
        pred = logits.argmax(1)
        labels = split.labels[start:end]
        sums.add(
            loss=loss_fn(logits, labels).double() * labels.shape[0],
            correct=(pred == labels).sum(),
            clean_correct=(pred == split.clean_labels[start:end]).sum(),
        )
    model.train(was_training)
    loss_fn.train(loss_was_training)
    s = {k: v / max(len(split), 1) for k, v in sums.read().items()}
    metrics = {"loss": s["loss"], "acc": s["correct"]}
    if bool(split.is_noisy.any()):
        metrics["clean_acc"] = s["clean_correct"]
    return metrics


# What a model was trained on: a given override must agree with the checkpoint's value.
_MODEL_DEFINING = ("dataset.name", "dataset.num_classes", "model._target_", "model.num_classes")


def given_overrides() -> list[str]:
    """The keys set on the command line (``dataset`` for ``dataset=cifar10``); none in-process."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return [o.lstrip("+~").split("=", 1)[0] for o in HydraConfig.get().overrides.task]


def with_checkpoint_config(cfg: DictConfig, saved: Any, given: list[str]) -> DictConfig:
    """``cfg`` with the data set and model the checkpoint was trained with (its ``config``), and
    the keys given on the command line on top. A given value that contradicts what the model was
    trained on is a ``ConfigError`` naming both. A checkpoint without a config (the earlier
    reproduction's) leaves ``cfg`` as it is."""
    if not isinstance(saved, dict):
        return cfg
    saved = OmegaConf.create(saved)

    def is_given(key: str) -> bool:
        return any(key == g or key.startswith(f"{g}.") for g in given)

    problems = [
        f"{key}={OmegaConf.select(cfg, key)!r}: contradicts the checkpoint, whose model was "
        f"trained with {key}={OmegaConf.select(saved, key)!r}; drop the override (eval.py reads "
        f"the data set and model from the checkpoint)"
        for key in _MODEL_DEFINING
        if is_given(key) and OmegaConf.select(cfg, key) != OmegaConf.select(saved, key)
    ]
    raise_problems(problems)
    merged = cfg.copy()
    with open_dict(merged):
        for node in ("dataset", "model"):
            if node in saved:
                merged[node] = saved[node]
        for key in given:
            if key.startswith(("dataset.", "model.")):
                OmegaConf.update(merged, key, OmegaConf.select(cfg, key), force_add=True)
        for split in ("train", "val", "test"):
            OmegaConf.update(merged, f"dataset.{split}.use", cfg.dataset[split].use, force_add=True)
    return merged


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Score ``cfg.checkpoint`` on the splits chosen by ``dataset.{train,val,test}.use``; print
    and return accuracy and loss per split, and write ``eval.json`` into ``out_dir``.

    The data set and model are the checkpoint's own (recorded when it was saved)."""
    if not isinstance(OmegaConf.select(cfg, "checkpoint"), str):
        validate(cfg, task="eval")  # names the missing checkpoint
    state = load_checkpoint(cfg.checkpoint)
    none = type(None)
    check_fields(
        state, cfg.checkpoint, {"epoch": (int, none), "config": (dict,), "identity": (dict, none)}
    )
    saved = state.get("config")
    if saved is not None and not all(isinstance(saved.get(k), dict) for k in ("dataset", "model")):
        raise CheckpointError(
            f"checkpoint={cfg.checkpoint!r}: its recorded config has no dataset and model nodes"
        )
    cfg = with_checkpoint_config(cfg, state.get("config"), given_overrides())
    validate(cfg, task="eval")
    request = {
        "checkpoint": str(Path(cfg.checkpoint).resolve()),
        "dataset": OmegaConf.to_container(cfg.dataset, resolve=True),
        "loss": OmegaConf.to_container(cfg.loss, resolve=True),
        "mixed_precision": cfg.mixed_precision,
    }
    with RunDir(out_dir) as run_dir:
        results = run_dir.finished("eval.json", "request", request)
        if results is None:
            results = _score(cfg, state, request)
            save_json(out_dir / "eval.json", results)
    for name in ("train", "val", "test"):
        if name in results:
            print(score_line(name, results[name]))
    return results


def score_line(name: str, scores: dict[str, Any]) -> str:
    """One split's scores in words: a training or validation split's accuracy is agreement
    with the labels it was trained on, noisy where some were corrupted, so the line says which
    labels it was scored against and adds the accuracy on the true labels."""
    against = ""
    if name != "test":
        corrupted = scores.get("corrupted_fraction", 0.0)
        labels = f"{100 * corrupted:.1f}% corrupted" if corrupted else "none corrupted"
        against = f" against the labels it was trained on ({labels})"
    clean = (
        f" | accuracy on the true labels {scores['clean_acc']:.4f}" if "clean_acc" in scores else ""
    )
    return f"{name}: accuracy {scores['acc']:.4f}{against}{clean} | loss {scores['loss']:.4f}"


def _score(cfg: DictConfig, state: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """Accuracy and loss of the checkpoint's model on each split ``cfg`` asks for."""
    device = select_device(cfg.device, cfg.auto_cpu_if_no_gpu)
    info = dataset_info(cfg.dataset)
    model = build(cfg.model, "model", in_channels=info.channels)
    load_model_state(model, state["model"], cfg.checkpoint)
    model.to(device, memory_format=torch.channels_last)  # as in training
    loss_fn = build_loss(cfg.loss, noise_matrix(cfg.dataset))
    data = load_data(cfg.dataset)
    attach_transition(loss_fn, data.transition)
    loss_fn.to(device)
    transform = BatchTransform(info.mean, info.std, device)
    precision = Precision(cfg.mixed_precision, device)
    results: dict[str, Any] = {
        "request": request,
        "checkpoint": str(cfg.checkpoint),
        "epoch": state.get("epoch"),
        "identity": state.get("identity"),
        "dataset": cfg.dataset.name,
    }
    if state.get("config") is not None:
        log.info(f"Evaluating a model trained on {cfg.dataset.name} ({cfg.model._target_})")
    splits = {name: getattr(data, name) for name in ("train", "val", "test")}
    if all(split is None for split in splits.values()):
        raise ConfigError(
            f"dataset.val.use=true: there is no validation split to evaluate "
            f"(dataset.val.split={cfg.dataset.val.split}) and no other split is on; set "
            f"dataset.val.split, or dataset.test.use=true"
        )
    for name, split in splits.items():
        if split is not None:
            scores = evaluate(
                model, split.to(device), transform, loss_fn, cfg.eval_batch_size, precision
            )
            if name != "test":  # scored against the (possibly noisy) labels trained on
                scores = {
                    **scores,
                    "labels": "as trained on",
                    "corrupted_fraction": split.noise_rate,
                }
            results[name] = scores
    return results
