"""Writing files so that a reader never sees half of one: one atomic writer for checkpoints,
metrics and results. No heavy imports (the synthetic experiments use it without torch)."""

import errno
import json
import math
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any

from phuber.core.errors import StorageError

TMP_GLOB = ".*.tmp"  # the temporary files of atomic_write, left behind only by a killed process


def atomic_write(path: str | Path, write: Any) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, flush it to disk and rename it
    into place, so ``path`` is always either the old or the new complete file.

    The file gets the mode the umask gives (as ``open`` would), not ``mkstemp``'s 0600, so others
    on a shared cluster folder can read it. A full disk or a folder that cannot be written is a
    ``StorageError`` that says the previous file is intact.
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        cause = _storage_cause(err, path)
        if cause is not None:
            raise _storage_error(path, cause) from err
        raise


def _storage_cause(err: BaseException, path: Path) -> OSError | None:
    """The storage fault behind ``err``, if it is one: an ``OSError`` (raised, or the cause of
    what was raised), or the ``RuntimeError`` torch's zip writer raises when a write falls short
    (``[enforce fail at inline_container.cc] unexpected pos``), which says nothing of why: the
    file system's free space tells whether it was full."""
    for candidate in (err, err.__cause__, err.__context__):
        if isinstance(candidate, OSError):
            return candidate
    if isinstance(err, RuntimeError) and "inline_container" in str(err):
        try:
            free = shutil.disk_usage(path.parent).free
        except OSError:
            free = None
        if free is not None and free < _FULL_BELOW:
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return OSError(errno.EIO, f"the file was not written whole ({str(err).strip()[:120]})")
    return None


_FULL_BELOW = 1 << 20  # free bytes below which a short write is taken for a full disk


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _storage_error(path: Path, err: OSError) -> StorageError:
    kept = f"the previous {path.name} is intact" if path.exists() else "nothing was written"
    if err.errno == errno.ENOSPC:
        return StorageError(f"no space left on device while writing {path}; {kept}")
    return StorageError(
        f"could not write {path} ({err.strerror or err}); {kept}. Check that the folder exists, "
        f"is writable and has free space."
    )


NON_FINITE = "non_finite"  # the key under which save_json names the values it stored as null


def strict(obj: Any, path: str = "") -> tuple[Any, dict[str, str]]:
    """A copy of ``obj`` that strict JSON can hold, and the non-finite numbers it replaced by
    ``None`` (``{"history.3.val_loss": "inf"}``). NumPy scalars and arrays become Python values,
    tuples lists; anything else JSON cannot hold is a ``TypeError`` (a bug, not a user error)."""
    if type(obj).__module__ == "numpy" and hasattr(obj, "tolist"):  # without importing NumPy
        obj = obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None, {path or "(value)": repr(obj)}
    if obj is None or isinstance(obj, str | int | float):
        return obj, {}
    notes: dict[str, str] = {}
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON keys are strings, got {key!r} at {path or '(top)'}")
            out[key], found = strict(value, f"{path}.{key}" if path else key)
            notes.update(found)
        return out, notes
    if isinstance(obj, list | tuple):
        items = []
        for i, value in enumerate(obj):
            item, found = strict(value, f"{path}.{i}" if path else str(i))
            items.append(item)
            notes.update(found)
        return items, notes
    raise TypeError(f"{type(obj).__name__} at {path or '(top)'} cannot be written as JSON")


def to_json(obj: Any, indent: int | None = 2) -> str:
    """``obj`` as strict JSON (``allow_nan=False``): a non-finite number is written as null, and
    an object records which values those were under ``"non_finite"``."""
    clean, notes = strict(obj)
    if notes:
        if not isinstance(clean, dict):
            raise TypeError(f"non-finite values {notes} outside an object cannot be noted")
        clean[NON_FINITE] = {**(clean.get(NON_FINITE) or {}), **notes}
    return json.dumps(clean, indent=indent, allow_nan=False)


def save_json(path: str | Path, obj: Any) -> None:
    """Atomically write ``obj`` as strict JSON (``to_json``): the one JSON writer of phuber."""
    text = to_json(obj).encode()
    atomic_write(path, lambda f: f.write(text))


class Unreadable(ValueError):
    """Why a ``torch.save`` file cannot be read safely: ``unsafe`` if it carries objects other
    than tensors and plain data (possibly code), else empty, truncated or not such a file."""

    def __init__(self, reason: str, unsafe: bool) -> None:
        super().__init__(reason)
        self.unsafe = unsafe


def safe_load(
    path: Path,
    allowed: list[Any] | None = None,
    map_location: Any = "cpu",
    what: str = "file",
) -> Any:
    """``torch.load(path, weights_only=True)``, admitting the globals in ``allowed`` too: nothing
    the file holds can run. Every failure is an ``Unreadable`` that says which kind it is.
    torch is imported here, when a file is read."""
    import torch

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


def _refused_global(err: Exception) -> str | None:
    """torch's line naming the global its weights-only unpickler refused (``Unsupported global:
    GLOBAL os.system``, or ``unsupported GLOBAL posix.system whose module posix is blocked``
    where other globals are allowed), without its advice on how to allow it; ``None`` if the
    error is of another kind (damaged bytes)."""
    for line in str(err).splitlines():
        if "unsupported global" in line.lower():
            return line.strip().split(" by default")[0][:200]
    return None
