"""Writing files so that a reader never sees half of one: one atomic writer for checkpoints,
metrics and results. No heavy imports (the synthetic experiments use it without torch)."""

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from phuber.errors import StorageError

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
        if isinstance(err, OSError) or isinstance(err.__cause__, OSError):
            raise _storage_error(path, err if isinstance(err, OSError) else err.__cause__) from err
        raise


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


def save_json(path: str | Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2).encode()))
