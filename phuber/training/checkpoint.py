"""Checkpoints: one atomic writer, one safe reader.

The format is the earlier reproduction's: a dict with ``epoch`` (epochs completed), ``model``,
``optimizer``, ``scheduler`` and ``scaler`` state dicts, plus keys of our own for exact resume.
Loading always uses ``torch.load(weights_only=True)``, so a checkpoint can never run code.
"""

from pathlib import Path
from typing import Any

import torch
from torch import nn

from phuber.core.errors import CheckpointError
from phuber.core.files import Unreadable, atomic_write, safe_load
from phuber.training.restore import differences, refuse


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically save a checkpoint dict."""
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", key: str = "checkpoint"
) -> dict[str, Any]:
    """Load a checkpoint without executing anything it carries; ``key`` is the config key that
    gave its path (``checkpoint``, ``loss.estimate_from``), which messages name.

    Raises ``CheckpointError`` with a clear message for a missing, empty, truncated,
    non-checkpoint or unsafe (code-carrying) file.
    """
    path = Path(path)
    try:
        found = path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        found = False
    if not found:
        raise CheckpointError(f"{key}={str(path)!r}: no such file")
    try:
        state = safe_load(path, map_location=map_location, what="checkpoint")
    except Unreadable as err:
        lead = "was refused: it " if err.unsafe else ""
        raise CheckpointError(f"{key}={str(path)!r} {lead}{err}") from err
    if isinstance(state, dict) and "model" not in state and _is_state_dict(state):
        state = {"model": state}  # a bare state dict, as torch.save(model.state_dict())
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise CheckpointError(
            f"{key}={str(path)!r} is not a phuber checkpoint: expected a dict with a "
            f"'model' state dict, got {type(state).__name__}"
            + (f" with keys {sorted(state)[:8]}" if isinstance(state, dict) else "")
        )
    return state


def check_fields(
    state: dict[str, Any], path: str | Path, fields: dict[str, tuple], key: str = "checkpoint"
) -> None:
    """Refuse a checkpoint whose fields (those present) have other types than ``fields`` says,
    naming each: a hand-edited or foreign file fails here, not deep inside a resume."""
    bad = field_problems(state, fields)
    if bad:
        raise CheckpointError(
            f"{key}={str(path)!r} has fields of the wrong type:\n  " + "\n  ".join(bad)
        )


def field_problems(state: dict[str, Any], fields: dict[str, tuple]) -> list[str]:
    """The fields of ``state`` (those present) whose type is not one ``fields`` gives."""
    return [
        f"{field}: {type(state[field]).__name__}, expected "
        + " or ".join("None" if t is type(None) else t.__name__ for t in types)
        for field, types in fields.items()
        if field in state
        and (
            not isinstance(state[field], types)
            or (isinstance(state[field], bool) and bool not in types)
        )
    ]


def _is_state_dict(obj: dict) -> bool:
    return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def load_model_state(
    model: nn.Module, state_dict: dict[str, Any], path: str, key: str = "checkpoint"
) -> None:
    """Load weights into ``model`` once they fit it (names, shapes, dtypes, finite values:
    ``phuber.training.restore``), else one ``CheckpointError`` naming each difference."""
    refuse(path, key, differences(state_dict, model.state_dict(), "model"))
    model.load_state_dict(state_dict)
