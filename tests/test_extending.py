"""README's "Extending phuber": a loss, a data set or a model is a class (or reader) plus one
YAML file, and then trains, is named and is reported like the built-in ones."""

import json
import shutil

import pytest
from conftest import CONF
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from phuber import train
from phuber.dataset import DATASETS, DatasetInfo
from phuber.errors import ConfigError


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
