"""Where each config key's domain is declared, found from the config: the harness's own keys
(``phuber.training.config.KEYS``), a class's parameters (its ``domains``: ``phuber.core.domains``)
and, for the torch classes the shipped configs name, the domains declared here, where phuber
consumes them (it builds them). The builder checks a torch class's arguments against these
before torch does, so its message names every bad key at once, as for our own classes.
"""

from collections.abc import Callable, Mapping
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from phuber.core.declared import Declared, check_values, declare
from phuber.core.domains import Domain, Flag, Integer, Real, Sequence
from phuber.core.errors import ConfigError, InvalidCombination, InvalidValue, InvalidValues
from phuber.training.config import KEYS

_LR = Real(0, low_open=True, why="the learning rate")
_DECAY = Real(0, why="the L2 weight decay")
# torch's classes that conf/ names, with the arguments the configs may set.
FOREIGN: dict[str, Mapping[str, Domain]] = {
    "torch.optim.Adam": declare(
        lr=_LR,
        weight_decay=_DECAY,
        betas=Sequence(Real(0, 1, high_open=True), length=2),
        eps=Real(0, low_open=True),
        amsgrad=Flag(),
        foreach=Flag(nullable=True),
        fused=Flag(nullable=True),
    ),
    "torch.optim.SGD": declare(
        lr=_LR,
        weight_decay=_DECAY,
        momentum=Real(0),
        dampening=Real(0),
        nesterov=Flag(),
        foreach=Flag(nullable=True),
        fused=Flag(nullable=True),
    ),
    "torch.optim.lr_scheduler.MultiStepLR": declare(
        milestones=Sequence(Integer(1, why="epochs or steps")),
        gamma=Real(0, low_open=True, why="the factor at each milestone"),
        last_epoch=Integer(-1),
    ),
}
# What a torch class requires of several arguments together: (arguments, holds, allowed).
RELATIONS: dict[str, list[tuple[tuple[str, ...], Callable[..., bool], str]]] = {
    "torch.optim.SGD": [
        (
            ("nesterov", "momentum", "dampening"),
            lambda nesterov=False, momentum=0, dampening=0: (
                not nesterov or (momentum > 0 and dampening == 0)
            ),
            "nesterov=true only with momentum > 0 and dampening 0 (torch's SGD)",
        )
    ]
}
# Keys the builder passes to a class under another name: hparams.logit_clip is LogitClip's τ.
ATTACHED = {
    "hparams.logit_clip": ("phuber.losses.logit_clip.LogitClip", "tau"),
    "hparams.grad_clip_mode": ("phuber.training.clipping.GradientStep", "mode"),
    "hparams.grad_clip_max_norm": ("phuber.training.clipping.GradientStep", "max_norm"),
}


def at_keys(err: InvalidValue, target: str) -> ConfigError:
    """A class's rejection of values the builder passed it, naming the config keys they came
    from (``ATTACHED``)."""
    keys = {param: key for key, (t, param) in ATTACHED.items() if t == target}
    rejected = err.problems if isinstance(err, InvalidValues) else [err]
    lines = [f"{keys.get(p.param, p.param)}={p.value!r}: must be {p.allowed}" for p in rejected]
    return ConfigError("\n  ".join(lines), lines)


def declared(target: str) -> Mapping[str, Domain]:
    """The declared domains of the parameters of ``target`` (a dotted class name)."""
    if target in FOREIGN:
        return FOREIGN[target]
    found = get_object(target)
    if isinstance(found, type) and issubclass(found, Declared):
        return found.all_domains()
    return {}


def domain_of(cfg: DictConfig, key: str) -> Domain | None:
    """The domain of config ``key`` (dotted), or ``None`` where none is declared."""
    if key in KEYS:
        return KEYS[key]
    if key in ATTACHED:
        target, param = ATTACHED[key]
        return declared(target)[param]
    if key == "dataset.train.human_labels":
        from phuber.datasets.registry import dataset_info

        human = dataset_info(cfg.dataset).human
        return human.domain if human is not None else None
    node, _, param = key.rpartition(".")
    target = OmegaConf.select(cfg, f"{node}._target_") if node else None
    if not isinstance(target, str):
        return None
    try:
        return declared(target).get(param)
    except Exception:  # an unimportable target: the config's checks name it
        return None


def judge_declared(values: dict[str, Any], target: str, key: str | None = None) -> None:
    """Check ``values`` against the declared domains of ``target``'s parameters without
    building it (its inputs could not be built): a ``ConfigError`` naming the config keys, at
    node ``key`` or, for a class the builder passes keys to under other names, ``ATTACHED``."""
    try:
        domains = declared(target)
    except Exception:  # an unimportable target: the config's own checks name it
        return
    try:
        check_values(domains, values)
    except InvalidValue as err:
        if key is None:
            raise at_keys(err, target) from err
        lines = err.lines(key)
        raise ConfigError("\n  ".join(lines), lines) from err


def judge_node(node: Any, key: str) -> None:
    """``judge_declared`` for a config node that names its class (another value: the config's
    own checks name it)."""
    if not isinstance(node, DictConfig) or not isinstance(node.get("_target_"), str):
        return
    given: dict[str, Any] = OmegaConf.to_container(node, resolve=True)  # type: ignore[assignment]
    judge_declared({k: v for k, v in given.items() if k != "_target_"}, node._target_, key)


def check_foreign(node: DictConfig) -> None:
    """Check the arguments a config node passes to a torch class against ``FOREIGN``, all of
    them at once (``InvalidValue``/``InvalidValues``, as our own classes raise)."""
    target = node.get("_target_")
    if target in FOREIGN:
        given: dict[str, Any] = OmegaConf.to_container(node, resolve=True)  # type: ignore[assignment]
        check_values(FOREIGN[target], {k: v for k, v in given.items() if k != "_target_"})
        for names, holds, allowed in RELATIONS.get(target, []):
            values = {name: given[name] for name in names if name in given}
            if not holds(**values):
                raise InvalidCombination(values, allowed)
