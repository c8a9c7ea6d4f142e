"""CIFAR-10N / CIFAR-100N: human training labels read from files in the authors' format (written
here, no network), checked against CIFAR's own labels, and never able to run code."""

import dataclasses
import hashlib
import io
import json
import os

import numpy as np
import pytest
import torch
from datafiles import write_cifar, write_cifar_n
from test_dataset import dataset_cfg

from phuber.core.errors import DataError
from phuber.datasets import human_labels
from phuber.datasets.load import load_data
from phuber.datasets.registry import DATASETS


def cifar_n_cfg(root, name="cifar10n", choice="worse"):
    cfg = dataset_cfg(name, root, human_labels=choice, noise_type="symmetric")
    cfg.num_classes = {"cifar100n": 100, "cifar100n_coarse": 20}.get(name, 10)
    return cfg


@pytest.fixture
def cifar10n(tmp_path):
    arrays = write_cifar(tmp_path)
    labels = write_cifar_n(tmp_path, arrays[True][1])
    return tmp_path, arrays, labels


@pytest.mark.parametrize("choice", ["aggre", "worse", "random1", "random2", "random3"])
def test_human_labels_replace_the_training_labels(cifar10n, choice):
    root, arrays, labels = cifar10n
    data = load_data(cifar_n_cfg(root, choice=choice))
    key = human_labels.CIFAR10N.choices[choice]
    np.testing.assert_array_equal(data.train.labels.numpy(), labels[key])
    np.testing.assert_array_equal(data.train.clean_labels.numpy(), arrays[True][1])
    np.testing.assert_array_equal(data.train.images.numpy(), arrays[True][0])
    assert data.train.noise_rate == pytest.approx(np.mean(labels[key] != labels["clean_label"]))
    np.testing.assert_array_equal(data.test.labels.numpy(), arrays[False][1])  # CIFAR's test set
    assert np.allclose(data.transition.sum(1), 1)


def test_cifar100n(tmp_path):
    arrays = write_cifar(tmp_path, 100)
    labels = write_cifar_n(tmp_path, arrays[True][1], num_classes=100)
    data = load_data(cifar_n_cfg(tmp_path, "cifar100n", "noisy"))
    np.testing.assert_array_equal(data.train.labels.numpy(), labels["noisy_label"])


def test_cifar100n_coarse_labels(tmp_path):
    """dataset=cifar100n_coarse: 20 classes, CIFAR-100's super-classes for the clean and test
    labels, the file's noisy_coarse_label for training."""
    from phuber.datasets.noise import CIFAR100_COARSE

    arrays = write_cifar(tmp_path, num_classes=100)
    labels = write_cifar_n(tmp_path, arrays[True][1], num_classes=100)
    data = load_data(cifar_n_cfg(tmp_path, "cifar100n_coarse", "noisy_coarse"))
    np.testing.assert_array_equal(data.train.labels.numpy(), labels["noisy_coarse_label"])
    np.testing.assert_array_equal(data.train.clean_labels.numpy(), CIFAR100_COARSE[arrays[True][1]])
    np.testing.assert_array_equal(data.test.labels.numpy(), CIFAR100_COARSE[arrays[False][1]])
    assert data.train.labels.max() < 20 and data.transition.shape == (20, 20)


def test_clean_labels_must_be_cifars(cifar10n):
    root, arrays, _ = cifar10n
    other = arrays[True][1].copy()
    other[7] = (other[7] + 1) % 10
    write_cifar_n(root, other)
    with pytest.raises(DataError) as err:
        load_data(cifar_n_cfg(root))
    message = str(err.value)
    assert "CIFAR-10_human.pt" in message and str(root) in message and "index 7" in message


def test_a_file_with_code_is_refused_and_nothing_runs(cifar10n, tmp_path):
    root, arrays, _ = cifar10n
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    write_cifar_n(root, arrays[True][1], worse_label=Payload())
    with pytest.raises(DataError, match="without running code"):
        load_data(cifar_n_cfg(root))
    assert not marker.exists()


@pytest.mark.parametrize(
    "replace,match",
    [
        ({"worse_label": None}, r"has no 'worse_label'"),
        ({"clean_label": None}, r"has no 'clean_label'"),
        ({"worse_label": np.zeros(99, dtype=np.int64)}, r"'worse_label': holds 99 labels"),
        ({"worse_label": [0.5] * 100}, r"'worse_label': labels must be integers, got float64"),
        ({"worse_label": np.full(100, 10, dtype=np.int64)}, r"label 10 at index 0 is outside"),
        ({"worse_label": [[1, 2], [3]] * 50}, r"'worse_label': not one label per example"),
    ],
)
def test_wrong_keys_lengths_and_labels(cifar10n, replace, match):
    root, arrays, _ = cifar10n
    write_cifar_n(root, arrays[True][1], **replace)
    with pytest.raises(DataError, match=match):
        load_data(cifar_n_cfg(root))


def test_not_a_dict_and_not_a_pickle(cifar10n):
    root, _, _ = cifar10n
    torch.save([1, 2, 3], root / "CIFAR-10_human.pt")
    with pytest.raises(DataError, match="holds a list"):
        load_data(cifar_n_cfg(root))
    (root / "CIFAR-10_human.pt").write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="is truncated or not a PyTorch file"):
        load_data(cifar_n_cfg(root))


@pytest.mark.parametrize("legacy", [False, True])
def test_an_empty_or_truncated_file_is_named_so(cifar10n, legacy):
    """Not mistaken for a file refused for carrying code; the old (non-zip) format too."""
    root, arrays, _ = cifar10n
    path = root / "CIFAR-10_human.pt"
    labels = write_cifar_n(root, arrays[True][1])
    torch.save(labels, path, _use_new_zipfile_serialization=not legacy)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match=r"CIFAR-10_human\.pt is truncated or not a PyTorch file"):
        load_data(cifar_n_cfg(root))
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"CIFAR-10_human.pt is empty \(0 bytes\)"):
        load_data(cifar_n_cfg(root))


def test_download_keeps_only_a_file_with_the_published_checksum(cifar10n, monkeypatch):
    root, _, labels = cifar10n
    buffer = io.BytesIO()
    torch.save(labels, buffer)
    payload = buffer.getvalue()
    (root / "CIFAR-10_human.pt").unlink()
    fetch = lambda url, timeout: io.BytesIO(payload)  # noqa: E731
    monkeypatch.setattr(human_labels.urllib.request, "urlopen", fetch)
    cfg = cifar_n_cfg(root)
    cfg.download = True
    with pytest.raises(DataError, match=r"SHA-256 .* not the published 873e69c3"):
        load_data(cfg)
    assert not (root / "CIFAR-10_human.pt").exists()
    digest = hashlib.sha256(payload).hexdigest()
    published = dataclasses.replace(human_labels.CIFAR10N, sha256=digest)
    monkeypatch.setitem(
        DATASETS, "cifar10n", dataclasses.replace(DATASETS["cifar10n"], human=published)
    )
    data = load_data(cfg)
    assert (root / "CIFAR-10_human.pt").read_bytes() == payload
    np.testing.assert_array_equal(data.train.labels.numpy(), labels["worse_label"])


def test_missing_file_offline_through_the_cli(cli, tmp_path):
    """Downloading from here fails (no internet): the message names the file expected, the URL
    tried and the offline alternative, with no traceback."""
    write_cifar(tmp_path / "data")
    code, output = cli(
        "train.py", "dataset=cifar10n", "model=resnet18", "dataset.train.human_labels=aggre"
    )
    assert code != 0 and "Traceback" not in output
    for part in (
        "CIFAR-10_human.pt",
        "could not be downloaded",
        "tried: https://github.com/UCSC-REAL",
    ):
        assert part in output, output
    assert "dataset=mnist_5k" in output
    assert not (tmp_path / "data" / "CIFAR-10_human.pt").exists()


def test_trains_and_records_the_realized_rate_through_the_cli(cli, tmp_path):
    arrays = write_cifar(tmp_path / "data", per_batch=10)
    labels = write_cifar_n(tmp_path / "data", arrays[True][1])
    code, output = cli(
        "train.py",
        "dataset=cifar10n",
        "model=resnet18",
        "dataset.train.human_labels=aggre",
        "hparams.epochs=1",
        "hparams.batch_size=25",
        "seed=0",
        "tensorboard=false",
        "save=false",
        "hydra.run.dir=run",
    )
    assert code == 0, output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    rate = np.mean(labels["aggre_label"] != labels["clean_label"])
    assert metrics["data"]["realized_noise_rate"] == pytest.approx(rate)
    assert metrics["identity"]["settings"]["dataset.train.human_labels"] == "aggre"
    assert "train_noisy_memorised" in metrics["history"][0]
