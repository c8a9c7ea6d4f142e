import itertools
import json
from pathlib import Path

import pytest
from conftest import CONF
from hydra.utils import instantiate
from omegaconf import OmegaConf

from phuber.training.build import build_loss, noise_matrix

DATASETS = sorted(p.stem for p in (CONF / "dataset").glob("*.yaml"))
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
LOSSES = sorted(p.stem for p in (CONF / "loss").glob("*.yaml"))
# Every data set with every model it can train (LeNet takes 28×28 images).
PAIRS = [f"{d}_{m}" for d, m in itertools.product(DATASETS, MODELS) if "mnist" in d or m != "lenet"]
COMPOSED = json.loads((Path(__file__).parent / "data" / "composed_configs.json").read_text())


@pytest.mark.parametrize("pair", PAIRS)
def test_every_hparams_pair_composes_and_instantiates(compose_cfg, pair):
    dataset, model = next(
        (d, m) for d, m in itertools.product(DATASETS, MODELS) if f"{d}_{m}" == pair
    )
    cfg = compose_cfg([f"dataset={dataset}", f"model={model}"])
    net = instantiate(cfg.model, in_channels=1 if "mnist" in dataset else 3)
    optimizer = instantiate(cfg.hparams.optimizer, net.parameters())
    instantiate(cfg.hparams.scheduler, optimizer)
    classes = 20 if dataset.endswith("_coarse") else 100 if dataset.startswith("cifar100") else 10
    assert cfg.model.num_classes == classes


def test_paper_hyperparameters(compose_cfg):
    mnist = compose_cfg(["dataset=mnist", "model=lenet"]).hparams
    assert (mnist.epochs, mnist.batch_size, mnist.optimizer.lr) == (20, 32, 1e-3)
    assert mnist.optimizer.weight_decay == 1e-3 and mnist.scheduler.decay_steps == 10000
    assert mnist.optimizer._target_ == "torch.optim.Adam"
    c10 = compose_cfg(["dataset=cifar10", "model=resnet50"]).hparams
    assert (c10.epochs, c10.batch_size, c10.optimizer.lr, c10.optimizer.momentum) == (
        400,
        64,
        0.1,
        0.1,
    )
    assert c10.optimizer.nesterov and c10.optimizer.weight_decay == 5e-4
    assert list(c10.scheduler.milestones) == [160, 300, 360] and c10.scheduler.gamma == 0.1
    c100 = compose_cfg(["dataset=cifar100", "model=resnet50"]).hparams
    assert (c100.epochs, c100.batch_size) == (200, 128)
    assert list(c100.scheduler.milestones) == [60, 120, 160] and c100.scheduler.gamma == 0.2


def test_defaults(compose_cfg):
    cfg = compose_cfg()
    assert cfg.dataset.name == "mnist_5k" and cfg.model._target_.endswith("LeNet")
    assert cfg.loss._target_ == "phuber.loss.PHuberCrossEntropy"


UPSTREAM_OVERRIDES = [
    "dataset=cifar10",
    "model=resnet50",
    "loss=phuber_ce",
    "loss.tau=2",
    "dataset.root=/tmp/data",
    "dataset.download=false",
    "dataset.train.corrupt_prob=0.4",
    "dataset.train.noise_seed=3",
    "dataset.train.augment=false",
    "dataset.val.split=0.1",
    "dataset.val.seed=1",
    "dataset.train.use=true",
    "dataset.val.use=false",
    "dataset.test.use=true",
    "hparams.epochs=3",
    "hparams.batch_size=16",
    "hparams.grad_clip_max_norm=0.1",
    "hparams.optimizer.lr=0.05",
    "hparams.optimizer.momentum=0.9",
    "hparams.scheduler.gamma=0.5",
    "mixed_precision=true",
    "device=cpu",
    "tensorboard=false",
    "save=false",
    "checkpoint=x.pt",
    "seed=0",
]


def test_every_upstream_override_path_exists(compose_cfg):
    cfg = compose_cfg(UPSTREAM_OVERRIDES)
    assert cfg.loss.tau == 2 and cfg.dataset.train.corrupt_prob == 0.4
    assert cfg.hparams.optimizer.momentum == 0.9 and cfg.hparams.grad_clip_max_norm == 0.1
    assert cfg.seed == 0 and cfg.checkpoint == "x.pt" and cfg.dataset.val.split == 0.1
    gce = compose_cfg(["loss=gce", "loss.q=0.5"])
    assert gce.loss.q == 0.5


def test_eval_config(compose_cfg):
    cfg = compose_cfg(["dataset=cifar10", "model=resnet50", "checkpoint=m.pt"], "eval")
    assert cfg.checkpoint == "m.pt"
    assert (cfg.dataset.train.use, cfg.dataset.val.use, cfg.dataset.test.use) == (
        False,
        False,
        True,
    )


def test_upstream_targets_resolve():
    from hydra.utils import get_class

    for target in [
        "phuber.loss.CrossEntropy",
        "phuber.loss.GeneralizedCrossEntropy",
        "phuber.loss.Unhinged",
        "phuber.loss.PHuberCrossEntropy",
        "phuber.loss.PHuberGeneralizedCrossEntropy",
        "phuber.scheduler.ExponentialDecayLR",
        "phuber.scheduler.ConstantLR",
        "phuber.network.LeNet",
    ]:
        assert get_class(target)
    assert Path(CONF / "hparams" / "optimizer" / "sgd.yaml").is_file()


@pytest.mark.parametrize("command", sorted(COMPOSED))
def test_composed_configs_are_those_of_the_pair_files(compose_cfg, command):
    """The recipes (conf/hparams/<model>, conf/recipe/) and the shared split settings
    (conf/splits/) compose every data set × model setting, with and without the paper's clipping,
    exactly as the 18 per-pair files and 5 self-contained data set files did (the JSON was
    written from those files before they were merged), plus ``hparams.scheduler_interval``, which
    the scheduler class used to declare, and options added since, off by default
    (``hparams.logit_clip``, ``eval_every``, ``dataset.train.label_file``, ``dataset.module``)."""
    name, _, overrides = command.rpartition(": ")
    cfg = compose_cfg(overrides.split(), name or "train")
    expected = COMPOSED[command]
    if "hparams" in expected:  # the one addition: the schedule's stepping interval, now a key
        hparams = expected["hparams"]
        per_step = hparams["scheduler"]["_target_"] == "phuber.scheduler.ExponentialDecayLR"
        hparams["scheduler_interval"] = "step" if per_step else "epoch"
        hparams["logit_clip"] = None
        expected["eval_every"] = None
    if "train" in expected.get("dataset", {}):
        expected["dataset"]["train"]["label_file"] = None
        expected["dataset"]["module"] = None
    assert OmegaConf.to_container(cfg, resolve=True) == expected


@pytest.mark.parametrize(
    "overrides,noise",
    [
        (["+experiment=robust_mnist_5k", "+robust_noise=instance40"], ("instance", 0.4, None)),
        (
            ["+experiment=robust_cifar10", "dataset=cifar10n", "+robust_noise=human"],
            ("symmetric", 0.0, "worse"),
        ),
    ],
)
def test_robust_grid_runs_on_instance_noise_and_human_labels(compose_cfg, overrides, noise):
    """The grid's methods build on them (the forward correction waits for the data's matrix)."""
    for method in ("forward", "ce_logitclip", "mnist/sce"):  # data-dependent T, a wrapper, params
        cfg = compose_cfg([*overrides, f"+robust_loss={method}"])
        train = cfg.dataset.train
        assert (train.noise_type, train.corrupt_prob, train.get("human_labels")) == noise
        assert build_loss(cfg.loss, noise_matrix(cfg.dataset), cfg.hparams.logit_clip)
