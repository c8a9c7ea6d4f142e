"""Config checks that need no built object: types, ranges, the device, unknown keys.

Values that an object can judge (a loss's τ, the noise rate, an optimiser's arguments) are judged
by that object when it is built (``phuber.build``); this module does not restate those rules.
Every problem becomes one line ``key=value: must be ...`` of a single ``ConfigError``.
"""

import difflib
import math
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from phuber.errors import ConfigError

# (key, check, what is allowed): the message for a value that fails is "key=value: must be allowed".
Rule = tuple[str, Callable[[Any], bool], str]

MAX_SEED = 2**63 - 2  # torch seeds the augmentation generator with seed + 1 < 2**64
MAX_CLASSES = 100_000  # more than any data set here; a typo beyond it would allocate a huge head
CONF = Path(__file__).resolve().parents[1] / "conf"


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    """A finite real number (not a bool, NaN or ±inf)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def between(lo: float, hi: float, hi_open: bool = False) -> Callable[[Any], bool]:
    return lambda v: is_num(v) and lo <= v and (v < hi if hi_open else v <= hi)


def is_seed(v: Any) -> bool:
    return is_int(v) and 0 <= v <= MAX_SEED


SEED_ALLOWED = f"an integer >= 0 (at most {MAX_SEED})"
BOOL: tuple[Callable[[Any], bool], str] = (is_bool, "true or false")


class Problem(str):
    """One problem line (``key=value: must be ...``) that knows its config key, so that checks
    depending on that key can be skipped rather than report it a second time."""

    key: str

    def __new__(cls, key: str, text: str) -> "Problem":
        problem = super().__new__(cls, text)
        problem.key = key
        return problem

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]
        return self.key, str(self)


def problem(key: str, value: Any, allowed: str) -> Problem:
    return Problem(key, f"{key}={value!r}: must be {allowed}")


def check_rules(cfg: DictConfig, rules: Iterable[Rule]) -> list[Problem]:
    """The problem lines of the rules whose key is present in ``cfg`` and whose value fails."""
    problems = []
    for key, check, allowed in rules:
        value = OmegaConf.select(cfg, key, default="<absent>")
        if value != "<absent>" and not check(value):
            problems.append(problem(key, value, allowed))
    return problems


def raise_problems(problems: list[str]) -> None:
    """One ``ConfigError`` listing every problem, if there is any (``.problems``: the lines)."""
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems), list(problems))


def depends(keys: Iterable[str], broken: Iterable[str]) -> bool:
    """Whether anything at ``keys`` (dotted) is, or lies under or above, a broken key."""
    broken = list(broken)
    return any(
        b == k or b.startswith(f"{k}.") or k.startswith(f"{b}.") for k in keys for b in broken
    )


_RULES: list[Rule] = [
    ("dataset.name", lambda v: isinstance(v, str), "a data set name"),
    ("dataset.root", lambda v: isinstance(v, str) and v != "", "a folder path (a string)"),
    ("dataset.download", *BOOL),
    ("dataset.train.noise_seed", lambda v: v is None or is_seed(v), f"{SEED_ALLOWED} or null"),
    ("dataset.train.augment", *BOOL),
    ("dataset.val.split", lambda v: v is None or between(0, 1, True)(v), "in [0, 1) or null"),
    ("dataset.val.seed", lambda v: v is None or is_seed(v), f"{SEED_ALLOWED} or null"),
    ("hparams.epochs", lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    ("hparams.batch_size", lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    (
        "hparams.grad_clip_max_norm",
        lambda v: v is None or (is_num(v) and v > 0),
        "a number > 0, or null for no clipping",
    ),
    ("hparams.optimizer.lr", lambda v: is_num(v) and v > 0, "a number > 0"),
    ("hparams.optimizer.weight_decay", lambda v: is_num(v) and v >= 0, "a number >= 0"),
    ("hparams.optimizer.momentum", lambda v: is_num(v) and v >= 0, "a number >= 0"),
    (
        "hparams.scheduler_interval",
        lambda v: v in ("step", "epoch"),
        "step (after every optimiser step) or epoch",
    ),
    ("eval_batch_size", lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    (
        "eval_every",
        lambda v: v is None or (is_int(v) and v >= 1),
        "an integer >= 1 (epochs), or null (every epoch up to 10,000 test images, else every 10)",
    ),
    ("seed", lambda v: v is None or is_seed(v), f"{SEED_ALLOWED}, or null"),
    ("mixed_precision", *BOOL),
    ("tensorboard", *BOOL),
    ("save", *BOOL),
    ("compile", *BOOL),
    ("auto_cpu_if_no_gpu", *BOOL),
    ("dataset.train.use", *BOOL),
    ("dataset.val.use", *BOOL),
    ("dataset.test.use", *BOOL),
]
# Config nodes that name a class to build, and the group that chooses them.
TARGETS = {
    "model": "model",
    "loss": "loss",
    "hparams.optimizer": "hparams/optimizer",
    "hparams.scheduler": "hparams",
}


def validate(cfg: DictConfig, task: str = "train", also: Iterable[Problem] = ()) -> None:
    """Raise one ``ConfigError`` listing every problem (``also``'s first): the config's own
    (types, ranges, the device) and, for training, those that building its objects finds
    (``phuber.build``; what depends on a broken value is not built). Building runs here only
    where the config already has problems: otherwise the trainer's own build judges it once.

    ``task`` is ``train`` or ``eval`` (which needs a checkpoint and no training split).
    """
    problems = [*also, *config_problems(cfg, task)]
    if problems and task == "train":
        from phuber.build import build_problems  # torch

        broken = {p.key for p in problems if isinstance(p, Problem) and p.key}
        problems += build_problems(cfg, broken)
    raise_problems(problems)


def config_problems(cfg: DictConfig, task: str = "train") -> list[Problem]:
    """Every bad value that needs no built object: key, value and what is allowed."""
    from phuber.dataset import DATASETS

    problems = check_rules(cfg, _RULES)

    def bad(key: str, value: Any, allowed: str) -> None:
        problems.append(problem(key, value, allowed))

    name = OmegaConf.select(cfg, "dataset.name")
    model = OmegaConf.select(cfg, "model._target_", default="")
    info = DATASETS.get(name)
    if info is None and isinstance(name, str):
        bad("dataset.name", name, f"one of {sorted(DATASETS)}")
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
        elif (missing := _unimportable(node._target_)) is not None:
            bad(
                f"{key}._target_",
                node._target_,
                f"a class or function phuber can import ({missing})",
            )
    if task == "train" and OmegaConf.select(cfg, "dataset.train.use") is False:
        bad("dataset.train.use", False, "true to train (false is for eval.py)")
    classes = OmegaConf.select(cfg, "dataset.num_classes", default="<absent>")
    if classes != "<absent>" and not (is_int(classes) and 2 <= classes <= MAX_CLASSES):
        bad("dataset.num_classes", classes, f"an integer in [2, {MAX_CLASSES}]")
    elif OmegaConf.select(cfg, "model.num_classes", default=classes) != classes:
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
    if task == "eval" and not checkpoint:
        bad(
            "checkpoint",
            checkpoint,
            "the path of a saved model, e.g. checkpoint=outputs/…/final_model.pt",
        )
    elif checkpoint is not None and not _is_file(checkpoint):
        bad("checkpoint", checkpoint, "an existing file")
    if task == "eval" and not any(
        OmegaConf.select(cfg, f"dataset.{split}.use") is True for split in ("train", "val", "test")
    ):
        bad("dataset.test.use", OmegaConf.select(cfg, "dataset.test.use"), _NOTHING_TO_EVALUATE)
    return problems + _device_problems(cfg)


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


def _is_file(path: Any) -> bool:
    try:
        return isinstance(path, str) and Path(path).is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def added_key_problems(
    cfg: DictConfig, overrides: Iterable[str], groups: Iterable[str], config_name: str
) -> list[Problem]:
    """The keys added with ``+key=value`` or ``++key=value`` that nothing reads (a typo such as
    ``+hparams.epoch=1`` would otherwise be ignored), each naming the closest known key.

    The known keys are those of the config composed without these additions. Appending a config
    group (``+experiment=...``) is fine, and so is an argument added to a node that builds a class
    (``+loss.reduction=sum``): building it judges the argument.
    """
    groups = set(groups)
    added: dict[str, tuple[str, str]] = {}  # key → (value, the override)
    for override in overrides:
        if not override.startswith("+"):
            continue
        key, _, value = override.lstrip("+").partition("=")
        if key in groups or "/" in key or key.split(".")[0] == "hydra":
            continue
        parent = key.rpartition(".")[0]
        if parent and OmegaConf.select(cfg, f"{parent}._target_") is not None:
            continue
        added[key] = (value, override)
    if not added:
        return []
    removed = {override for _, override in added.values()}
    pristine = _compose(config_name, [o for o in overrides if o not in removed])
    known = sorted(set(_flat_keys(OmegaConf.to_container(pristine, resolve=False))))
    problems = []
    for key, (value, _) in added.items():
        if key in known:  # ++key=value on a key the config has: a plain assignment
            continue
        depth = key.count(".")  # a key's likeliest intended twin lies at its own depth
        same_depth = [k for k in known if k.count(".") == depth]
        close = difflib.get_close_matches(key, same_depth, n=1, cutoff=0.6)
        close = close or difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else "see python train.py --help"
        problems.append(
            Problem(
                "",  # a key nothing reads: no check depends on it
                f"{key}={value}: unknown key, nothing reads it; {hint} (+key adds a new key; to "
                f"set an existing one, drop the +)",
            )
        )
    return problems


def _compose(config_name: str, overrides: list[str]) -> DictConfig:
    """Compose ``config_name`` again, inside a Hydra app or (a launcher's worker) from its
    primary config folder."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return compose(config_name, overrides)
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        return compose(config_name, overrides)


def _flat_keys(tree: Any, prefix: str = "") -> list[str]:
    """Every key and every ancestor key, dotted: ``{"a": {"b": 1}}`` → ``["a", "a.b"]``."""
    keys = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            path = f"{prefix}{key}"
            keys += [path, *_flat_keys(value, f"{path}.")]
    return keys
