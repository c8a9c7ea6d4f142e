"""One restore path that checks before it loads: everything a checkpoint restores (weights,
optimiser, schedule, scaler, random states, a loss's state, progress) is compared with what
this run built — names, shapes, dtypes, kinds of value, finiteness — and every difference is
one line of one ``CheckpointError`` naming the checkpoint (by the key that gave it) and the entry.
Nothing is loaded unless everything fits, so a refused checkpoint leaves the run as it was built.
"""

import math
from collections.abc import Iterable
from typing import Any

import torch

from phuber.core.errors import CheckpointError

_SHOWN = 12  # difference lines in a message; the rest are counted
# An optimiser's settings that say how torch runs it, not what it computes (a checkpoint of a
# loop-run Adam resumes as one): a flag, unset or absent alike.
RUN_FLAGS = ("foreach", "fused", "capturable", "differentiable")


def differences(saved: Any, fresh: Any, where: str) -> list[str]:
    """Where ``saved`` does not fit ``fresh`` (the state this run built), one line each:
    dict keys (names), tensor shapes and dtypes, kinds of value; non-finite floats anywhere. An
    empty list or ``None`` in ``fresh`` (state that grows, as a history or a mixture's fit)
    admits any list, or value, whose numbers are finite."""
    if isinstance(fresh, torch.Tensor):
        if not isinstance(saved, torch.Tensor):
            return [_unlike(where, saved, "a tensor")]
        if saved.shape != fresh.shape or saved.dtype != fresh.dtype:
            return [f"{where}: {_tensor(saved)} where this run builds {_tensor(fresh)}"]
        return _finite(saved, where)
    if isinstance(fresh, dict):
        if not isinstance(saved, dict):
            return [_unlike(where, saved, "a mapping")]
        lines = [f"{_at(where, k)}: missing" for k in fresh if k not in saved]
        lines += [f"{_at(where, k)}: not in this run" for k in saved if k not in fresh]
        for k in fresh.keys() & saved.keys():
            lines += differences(saved[k], fresh[k], _at(where, k))
        return lines
    if isinstance(fresh, list | tuple):
        if not isinstance(saved, list | tuple) or (fresh and len(saved) != len(fresh)):
            return [_unlike(where, saved, f"{len(fresh)} items" if fresh else "a list")]
        if not fresh:
            return _finite(saved, where)
        pairs = enumerate(zip(saved, fresh, strict=True))
        return [line for i, (s, f) in pairs for line in differences(s, f, _at(where, i))]
    if fresh is None:
        return _finite(saved, where)
    if isinstance(fresh, float):
        if isinstance(saved, bool) or not isinstance(saved, int | float):
            return [_unlike(where, saved, "a number")]
        return _finite(saved, where)
    return [] if type(saved) is type(fresh) else [_unlike(where, saved, _kind(fresh))]


def optimizer_differences(saved: Any, optimizer: torch.optim.Optimizer) -> list[str]:
    """An optimiser's state against the one this run built, whose per-parameter state is still
    empty: the same parameter groups and settings, and each saved per-parameter tensor of its
    parameter's shape (the step counts are scalars), finite."""
    if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict):
        return [_unlike("optimizer", saved, "a state dict with a 'state' mapping")]
    groups = _settings(optimizer.state_dict()["param_groups"])
    theirs = _settings(saved.get("param_groups"))
    if isinstance(theirs, list):  # a run flag of another kind: named as of another kind
        for i, group in enumerate(theirs):
            for flag in RUN_FLAGS:
                if isinstance(group, dict) and flag in group and i < len(groups):
                    groups[i][flag] = False
    lines = differences(theirs, groups, "optimizer.param_groups")
    if lines:
        return lines
    shapes = {
        i: p.shape for i, p in enumerate(p for g in optimizer.param_groups for p in g["params"])
    }
    names = _state_names(optimizer)
    for index, entry in saved["state"].items():
        where = f"optimizer.state.{index}"
        if index not in shapes or not isinstance(entry, dict):
            lines.append(f"{where}: no such parameter in this run's optimiser")
            continue
        lines += [f"{where}.{name}: missing" for name in names if name not in entry]
        lines += [f"{where}.{name}: not in this run" for name in entry if name not in names]
        for name, value in entry.items():
            at = f"{where}.{name}"
            if not isinstance(value, torch.Tensor):
                lines.append(f"{at}: {_kind(value)} where this run keeps a tensor")
            elif value.dim() and value.shape != shapes[index]:
                shape, own = tuple(value.shape), tuple(shapes[index])
                lines.append(f"{at}: shape {shape} where the parameter's is {own}")
            elif not value.is_floating_point():
                lines.append(f"{at}: {value.dtype} where this run keeps floating-point state")
            else:
                lines += _finite(value, at)
    return lines


def _state_names(optimizer: torch.optim.Optimizer) -> set[str]:
    """The names of the state ``optimizer`` keeps per parameter (Adam: step, exp_avg,
    exp_avg_sq), from one step of an optimiser of its class and settings on a stand-in."""
    settings = {k: v for k, v in optimizer.defaults.items() if k != "differentiable"}
    stand_in = torch.zeros(1, requires_grad=True)
    stand_in.grad = torch.zeros(1)
    probe = type(optimizer)([stand_in], **settings)
    probe.step()
    return set(probe.state[stand_in])


def refuse(path: str, key: str, lines: Iterable[str]) -> None:
    """One ``CheckpointError`` for every line, if there is any; entries missing, or not in this
    run, summed up where there are many (another architecture's weights)."""
    lines = _condensed(list(lines))
    if lines:
        more = f"\n  … and {len(lines) - _SHOWN} more" if len(lines) > _SHOWN else ""
        raise CheckpointError(
            f"{key}={path!r} does not fit this run (nothing was loaded from it):\n  "
            + "\n  ".join(lines[:_SHOWN])
            + more
            + "\n  was it written by a run with other settings (model=, dataset=, loss=, "
            "hparams.optimizer=), or damaged?"
        )


def _condensed(lines: list[str]) -> list[str]:
    for tail, said in ((": missing", "missing"), (": not in this run", "not in this run")):
        names = [line.removesuffix(tail) for line in lines if line.endswith(tail)]
        if len(names) > 3:
            lines = [line for line in lines if not line.endswith(tail)]
            lines.append(f"{len(names)} entries {said}, e.g. {', '.join(names[:3])}")
    return lines


def _finite(value: Any, where: str) -> list[str]:
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() or value.is_complex():
            bad = int((~torch.isfinite(value)).sum())
            if bad:
                return [f"{where}: {bad} of {value.numel()} values are not finite"]
        return []
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{where}: {value} is not finite"]
    if isinstance(value, list | tuple):
        return [line for i, v in enumerate(value) for line in _finite(v, _at(where, i))]
    if isinstance(value, dict):
        return [line for k, v in value.items() for line in _finite(v, _at(where, k))]
    return []


def _settings(groups: Any) -> Any:
    """Parameter groups without the flags of how torch runs them (``RUN_FLAGS``) where they
    are flags or unset (absent in an older torch's checkpoint): other values stay, to be named."""
    if not isinstance(groups, list):
        return groups
    kept = [
        {k: v for k, v in g.items() if k not in RUN_FLAGS or not (v is None or isinstance(v, bool))}
        if isinstance(g, dict)
        else g
        for g in groups
    ]
    return kept


def _unlike(where: str, saved: Any, expected: str) -> str:
    return f"{where}: {_kind(saved)} where this run has {expected}"


def _at(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _tensor(t: torch.Tensor) -> str:
    return f"{str(t.dtype).removeprefix('torch.')} {tuple(t.shape)}"


def _kind(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor {_tensor(value)}"
    if isinstance(value, bool):
        return f"a bool ({value})"
    if isinstance(value, int | float):
        return f"a{'n int' if isinstance(value, int) else ' float'} ({value!r})"
    if isinstance(value, list | tuple):
        return f"{len(value)} items"
    return f"a {type(value).__name__}"
