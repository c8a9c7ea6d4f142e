"""The training and evaluation configs' checks that need no built object: types, ranges, the
device, importable targets. Values that an object can judge (a loss's τ, the noise rate, an
optimiser's arguments) are judged by that object when it is built (``phuber.training.build``);
this module does not restate those rules.
"""

import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from phuber.core.checks import SEED, Problem, check_keys, depends, problem, raise_problems
from phuber.core.domains import Choice, File, Flag, Integer, Real, Text, is_int
from phuber.datasets.labels import LABEL_FILE
from phuber.datasets.noise import CORRUPT_PROB, NOISE_TYPE

# More classes than any data set of the literature on label noise (WebVision: 1,000); noise
# models and their corrections hold dense K×K matrices, 128 MiB each at this K in float64.
MAX_CLASSES = 4096
CONF = Path(__file__).resolve().parents[2] / "conf"

# The harness's own keys, consumed by the trainer and the data's loading (a class's parameters
# are declared on the class: phuber.core.domains).
KEYS = {
    "dataset.name": Text("a data set name"),
    "dataset.root": Text("a folder path (a string)"),
    "dataset.download": Flag(),
    "dataset.num_classes": Integer(2, MAX_CLASSES, why="the data set's classes"),
    "dataset.module": Text(
        "the dotted name of a module that registers a data set",
        nullable=True,
        null_means="the data set is phuber's own",
    ),
    "dataset.train.corrupt_prob": CORRUPT_PROB,
    "dataset.train.noise_type": NOISE_TYPE,
    "dataset.train.noise_seed": SEED,
    "dataset.train.augment": Flag(),
    "dataset.train.label_file": LABEL_FILE,
    "dataset.val.split": Real(
        0, 1, high_open=True, nullable=True, null_means="no validation split"
    ),
    "dataset.val.seed": SEED,
    "hparams.epochs": Integer(0),
    "hparams.batch_size": Integer(1),
    "hparams.scheduler_interval": Choice(
        ("step", "epoch"), why="step: after every optimiser step; epoch: after every epoch"
    ),
    "eval_batch_size": Integer(1),
    "eval_every": Integer(
        1,
        why="epochs",
        nullable=True,
        null_means="every epoch up to 10,000 test images, else every 10",
    ),
    "seed": SEED,
    "mixed_precision": Flag(),
    "tensorboard": Flag(),
    "save": Flag(),
    "compile": Flag(),
    "auto_cpu_if_no_gpu": Flag(),
    "dataset.train.use": Flag(),
    "dataset.val.use": Flag(),
    "dataset.test.use": Flag(),
    "checkpoint": File("checkpoint", nullable=True, null_means="start afresh"),
}
# What each part of a run is built from (phuber.training.build): a broken key among them skips
# the part; when only checking a config, a changed one is what makes the part worth building.
PARTS = {
    "precision": ("device", "auto_cpu_if_no_gpu", "mixed_precision"),
    "model": ("model", "dataset.name", "dataset.num_classes", "dataset.module"),
    "noise": (
        "dataset.name",
        "dataset.num_classes",
        "dataset.module",
        "dataset.train.corrupt_prob",
        "dataset.train.noise_type",
        "dataset.train.human_labels",
        "dataset.train.label_file",
    ),
    "loss": ("loss", "dataset.num_classes", "hparams.logit_clip"),
    "optimizer": ("hparams.optimizer",),
    "scheduler": ("hparams.scheduler", "hparams.scheduler_interval"),
    "gradient_step": ("hparams.grad_clip_max_norm", "hparams.grad_clip_mode", "compile"),
}
# The parts each part is made from.
_INPUTS = {
    "model": ("precision",),
    "loss": ("noise",),
    "optimizer": ("model",),
    "scheduler": ("optimizer",),
    "gradient_step": ("model", "loss", "optimizer", "precision"),
}


def parts_to_build(changed: Iterable[str] | None) -> set[str]:
    """The parts a check builds: every part (``changed`` is ``None``), or those the ``changed``
    keys feed and what they are made from. A part none of whose keys changed is as a shipped
    config option makes it, and every shipped option is built by the suite
    (``tests/test_domains.py``): building it again could only repeat that."""
    if changed is None:
        return set(PARTS)
    wanted = {part for part, keys in PARTS.items() if depends(keys, changed)}
    grown: set[str] = set()
    while wanted - grown:
        part = (wanted - grown).pop()
        grown.add(part)
        wanted.update(_INPUTS.get(part, ()))
    return wanted


# Config nodes that name a class to build, and the group that chooses them.
TARGETS = {
    "model": "model",
    "loss": "loss",
    "hparams.optimizer": "hparams/optimizer",
    "hparams.scheduler": "hparams",
}


def validate(
    cfg: DictConfig,
    task: str = "train",
    also: Iterable[Problem] = (),
    changed: Iterable[str] | None = None,
) -> None:
    """Raise one ``ConfigError`` listing every problem (``also``'s first): the config's own
    (types, ranges, the device) and, for training, those that building its objects finds
    (``phuber.training.build``; what depends on a broken value is not built).

    ``changed``: the keys the command line set. Only the parts they feed are judged by
    importing and building (``parts_to_build``), and always, before the trainer builds the
    whole run: a typo alone is answered without importing torch, and a bad loss parameter
    before the optimiser's first import of ``torch._dynamo``. Without ``changed`` (a library
    call: anything may have changed), building runs here only where the config already has
    problems; otherwise the trainer's own build judges it.

    ``task`` is ``train`` or ``eval`` (which needs a checkpoint and no training split).
    """
    changed = None if changed is None else list(changed)
    problems = [*also, *config_problems(cfg, task, changed)]
    judge = problems or changed is not None
    if judge and task == "train" and parts_to_build(changed):
        from phuber.training.build import build_problems  # torch

        broken = {p.key for p in problems if isinstance(p, Problem) and p.key}
        problems += build_problems(cfg, broken, changed)
    raise_problems(problems)


def config_problems(
    cfg: DictConfig, task: str = "train", changed: Iterable[str] | None = None
) -> list[Problem]:
    """Every bad value that needs no built object: key, value and what is allowed. With
    ``changed``, only the keys that changed are judged by their domains, and targets are
    imported and the device probed only where those keys changed them (both import torch)."""
    from phuber.datasets.registry import DATASETS, dataset_info

    judged = KEYS if changed is None else {k: d for k, d in KEYS.items() if depends((k,), changed)}
    problems = check_keys(cfg, judged)

    def bad(key: str, value: Any, allowed: str) -> None:
        problems.append(problem(key, value, allowed))

    name = OmegaConf.select(cfg, "dataset.name")
    model = OmegaConf.select(cfg, "model._target_", default="")
    module = OmegaConf.select(cfg, "dataset.module")
    try:
        info = dataset_info(cfg.dataset) if "dataset" in cfg else None
    except KeyError:
        info = None
    except Exception as err:  # the extension's module: ImportError, or its own defect
        info = None
        allowed = f"an importable module that registers the data set ({type(err).__name__}: {err})"
        bad("dataset.module", module, allowed)
    if info is None and isinstance(name, str) and module is None:
        bad("dataset.name", name, f"one of {sorted(DATASETS)}")
    elif info is None and isinstance(name, str):
        bad("dataset.name", name, f"a data set that dataset.module={module!r} registers")
    if task == "train" and "hparams" not in cfg:
        model_name = str(model).rsplit(".", 1)[-1].lower()
        recipes = " or ".join(f"hparams={p.stem}" for p in sorted(CONF.glob("hparams/*.yaml")))
        bad(
            "hparams",
            None,
            f"a training recipe: there is none for this model (conf/hparams/{model_name}.yaml); "
            f"choose one, e.g. {recipes}",
        )
    for key, group in TARGETS.items():
        node = OmegaConf.select(cfg, key, default="<absent>")
        if isinstance(node, str) and node == "<absent>":
            continue
        if not (isinstance(node, DictConfig) and "_target_" in node):
            bad(key, node, f"a config node with a _target_; choose one with {group}=NAME")
        elif changed is not None and not depends((key,), changed):
            continue  # a shipped option's class: imported (and built) by the suite
        elif (missing := _unimportable(node._target_)) is not None:
            bad(
                f"{key}._target_",
                node._target_,
                f"a class or function phuber can import ({missing})",
            )
    if task == "train" and OmegaConf.select(cfg, "dataset.train.use") is False:
        bad("dataset.train.use", False, "true to train (false is for eval.py)")
    classes = OmegaConf.select(cfg, "dataset.num_classes", default="<absent>")
    in_range = classes == "<absent>" or (is_int(classes) and 2 <= classes <= MAX_CLASSES)
    if in_range and OmegaConf.select(cfg, "model.num_classes", default=classes) != classes:
        value = OmegaConf.select(cfg, "model.num_classes")
        bad("model.num_classes", value, f"{classes}, the dataset.num_classes of {name}")
    if str(model).endswith("LeNet") and info is not None and info.size != 28:
        others = " or ".join(f"model={p.stem}" for p in sorted(CONF.glob("model/resnet*.yaml")))
        bad(
            "model",
            "lenet",
            f"used with 28×28 data; {name} images are {info.size}×{info.size}: choose {others}",
        )
    checkpoint = OmegaConf.select(cfg, "checkpoint")
    if task == "eval" and checkpoint is None:
        bad(
            "checkpoint",
            checkpoint,
            "the path of a saved model, e.g. checkpoint=outputs/…/final_model.pt",
        )
    if task == "eval" and not any(
        OmegaConf.select(cfg, f"dataset.{split}.use") is True for split in ("train", "val", "test")
    ):
        bad("dataset.test.use", OmegaConf.select(cfg, "dataset.test.use"), _NOTHING_TO_EVALUATE)
    if changed is None or depends(PARTS["precision"], changed):
        problems += _device_problems(cfg)
    return problems


_NOTHING_TO_EVALUATE = (
    "true, or dataset.train.use / dataset.val.use true: with every split off there is nothing "
    "to evaluate"
)


def _device_problems(cfg: DictConfig) -> list[Problem]:
    """The device must exist on this machine (or CUDA fall back to the CPU when allowed)."""
    import torch

    name = OmegaConf.select(cfg, "device", default="cpu")
    try:
        if not isinstance(name, str):
            raise TypeError(name)
        device = torch.device(name)
    except (RuntimeError, TypeError):
        return [problem("device", name, "a torch device such as cpu, cuda or cuda:0")]
    here = "cpu" + (f", cuda:0…cuda:{torch.cuda.device_count() - 1}" if _cuda() else "")
    if device.type == "cuda":
        auto_cpu = OmegaConf.select(cfg, "auto_cpu_if_no_gpu", default=True)
        if not _cuda() and auto_cpu is not True:
            allowed = (
                f"a device of this machine ({here}); CUDA is not available: use device=cpu, or "
                f"auto_cpu_if_no_gpu=true"
            )
            return [problem("device", name, allowed)]
        if _cuda() and (device.index or 0) >= torch.cuda.device_count():
            return [problem("device", name, f"a device of this machine ({here})")]
    elif device.type == "mps" and not torch.backends.mps.is_available():
        return [problem("device", name, f"a device of this machine ({here}); MPS is not here")]
    elif device.type not in ("cpu", "cuda", "mps"):
        return [problem("device", name, f"cpu, cuda[:N] or mps (this machine has {here})")]
    return []


def _unimportable(target: Any) -> str | None:
    """Why ``target`` cannot be imported, or ``None`` if it can."""
    from hydra.utils import get_object

    if not isinstance(target, str):
        return f"a dotted name, not a {type(target).__name__}"
    try:
        found = get_object(target)
    except Exception as err:  # ImportError, AttributeError, ValueError of a malformed name
        return " ".join(str(err).split())[:160]
    if isinstance(found, types.ModuleType) or not callable(found):
        return f"{target} is a {type(found).__name__}"
    return None


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
