"""A run's data on its device, and what comes with it: the SHA-256 of its training labels, the
transition matrix a loss can only get from the data (estimated from a first model, or the data's
class-level one), and the facts ``metrics.json`` records of it."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from phuber.datasets.labels import labels_sha256, save_labels
from phuber.datasets.load import Data, Split, load_data
from phuber.datasets.noise import realized_transition
from phuber.datasets.transforms import BatchTransform
from phuber.losses.forward import attach_transition
from phuber.training.build import Parts, loss_settings, probe_loss
from phuber.training.estimate import Estimate, estimate, forward_to_estimate
from phuber.training.plan import check_plan, run_plan


@dataclass
class RunData:
    """The splits on the device (``host``: the data as read), and what comes with them."""

    cfg: DictConfig
    host: Data
    train: Split
    val: Split | None
    test: Split | None
    eval_transform: BatchTransform
    labels_sha256: str  # of the noisy_labels.npz these labels make
    estimate: Estimate | None  # of T, where the loss estimates it
    noise: np.ndarray | None  # the noise model's T, where it is known without the data
    warnings: list[str]  # settings that act only in part in this run (phuber.training.plan)

    def save_labels(self, path: Path) -> None:
        save_labels(path, *self.host.labels, self.cfg.dataset.num_classes)

    def facts(self) -> tuple[dict[str, Any], np.ndarray]:
        """What ``metrics.json`` records of the data: sizes, rates, the labels' SHA-256, T's
        estimate; and the realized transition matrix of the training split."""
        host = self.host.train
        realized = realized_transition(
            host.clean_labels.numpy(), host.labels.numpy(), self.cfg.dataset.num_classes
        )
        estimated = self.estimate.record(self.noise, realized) if self.estimate else {}
        facts = {
            "train_size": len(self.train),
            "val_size": len(self.val) if self.val is not None else 0,
            "test_size": len(self.test) if self.test is not None else 0,
            "corrupt_prob": self.cfg.dataset.train.corrupt_prob,
            "realized_noise_rate": self.train.noise_rate,
            "num_noisy": int(host.is_noisy.sum()),
            "noisy_labels_sha256": self.labels_sha256,
            **estimated,
            **({"warnings": self.warnings} if self.warnings else {}),
        }
        return facts, realized


def load_run_data(cfg: DictConfig, parts: Parts) -> RunData:
    """Read the data ``cfg`` asks for onto the run's device, and complete the run's loss with
    what only the data gives it (``complete_loss``)."""
    data = load_data(cfg.dataset)
    warnings = check_plan(cfg, parts.loss_fn, run_plan(cfg, len(data.train)))
    device, info = parts.device, parts.info
    sha = labels_sha256(*data.labels, cfg.dataset.num_classes)
    train = data.train.to(device)
    val = data.val.to(device) if data.val is not None else None
    test = data.test.to(device) if data.test is not None else None
    transform = BatchTransform(info.mean, info.std, device)
    estimated = complete_loss(parts.loss_fn, cfg, data, train, transform, sha)
    parts.loss_fn.to(device)
    return RunData(cfg, data, train, val, test, transform, sha, estimated, parts.noise, warnings)


def complete_loss(
    loss_fn: nn.Module,
    cfg: DictConfig,
    data: Data,
    train_set: Split,
    transform: BatchTransform,
    labels_sha256: str,
) -> Estimate | None:
    """Give a loss the T that comes only with the data: estimated from a first model
    (``loss.estimate_from``), or the data's class-level matrix; then probe it (as the builder
    probes every other loss). The estimate, if T was estimated."""
    estimated = None
    if (forward := forward_to_estimate(loss_fn)) is not None:
        with torch.random.fork_rng(devices=[]):  # the source model's init draws nothing here
            estimated = estimate(
                forward, train_set.images, transform, labels_sha256, cfg.eval_batch_size, data.info
            )
    if attach_transition(loss_fn, data.transition) or estimated is not None:
        probe_loss(loss_fn, cfg.dataset.num_classes, loss_settings(cfg.loss, None))
    return estimated
