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


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically save a checkpoint dict."""
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint without executing anything it carries.

    Raises ``CheckpointError`` with a clear message for a missing, empty, truncated,
    non-checkpoint or unsafe (code-carrying) file.
    """
    path = Path(path)
    try:
        found = path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        found = False
    if not found:
        raise CheckpointError(f"checkpoint={str(path)!r}: no such file")
    try:
        state = safe_load(path, map_location=map_location, what="checkpoint")
    except Unreadable as err:
        lead = "was refused: it " if err.unsafe else ""
        raise CheckpointError(f"checkpoint={str(path)!r} {lead}{err}") from err
    if isinstance(state, dict) and "model" not in state and _is_state_dict(state):
        state = {"model": state}  # a bare state dict, as torch.save(model.state_dict())
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise CheckpointError(
            f"checkpoint={str(path)!r} is not a phuber checkpoint: expected a dict with a "
            f"'model' state dict, got {type(state).__name__}"
            + (f" with keys {sorted(state)[:8]}" if isinstance(state, dict) else "")
        )
    return state


def check_fields(state: dict[str, Any], path: str | Path, fields: dict[str, tuple]) -> None:
    """Refuse a checkpoint whose fields (those present) have other types than ``fields`` says,
    naming each: a hand-edited or foreign file fails here, not deep inside a resume."""
    bad = [
        f"{key}: {type(state[key]).__name__}, expected "
        + " or ".join("None" if t is type(None) else t.__name__ for t in types)
        for key, types in fields.items()
        if key in state
        and (
            not isinstance(state[key], types)
            or (isinstance(state[key], bool) and bool not in types)
        )
    ]
    if bad:
        raise CheckpointError(
            f"checkpoint={str(path)!r} has fields of the wrong type:\n  " + "\n  ".join(bad)
        )


def _is_state_dict(obj: dict) -> bool:
    return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def load_model_state(model: nn.Module, state_dict: dict[str, torch.Tensor], path: str) -> None:
    """Load weights into ``model``, naming what does not fit (architecture, classes)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        lines = [f"checkpoint={path!r} does not fit model {type(model).__name__}:"]
        if missing:
            lines.append(f"  {len(missing)} weights missing, e.g. {missing[:3]}")
        if unexpected:
            lines.append(f"  {len(unexpected)} unexpected weights, e.g. {unexpected[:3]}")
        if shapes:
            lines.append(f"  {len(shapes)} shape mismatches, e.g. {shapes[:2]}")
        lines.append("  (another architecture or number of classes? check model= and dataset=)")
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(state_dict)
