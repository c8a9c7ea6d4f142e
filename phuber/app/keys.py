"""Keys added on the command line that nothing reads: ``+hparams.epoch=1`` is refused, naming
the closest known key, rather than ignored."""

import difflib
import sys
from collections.abc import Iterable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from phuber.core.checks import Problem
from phuber.training.config import CONF


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


# Config groups whose option fills the node of the same path (``hparams/optimizer`` fills
# ``hparams.optimizer``); an option of another group (``+experiment=…``) may set any key.
NODE_GROUPS = ("dataset", "model", "loss", "hparams", "hparams/optimizer")


def changed_keys(overrides: Iterable[str]) -> list[str] | None:
    """The config keys the command line's ``overrides`` set or replace (a group's node for a
    group's option), or ``None`` where one may set any key (a global group, a deletion)."""
    keys = []
    for override in overrides:
        key = override.lstrip("+").partition("=")[0]
        if key.startswith("~") or (("/" in key or key in _GROUPS) and key not in NODE_GROUPS):
            return None
        if key.split(".")[0] != "hydra":
            keys.append(key.replace("/", "."))
    return keys


_GROUPS = tuple(p.name for p in CONF.iterdir() if p.is_dir())


def check_group_choices(argv: list[str]) -> None:
    """Before Hydra parses the command line: a config group chosen with a value that is not an
    option's name (``model=1``, ``model=null``) is one message and exit status 2, where Hydra
    would end in a ``ValueError`` traceback."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        overrides = OverridesParser.create().parse_overrides(
            [a for a in argv if not a.startswith("-") and "=" in a]
        )
    except Exception:  # a malformed override: Hydra's own message says what is wrong
        return
    problems = []
    for override in overrides:
        group = override.key_or_group
        folder = CONF / group
        if group.startswith("hydra/") or override.is_delete() or not folder.is_dir():
            continue
        value = override.value()
        names = value if isinstance(value, list) else [value]
        if override.is_sweep_override() or all(isinstance(n, str) for n in names):
            continue
        choices = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
        problems.append(
            f"{group}={override.get_value_element_as_str()}: must be the name of one of its "
            f"options ({choices}); choose one with {group}=NAME"
        )
    if problems:
        sys.stderr.write("Error: invalid config:\n  " + "\n  ".join(problems) + "\n")
        sys.exit(2)


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
