"""One identity per run: every setting that changes a result, except the seeds.

A run's identity is derived once, from its composed config, and every consumer asks it: the
TensorBoard run name, ``metrics.json``, the checkpoints (a resume that changes it is refused), the
check that a run directory's finished result is not overwritten, ``eval.py`` and the report's
grouping (runs are averaged only within one identity). It is a flat mapping of dotted config keys
to values, so a new loss or optimiser parameter becomes part of it by being in the config, and a
difference can always be named by its config key.

Values compare canonically everywhere (``canonical``, ``key``): numbers as numbers (``1 == 1.0``,
``-0.0 == 0``), a bool never equal to a number, and a setting set to null equal to one that is
absent (a key added to the config later with a null default changes nothing for older runs).

Imports nothing heavy: the report reads identities back from ``metrics.json`` without torch.
"""

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Settings that do not change what a run computes: where files are, what is logged or saved, on
# which device and with which compiler it runs, how large the evaluation batches are and how often
# the test set is scored during training (evaluation draws no random numbers and trains nothing).
NOT_IDENTITY = (
    "checkpoint",
    "tensorboard",
    "save",
    "device",
    "auto_cpu_if_no_gpu",
    "compile",
    "eval_batch_size",
    "eval_every",
    "dataset.root",
    "dataset.download",
    "dataset.train.use",
    "dataset.val.use",
    "dataset.test.use",
)
# Seeds: runs that differ only here are replicates of one identity (the report's n).
SEED_KEYS = ("seed", "dataset.train.noise_seed", "dataset.val.seed")
# What a resume may change: more epochs continue a run on the same path.
RESUMABLE = ("hparams.epochs",)
# Loss arguments that do not define the loss (how a batch is reduced).
_NOT_LOSS_PARAMS = ("_target_", "reduction")


def canonical(value: Any) -> Any:
    """``value`` as identities compare it: an integral float as the int it equals (``1.0`` → ``1``,
    ``-0.0`` → ``0``), recursively through lists and mappings; bools, strings and None unchanged."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


def key(value: Any) -> str:
    """One string per canonical value: two values are the same setting iff their keys are equal
    (``key(1) == key(1.0)``, ``key(True) != key(1)``). Null entries of a mapping are dropped."""
    if isinstance(value, Mapping):
        value = {k: v for k, v in value.items() if v is not None}
    return json.dumps(canonical(value), sort_keys=True, default=repr)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; lists stay values."""
    flat: dict[str, Any] = {}
    for name, value in tree.items():
        path = f"{prefix}{name}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


@dataclass(frozen=True)
class RunIdentity:
    """``settings``: dotted key → value for every setting that changes the result; ``seeds``: the
    seeds; ``loss`` and ``model``: short names for labels (``phuber_ce``, ``lenet``)."""

    settings: Mapping[str, Any]
    seeds: Mapping[str, Any]
    loss: str
    model: str

    def __post_init__(self) -> None:  # canonical from the start: every consumer compares alike
        object.__setattr__(self, "settings", canonical(self.settings))
        object.__setattr__(self, "seeds", canonical(self.seeds))

    @classmethod
    def from_config(
        cls,
        cfg: Mapping[str, Any],
        seed: int | None,
        loss: str,
        by_content: Mapping[str, str] | None = None,
    ) -> "RunIdentity":
        """From a resolved config (a plain dict), the run's seed (its other seeds are the
        config's), the loss's name and, for settings that name a file, what stands for the
        file's content instead of its path (``by_content``)."""
        flat = flatten({k: v for k, v in cfg.items() if k != "hydra"})
        flat.update(by_content or {})
        settings = {
            k: v for k, v in sorted(flat.items()) if k not in SEED_KEYS and not _excluded(k)
        }
        seeds = {k: flat.get(k) for k in SEED_KEYS}
        seeds["seed"] = seed
        model = str(flat.get("model._target_", "")).rsplit(".", 1)[-1].lower()
        return cls(settings, seeds, loss, model)

    @classmethod
    def from_dict(cls, data: Any) -> "RunIdentity":
        """Inverse of :meth:`to_dict`; ``ValueError`` if ``data`` is not one."""
        if not isinstance(data, Mapping) or not all(
            isinstance(data.get(k), Mapping) for k in ("settings", "seeds")
        ):
            raise ValueError("not a run identity (settings and seeds must be mappings)")
        if not isinstance(data.get("loss"), str) or not isinstance(data.get("model"), str):
            raise ValueError("not a run identity (loss and model must be names)")
        return cls(dict(data["settings"]), dict(data["seeds"]), data["loss"], data["model"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "loss": self.loss,
            "model": self.model,
            "settings": dict(self.settings),
            "seeds": dict(self.seeds),
        }

    def get(self, name: str, default: Any = None) -> Any:
        return self.settings.get(name, default)

    @property
    def loss_params(self) -> dict[str, Any]:
        """The loss's own parameters (``{"tau": 10}``), as configured."""
        return {
            k.removeprefix("loss."): v
            for k, v in self.settings.items()
            if k.startswith("loss.") and k.removeprefix("loss.") not in _NOT_LOSS_PARAMS
        }

    def changes(
        self, other: "RunIdentity", ignore: Iterable[str] = (), where: str = "the other run"
    ) -> list[str]:
        """One line per setting or seed that differs: ``key: <other's> in <where>, <ours> now``.
        A seed that is null here (not given: to be drawn) matches any."""
        unseeded = [k for k, v in self.seeds.items() if v is None]
        return differences(self.settings, other.settings, where, ignore) + differences(
            self.seeds, other.seeds, where, [*ignore, *unseeded]
        )

    def suspects(self) -> list[str]:
        """The settings most likely behind a non-finite loss, as ``key=value``: the loss's own
        parameters, the learning rate and weight decay, LogitClip, gradient clipping and mixed
        precision (those set)."""
        keys = [f"loss.{k}" for k in self.loss_params if k != "transition"]
        keys += ["hparams.optimizer.lr", "hparams.optimizer.weight_decay", "hparams.logit_clip"]
        keys += ["hparams.grad_clip_max_norm", "mixed_precision"]
        return [f"{k}={_number(self.get(k))}" for k in keys if self.get(k) not in (None, False)]

    @property
    def name(self) -> str:
        """A readable run name for TensorBoard: ``phuber_ce_tau10_rho0.4_seed1``; clipping, a
        noise type other than symmetric and human labels are named too
        (``ce_clip0.1logit_asymmetric_rho0.4``, ``ce_human_worse_seed0``)."""
        parts = [self.loss] + [f"{k}{_short(v)}" for k, v in self.loss_params.items()]
        clip = self.get("hparams.grad_clip_max_norm")
        if clip is not None:
            mode = self.get("hparams.grad_clip_mode", "global")
            parts.append(f"clip{_short(clip)}" + ("" if mode == "global" else str(mode)))
        logit_clip = self.get("hparams.logit_clip")
        if logit_clip is not None:
            parts.append(f"logitclip{_short(logit_clip)}")
        human = self.get("dataset.train.human_labels")
        noise = self.get("dataset.train.noise_type", "symmetric")
        if human is not None:
            parts.append(f"human_{human}")
        elif noise != "symmetric":
            parts.append(str(noise))
        if human is None:
            parts.append(f"rho{_short(self.get('dataset.train.corrupt_prob'))}")
        parts.append(f"seed{self.seeds.get('seed')}")
        return "_".join(parts)

    def summary(self) -> dict[str, Any]:
        """The few settings a person scans first (kept in ``metrics.json`` beside the identity)."""
        return {
            "dataset": self.get("dataset.name"),
            "model": self.model,
            "loss": self.loss,
            "tau": None,
            "q": None,
            **self.loss_params,
            "corrupt_prob": self.get("dataset.train.corrupt_prob"),
            "noise_type": self.get("dataset.train.noise_type", "symmetric"),
            "human_labels": self.get("dataset.train.human_labels"),
            "grad_clip_max_norm": self.get("hparams.grad_clip_max_norm"),
            "grad_clip_mode": self.get("hparams.grad_clip_mode", "global"),
            "logit_clip": self.get("hparams.logit_clip"),
            "epochs": self.get("hparams.epochs"),
            "seed": self.seeds.get("seed"),
        }


def differences(
    mine: Mapping[str, Any], theirs: Mapping[str, Any], where: str, ignore: Iterable[str] = ()
) -> list[str]:
    """One line per key whose value differs canonically (see ``key``): ``key: <theirs> in <where>,
    <mine> now``."""
    ignore = set(ignore)
    return [
        f"{name}: {_show(theirs.get(name, '<not set>'))} in {where}, "
        f"{_show(mine.get(name, '<not set>'))} now"
        for name in sorted(set(mine) | set(theirs))
        if name not in ignore and key(mine.get(name)) != key(theirs.get(name))
    ]


def _excluded(key: str) -> bool:
    return any(key == k or key.startswith(f"{k}.") for k in NOT_IDENTITY)


def _number(value: Any) -> str:
    """A setting as typed: numbers compactly (canonical identities hold 1e30 as an int)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1e15:
        return f"{float(value):g}"
    return repr(value)


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) and value != "<not set>" else str(value)
