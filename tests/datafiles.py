"""Write tiny data sets in torchvision's on-disk layouts, so tests go through the real readers."""

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

from phuber.datasets.noise import CIFAR100_COARSE

IDX_NAMES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX format: magic (0, 0, dtype 0x08 = uint8, ndim), big-endian dims, then the data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def make_images(n: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, *shape), dtype=np.uint8), rng.integers(0, 10, n)


def write_mnist(folder: Path, n_train: int = 64, n_test: int = 32, gz: bool = False) -> dict:
    """IDX files into ``folder`` (e.g. ``root/MNIST/raw``), plain or ``.gz``."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for train, n in ((True, n_train), (False, n_test)):
        images, labels = make_images(n, (28, 28), seed=int(train))
        for name, array in zip(IDX_NAMES[train], (images, labels), strict=True):
            data = idx_bytes(array)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
        arrays[train] = (images, labels)
    return arrays


def write_cifar(root: Path, num_classes: int = 10, per_batch: int = 20) -> dict:
    """CIFAR's python pickle batches (5 train batches + test, or CIFAR-100's train + test)."""
    if num_classes == 10:
        folder, files, key = (
            root / "cifar-10-batches-py",
            [f"data_batch_{i}" for i in range(1, 6)],
            "labels",
        )
        test_file, meta = "test_batch", ("batches.meta", "label_names")
    else:
        folder, files, key = root / "cifar-100-python", ["train"], "fine_labels"
        test_file, meta = "test", ("meta", "fine_label_names")
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for train, names in ((True, files), (False, [test_file])):
        all_images, all_labels = [], []
        for i, name in enumerate(names):
            rng = np.random.default_rng(100 * train + i)
            images = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
            labels = rng.integers(0, num_classes, per_batch)
            batch = {"data": images.reshape(per_batch, -1), key: labels.tolist()}
            if num_classes == 100:  # the super-class of each fine label, as CIFAR-100's files
                batch["coarse_labels"] = CIFAR100_COARSE[labels].tolist()
            with open(folder / name, "wb") as f:
                pickle.dump(batch, f)
            all_images.append(images)
            all_labels.append(labels)
        arrays[train] = (np.concatenate(all_images), np.concatenate(all_labels))
    with open(folder / meta[0], "wb") as f:
        pickle.dump({meta[1]: [f"class{i}" for i in range(num_classes)]}, f)
    return arrays


CIFAR10N_KEYS = ("aggre_label", "worse_label", "random_label1", "random_label2", "random_label3")


def write_cifar_n(root: Path, clean: np.ndarray, num_classes: int = 10, **replace) -> dict:
    """A CIFAR-N label file as its authors publish it (a ``torch.save``d dict of int64 NumPy
    arrays) beside the CIFAR folders; ``replace`` swaps or adds entries. Returns the dict."""
    import torch

    rng = np.random.default_rng(7)
    clean = np.asarray(clean, dtype=np.int64)

    def noisy(rate: float) -> np.ndarray:
        flip = rng.random(clean.shape[0]) < rate
        other = (clean + rng.integers(1, num_classes, clean.shape[0])) % num_classes
        return np.where(flip, other, clean)

    if num_classes == 10:
        data = {"clean_label": clean}
        rates = (0.1, 0.4, 0.2, 0.2, 0.2)
        data.update({key: noisy(rate) for key, rate in zip(CIFAR10N_KEYS, rates, strict=True)})
        name = "CIFAR-10_human.pt"
    else:
        data = {"clean_label": clean, "noisy_label": noisy(0.4)}
        data["clean_coarse_label"] = CIFAR100_COARSE[clean].tolist()
        data["noisy_coarse_label"] = CIFAR100_COARSE[data["noisy_label"]].tolist()
        name = "CIFAR-100_human.pt"
    data.update(replace)
    data = {k: v for k, v in data.items() if v is not None}
    torch.save(data, root / name)
    return data
