"""The data sets phuber knows, by name: what a model and the input pipeline need to know about
each (channels, size, normalisation) and how to read it. Adding one is adding an entry to
``DATASETS`` and a ``conf/dataset/<name>.yaml`` (README "Extending phuber").

Importing this module imports no torch, so the config checks that consult ``DATASETS`` answer
before torch loads.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phuber.datasets.human_labels import CIFAR10N, CIFAR100N, CIFAR100N_COARSE, HumanLabels
from phuber.datasets.readers import _mnist_5k, _read_files

if TYPE_CHECKING:
    import torch


# A data set's reader: (root, train split?, download missing files?, number of classes) → uint8
# images (N, C, H, W) and int64 labels (N,), every file checked (labels within the classes).
Reader = Callable[[Path, bool, bool, "int | None"], "tuple[torch.Tensor, torch.Tensor]"]


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and the input pipeline need to know about a data set, and how to read it.
    Its number of classes is in its config (``conf/dataset/<name>.yaml``), and nowhere else."""

    channels: int
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    read: Reader
    human: HumanLabels | None = None  # training labels from human annotators (CIFAR-N)


def _files(name: str, labels_key: str | None = None) -> Reader:
    return functools.partial(_read_files, name, labels_key=labels_key)


_MNIST_STATS = ((0.1307,), (0.3081,))
DATASETS: dict[str, DatasetInfo] = {
    "mnist_5k": DatasetInfo(1, 28, *_MNIST_STATS, _mnist_5k),
    "mnist": DatasetInfo(1, 28, *_MNIST_STATS, _files("mnist")),
    "fashion_mnist": DatasetInfo(1, 28, (0.2860,), (0.3530,), _files("fashion_mnist")),
    "cifar10": DatasetInfo(
        3, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), _files("cifar10")
    ),
    "cifar100": DatasetInfo(
        3, 32, (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761), _files("cifar100")
    ),
}
# CIFAR-10N / CIFAR-100N: CIFAR's images and test sets, human training labels.
DATASETS["cifar10n"] = dataclasses.replace(DATASETS["cifar10"], human=CIFAR10N)
DATASETS["cifar100n"] = dataclasses.replace(DATASETS["cifar100"], human=CIFAR100N)
# CIFAR-100N's 20-class variant: CIFAR-100's super-classes, human coarse labels.
DATASETS["cifar100n_coarse"] = dataclasses.replace(
    DATASETS["cifar100"], read=_files("cifar100", "coarse_labels"), human=CIFAR100N_COARSE
)


def dataset_info(dataset: Any) -> DatasetInfo:
    """The registered data set of a ``dataset`` config node (``name``), after importing the
    module its ``module`` key names, where it names one: a data set added from outside phuber
    registers itself in ``DATASETS`` when its module is imported. ``KeyError`` if unknown."""
    module = dataset.get("module") if hasattr(dataset, "get") else None
    if module is not None:
        importlib.import_module(module)
    return DATASETS[dataset.get("name")]
