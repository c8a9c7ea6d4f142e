"""Batched evaluation on the device, and the ``eval.py`` entry point's work."""

import logging
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from phuber.checkpoint import load_checkpoint, load_model_state, save_json
from phuber.config import validate
from phuber.dataset import Split, load_data
from phuber.runtime import Precision, select_device
from phuber.transform import BatchTransform

log = logging.getLogger(__name__)


@torch.no_grad()
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
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, device=split.labels.device, dtype=torch.float64)
    for start in range(0, len(split), batch_size):
        end = start + batch_size
        with precision.autocast():
            logits = model(transform(split.images[start:end]))
        pred = logits.argmax(1)
        labels = split.labels[start:end]
        n = labels.shape[0]
        sums += torch.stack(
            [
                loss_fn(logits, labels).double() * n,
                (pred == labels).sum(),
                (pred == split.clean_labels[start:end]).sum(),
            ]
        )
    model.train(was_training)
    loss, acc, clean_acc = (sums / max(len(split), 1)).tolist()
    metrics = {"loss": loss, "acc": acc}
    if bool(split.is_noisy.any()):
        metrics["clean_acc"] = clean_acc
    return metrics


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Score ``cfg.checkpoint`` on the splits chosen by ``dataset.{train,val,test}.use``; print
    and return accuracy and loss per split, and write ``eval.json`` into ``out_dir``."""
    validate(cfg, need_checkpoint=True)
    device = select_device(cfg.device, cfg.auto_cpu_if_no_gpu)
    state = load_checkpoint(cfg.checkpoint)
    data = load_data(cfg.dataset)
    model = instantiate(cfg.model, in_channels=data.info.channels)
    load_model_state(model, state["model"], cfg.checkpoint)
    model.to(device)
    loss_fn = instantiate(cfg.loss)
    transform = BatchTransform(data.info.mean, data.info.std, device)
    precision = Precision(cfg.mixed_precision, device)
    results: dict[str, Any] = {"checkpoint": str(cfg.checkpoint), "epoch": state.get("epoch")}
    for name in ("train", "val", "test"):
        split = getattr(data, name)
        if split is None:
            continue
        scores = evaluate(
            model, split.to(device), transform, loss_fn, cfg.eval_batch_size, precision
        )
        results[name] = scores
        extra = f" | clean acc {scores['clean_acc']:.4f}" if "clean_acc" in scores else ""
        print(f"{name}: accuracy {scores['acc']:.4f} | loss {scores['loss']:.4f}{extra}")
    save_json(out_dir / "eval.json", results)
    return results
