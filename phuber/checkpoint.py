"""Checkpoints: one atomic writer, one safe reader.

The format is the earlier reproduction's: a dict with ``epoch`` (epochs completed), ``model``,
``optimizer``, ``scheduler`` and ``scaler`` state dicts, plus keys of our own for exact resume.
Loading always uses ``torch.load(weights_only=True)``, so a checkpoint can never run code.
"""

import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from phuber.errors import CheckpointError
from phuber.files import atomic_write


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically save a checkpoint dict."""
    atomic_write(path, lambda f: torch.save(state, f))


class Unreadable(ValueError):
    """Why a ``torch.save`` file cannot be read safely: ``unsafe`` if it carries objects other
    than tensors and plain data (possibly code), else empty, truncated or not such a file."""

    def __init__(self, reason: str, unsafe: bool) -> None:
        super().__init__(reason)
        self.unsafe = unsafe


def safe_load(
    path: Path,
    allowed: list[Any] | None = None,
    map_location: str | torch.device = "cpu",
    what: str = "file",
) -> Any:
    """``torch.load(path, weights_only=True)``, admitting the globals in ``allowed`` too: nothing
    the file holds can run. Every failure is an ``Unreadable`` that says which kind it is."""
    try:
        if path.stat().st_size == 0:
            raise Unreadable("is empty (0 bytes)", unsafe=False)
        with torch.serialization.safe_globals(allowed or []):
            return torch.load(path, map_location=map_location, weights_only=True)
    except Unreadable:
        raise
    except Exception as err:  # the unpickler raises many kinds on corrupt bytes
        refused = _refused_global(err) if isinstance(err, pickle.UnpicklingError) else None
        if refused is not None:
            raise Unreadable(
                f"holds objects other than tensors and plain data (possibly code), and is read "
                f"with weights_only=True.\n  detail: {refused}",
                unsafe=True,
            ) from err
        raise Unreadable(
            f"is truncated or not a PyTorch {what} (reading it raised {type(err).__name__})",
            unsafe=False,
        ) from err


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


def _refused_global(err: Exception) -> str | None:
    """torch's line naming the global its weights-only unpickler refused (``Unsupported global:
    GLOBAL os.system``, or ``unsupported GLOBAL posix.system whose module posix is blocked``
    where other globals are allowed), without its advice on how to allow it; ``None`` if the
    error is of another kind (damaged bytes)."""
    for line in str(err).splitlines():
        if "unsupported global" in line.lower():
            return line.strip().split(" by default")[0][:200]
    return None


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
