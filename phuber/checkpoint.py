"""Checkpoints: one atomic writer, one safe reader.

The format is the earlier reproduction's: a dict with ``epoch`` (epochs completed), ``model``,
``optimizer``, ``scheduler`` and ``scaler`` state dicts, plus keys of our own for exact resume.
Loading always uses ``torch.load(weights_only=True)``, so a checkpoint can never run code.
"""

import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from phuber.errors import CheckpointError


def atomic_write(path: str | Path, write: Any) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, flush it to disk and rename it
    into place, so ``path`` is always either the old or the new complete file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically save a checkpoint dict."""
    atomic_write(path, lambda f: torch.save(state, f))


def save_json(path: str | Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2).encode()))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint without executing anything it carries.

    Raises ``CheckpointError`` with a clear message for a missing, truncated, non-checkpoint or
    unsafe (code-carrying) file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint={str(path)!r}: no such file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # the unpickler raises many kinds on corrupt bytes
        if isinstance(err, pickle.UnpicklingError) and "Unsupported global" in str(err):
            raise CheckpointError(
                f"checkpoint={str(path)!r} was refused: it holds objects other than tensors and "
                f"plain data (possibly code), and checkpoints are loaded with weights_only=True.\n"
                f"  detail: {_unsupported_global(err)}"
            ) from err
        raise CheckpointError(
            f"checkpoint={str(path)!r} is truncated or not a PyTorch checkpoint "
            f"(reading it raised {type(err).__name__})"
        ) from err
    if isinstance(state, dict) and "model" not in state and _is_state_dict(state):
        state = {"model": state}  # a bare state dict, as torch.save(model.state_dict())
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise CheckpointError(
            f"checkpoint={str(path)!r} is not a phuber checkpoint: expected a dict with a "
            f"'model' state dict, got {type(state).__name__}"
            + (f" with keys {sorted(state)[:8]}" if isinstance(state, dict) else "")
        )
    return state


def _unsupported_global(err: Exception) -> str:
    """torch's line naming the refused global, without its advice on how to allow it."""
    line = next(x for x in str(err).splitlines() if "Unsupported global" in x)
    return line.strip().split(" by default")[0][:200]


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
