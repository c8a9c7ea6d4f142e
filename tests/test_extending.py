"""README's "Extending phuber": a loss, a data set or a model is a class (or reader) plus one
YAML file, and then trains, is named and is reported like the built-in ones."""

import json
import shutil
import sys

import pytest
from conftest import CONF
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from phuber.core.errors import ConfigError
from phuber.datasets.registry import DATASETS, DatasetInfo
from phuber.training import run as train


@pytest.fixture
def conf(tmp_path):
    """A copy of conf/ to add YAML files to, and compose(...) from it."""
    folder = tmp_path / "conf"
    shutil.copytree(CONF, folder)

    def _compose(*overrides, recipe=True):
        short = ["hparams.epochs=1"] if recipe else []
        with initialize_config_dir(version_base="1.3", config_dir=str(folder)):
            cfg = compose("train", [*overrides, *short, "seed=0", "device=cpu"])
        with open_dict(cfg):
            cfg.tensorboard = False
        return cfg

    return folder, _compose


def test_a_new_loss_is_a_class_and_a_yaml(conf, tmp_path):
    folder, compose_ = conf
    (folder / "loss" / "squared.yaml").write_text("_target_: toys.SquaredLoss\nscale: 2.0\n")
    final = train.run(compose_("loss=squared", "dataset.train.corrupt_prob=0.2"), tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["identity"]["loss"] == "squared"
    assert metrics["identity"]["settings"]["loss.scale"] == 2.0  # its parameter, from its YAML
    assert metrics["summary"]["scale"] == 2.0 and 0 <= final["test_acc"] <= 1


def test_a_new_data_set_is_a_reader_and_a_yaml(conf, tmp_path, monkeypatch):
    from toys import read_toy

    folder, compose_ = conf
    # In phuber/dataset.py this is one more DATASETS entry beside the reader.
    monkeypatch.setitem(DATASETS, "toy", DatasetInfo(1, 28, (0.5,), (0.25,), read_toy))
    (folder / "dataset" / "toy.yaml").write_text(
        "defaults:\n  - /splits@_here_: default\n  - _self_\n\nname: toy\nnum_classes: 2\n"
    )
    final = train.run(compose_("dataset=toy", "model=lenet"), tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["data"]["train_size"] == 200 and metrics["data"]["test_size"] == 100
    assert final["test_acc"] > 0.9  # bright against dark: LeNet learns it in one epoch


def test_a_new_model_is_a_class_and_a_yaml(conf, tmp_path):
    folder, compose_ = conf
    (folder / "model" / "tiny.yaml").write_text(
        "_target_: toys.TinyNet\nnum_classes: ${dataset.num_classes}\n"
    )
    with pytest.raises(ConfigError, match=r"there is none for this model .*hparams=lenet"):
        train.run(compose_("model=tiny", recipe=False), tmp_path / "refused")
    final = train.run(compose_("model=tiny", "hparams=lenet"), tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["identity"]["model"] == "tinynet" and final["test_acc"] > 0.5


EXTENSION = """
import torch
from torch import nn

from phuber.core.declared import declare
from phuber.core.domains import Real
from phuber.datasets.registry import DATASETS, DatasetInfo
from phuber.losses import TargetProbLoss


class SquaredLoss(TargetProbLoss):
    name = "squared"
    domains = declare(scale=Real(0, low_open=True))  # checked before __init__ runs

    def __init__(self, scale=1.0, reduction="mean"):
        super().__init__(reduction)
        self.scale = scale

    def from_log_prob(self, log_p):
        return self.scale * (1 - log_p.exp()) ** 2


def read_toy(root, train, download, num_classes):
    g = torch.Generator().manual_seed(int(train))
    labels = torch.randint(0, 2, (200 if train else 100,), generator=g)
    base = torch.where(labels[:, None, None, None] == 1, 180, 60)
    noise = torch.randint(0, 60, (len(labels), 1, 28, 28), generator=g)
    return (base + noise).to(torch.uint8), labels


DATASETS["toy"] = DatasetInfo(1, 28, (0.5,), (0.25,), read_toy)


def read_wrong(root, train, download, num_classes):  # a defective reader: labels beyond K
    images, labels = read_toy(root, train, download, num_classes)
    return images, labels + 10


DATASETS["wrong"] = DatasetInfo(1, 28, (0.5,), (0.25,), read_wrong)


class TinyNet(nn.Module):
    def __init__(self, num_classes=10, in_channels=1):
        super().__init__()
        self.fc = nn.Linear(in_channels * 28 * 28, num_classes)

    def forward(self, x):
        return self.fc(x.flatten(1))
"""


def test_an_extension_from_outside_the_package(cli, tmp_path, monkeypatch):
    """docs/extending.md, done as it says: a module and a config folder of one's own, used with
    --config-dir and PYTHONPATH through the real CLI; a bad parameter is one message."""
    ext = tmp_path / "my_ext"
    for group, text in (
        ("loss/squared.yaml", "_target_: my_ext.SquaredLoss\nscale: 2.0\n"),
        (
            "dataset/toy.yaml",
            "defaults:\n  - /splits@_here_: default\n  - _self_\n\nname: toy\nmodule: my_ext\n"
            "num_classes: 2\n",
        ),
        ("model/tiny.yaml", "_target_: my_ext.TinyNet\nnum_classes: ${dataset.num_classes}\n"),
    ):
        (ext / "conf" / group).parent.mkdir(parents=True, exist_ok=True)
        (ext / "conf" / group).write_text(text)
    (ext / "my_ext.py").write_text(EXTENSION)
    monkeypatch.syspath_prepend(str(ext))
    args = ["--config-dir", str(ext / "conf"), "loss=squared", "dataset=toy", "model=tiny"]
    args += ["hparams=lenet", "hparams.epochs=1", "seed=0", "device=cpu", "tensorboard=false"]
    code, output = cli("train.py", *args, "hydra.run.dir=run")
    assert code == 0, output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["identity"]["loss"] == "squared" and metrics["identity"]["model"] == "tinynet"
    assert metrics["data"]["train_size"] == 200 and metrics["final"]["test_acc"] > 0.9
    code, output = cli("train.py", *args, "loss.scale=-1", "hydra.run.dir=refused")
    assert code == 2 and "loss.scale=-1: must be > 0" in output, output
    # dataset.module on the command line, and a reader whose labels are outside the classes:
    # checked at the boundary like phuber's own readers, one message naming it
    wrong = ["dataset.module=my_ext", "dataset.name=wrong", "dataset.num_classes=2"]
    code, output = cli("train.py", *wrong, "hparams.epochs=1", "device=cpu", "hydra.run.dir=w")
    assert code == 2 and "the reader of data set 'wrong' (my_ext.read_wrong)" in output, output
    assert "at index 0 is outside the 2 classes 0…1" in output and "Traceback" not in output
    for name in ("toy", "wrong"):
        DATASETS.pop(name)  # registered by the module: gone for the next tests
    sys.modules.pop("my_ext")
