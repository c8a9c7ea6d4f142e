"""The run directory: one process at a time, a finished result is never overwritten, an interrupted
run continues where it stopped.

Re-running a command into the same ``hydra.run.dir`` (or re-launching a sweep with a pinned
``hydra.sweep.dir``) therefore does what a researcher expects: completed runs are skipped with
one line naming their result, interrupted ones resume, and a run with other settings is refused.
The same holds for the results of ``eval.py`` and the synthetic experiments.

Imports no torch until a checkpoint is read (the synthetic experiments use it too).
"""

import fcntl
import json
import logging
import os
from pathlib import Path
from types import TracebackType
from typing import Any

from phuber.core.errors import RunDirError
from phuber.core.files import TMP_GLOB
from phuber.core.identity import RunIdentity, differences, flatten

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
METRICS = "metrics.json"
CHECKPOINT = "most_recent.pt"
# What a training run writes beside metrics.json, which says which run wrote them.
OUTPUTS = (CHECKPOINT, "final_model.pt", "noisy_labels.npz")


class Earlier(dict):
    """A result the run directory held already, returned instead of being made again (a sweep
    counts its job as skipped)."""


class RunDir:
    """Holds an exclusive lock on ``path`` while a run writes there (``with RunDir(path):``).

    The lock is an ``flock`` on ``path/.lock``: the kernel releases it when the process ends, even
    by SIGKILL, so a crashed run never blocks its successor. Once locked, temporary files of a
    killed writer are removed (nothing else can be writing them).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock: Any = None

    def __enter__(self) -> "RunDir":
        self.path.mkdir(parents=True, exist_ok=True)
        lock = open(self.path / LOCK_NAME, "a+")  # held until __exit__
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            lock.close()
            raise RunDirError(
                f"another process (pid {holder}) is running in {self.path}; wait for it to end, "
                f"or choose another hydra.run.dir"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock = lock
        for stale in self.path.glob(TMP_GLOB):
            log.info(f"Removing {stale.name}, left by a process killed while saving")
            stale.unlink(missing_ok=True)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()

    def refuse_unexplained(self, outputs: tuple[str, ...] = OUTPUTS) -> None:
        """A ``RunDirError`` if the folder holds a ``metrics.json`` that no run of phuber wrote
        (another tool's, or damaged), or files a run writes (``outputs``) with no such
        ``metrics.json`` saying which run wrote them: such files are never overwritten."""
        path = self.path / METRICS
        if path.exists() and self.previous() is None:
            raise RunDirError(
                f"{path} is not the record of a phuber run (another tool's, or damaged): it is "
                f"left as it is. Choose another hydra.run.dir"
            )
        if self.previous() is not None:
            return
        found = [name for name in outputs if (self.path / name).exists()]
        if found:
            raise RunDirError(
                f"{self.path} holds {', '.join(found)} but no readable {METRICS} saying which run "
                f"wrote them; they are left as they are. Choose another hydra.run.dir (to resume "
                f"from a checkpoint there, pass checkpoint=PATH with a new run dir)"
            )

    def previous(self) -> dict[str, Any] | None:
        """The ``metrics.json`` a phuber run left here (``is_run_record``), or ``None``."""
        record = _read_dict(self.path / METRICS)
        return record if record is not None and is_run_record(record) else None

    def completed(self, identity: RunIdentity) -> dict[str, Any] | None:
        """The final metrics of a completed run of this identity here (a seed that ``identity``
        leaves null matches any), or ``None`` if there is none. A completed run of another
        identity is a ``RunDirError`` naming what differs."""
        metrics = self.previous()
        if metrics is None or metrics.get("status") != "completed":
            return None
        where = self.path / METRICS
        try:
            theirs = RunIdentity.from_dict(metrics["identity"])
        except (KeyError, ValueError):
            log.warning(f"{where}: a completed run whose settings cannot be compared; kept as is")
            return Earlier(metrics.get("final") or {})
        changes = identity.changes(theirs, where="the completed run")
        if changes:
            raise RunDirError(
                f"{self.path} holds a completed run with other settings; it is left as it is.\n  "
                + "\n  ".join(changes)
                + "\n  choose another hydra.run.dir (or hydra.sweep.dir) for this run"
            )
        return Earlier(metrics.get("final") or {})

    def finished(self, name: str, key: str, request: dict[str, Any]) -> dict[str, Any] | None:
        """The result ``name`` (a JSON file whose ``key`` holds what it was made from) made here
        before, if it was made from the same ``request``; ``None`` if there is none. One made
        from another request, or unreadable, is a ``RunDirError``: a finished result is never
        overwritten."""
        path = self.path / name
        if not path.exists():
            return None
        earlier = _read_dict(path)
        if earlier is None:
            raise RunDirError(
                f"{path} exists but is not a result phuber can read; it is left as it is. "
                f"Choose another hydra.run.dir"
            )
        changes = differences(flatten(request), flatten(earlier.get(key) or {}), "that result")
        if changes:
            raise RunDirError(
                f"{path} holds a result made with other settings; it is left as it is.\n  "
                + "\n  ".join(changes[:12])
                + "\n  choose another hydra.run.dir for this one"
            )
        log.warning(f"Skipped: {path} holds this result already; to redo it, use another run dir")
        return Earlier(earlier)

    def unfinished_checkpoint(self) -> Path | None:
        """``most_recent.pt`` of a run that stopped before completing (a requeued Slurm job, or
        the same command re-run into the same run dir continues from it)."""
        path = self.path / CHECKPOINT
        metrics = self.previous()
        if not path.is_file() or metrics is None or metrics.get("status") == "completed":
            return None  # without a metrics.json, refuse_unexplained has refused it already
        log.warning(
            f"{self.path} holds an unfinished run ({metrics.get('status')}): resuming from {path}"
        )
        return path


STATUSES = ("running", "completed", "preempted", "failed")


def is_run_record(record: dict[str, Any]) -> bool:
    """Whether a ``metrics.json`` is one a run of phuber wrote: a status of a run, and the
    run's identity (or, from a version before identities, its config and summary)."""
    old = isinstance(record.get("config"), dict) and isinstance(record.get("summary"), dict)
    return record.get("status") in STATUSES and (isinstance(record.get("identity"), dict) or old)


def _read_dict(path: Path) -> dict[str, Any] | None:
    """A JSON object read from ``path``; ``None`` if absent, unreadable or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    return data if isinstance(data, dict) else None
