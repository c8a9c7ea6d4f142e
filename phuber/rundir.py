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

from phuber.errors import CheckpointError, RunDirError
from phuber.files import TMP_GLOB
from phuber.identity import RESUMABLE, RunIdentity, flatten

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
METRICS = "metrics.json"
CHECKPOINT = "most_recent.pt"


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

    def previous(self) -> dict[str, Any] | None:
        """The ``metrics.json`` a run left here, or ``None`` (absent or unreadable)."""
        try:
            metrics = json.loads((self.path / METRICS).read_text())
        except (OSError, ValueError):
            return None
        return metrics if isinstance(metrics, dict) else None

    def completed(self, identity: RunIdentity, seed_given: bool) -> dict[str, Any] | None:
        """The final metrics of a completed run of this identity here, or ``None`` if there is
        none. A completed run of another identity is a ``RunDirError`` naming what differs."""
        metrics = self.previous()
        if metrics is None or metrics.get("status") != "completed":
            return None
        where = self.path / METRICS
        try:
            theirs = RunIdentity.from_dict(metrics["identity"])
        except (KeyError, ValueError):
            log.warning(f"{where}: a completed run whose settings cannot be compared; kept as is")
            return dict(metrics.get("final") or {})
        ignore = () if seed_given else ("seed",)
        changes = identity.changes(theirs, ignore, "the completed run")
        if changes:
            raise RunDirError(
                f"{self.path} holds a completed run with other settings; it is left as it is.\n  "
                + "\n  ".join(changes)
                + "\n  choose another hydra.run.dir (or hydra.sweep.dir) for this run"
            )
        return dict(metrics.get("final") or {})

    def finished(self, name: str, key: str, request: dict[str, Any]) -> dict[str, Any] | None:
        """The result ``name`` (a JSON file whose ``key`` holds what it was made from) made here
        before, if it was made from the same ``request``; ``None`` if there is none. One made
        from another request, or unreadable, is a ``RunDirError``: a finished result is never
        overwritten."""
        path = self.path / name
        if not path.exists():
            return None
        try:
            earlier = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError):
            earlier = None
        if not isinstance(earlier, dict):
            raise RunDirError(
                f"{path} exists but is not a result phuber can read; it is left as it is. "
                f"Choose another hydra.run.dir"
            )
        theirs, mine = flatten(earlier.get(key) or {}), flatten(request)
        changes = [
            f"{k}: {theirs.get(k, '<not set>')!r} there, {mine.get(k, '<not set>')!r} now"
            for k in sorted(set(theirs) | set(mine))
            if theirs.get(k) != mine.get(k)
        ]
        if changes:
            raise RunDirError(
                f"{path} holds a result made with other settings; it is left as it is.\n  "
                + "\n  ".join(changes[:12])
                + "\n  choose another hydra.run.dir for this one"
            )
        log.warning(f"Skipped: {path} holds this result already; to redo it, use another run dir")
        return earlier

    def unfinished_checkpoint(self) -> Path | None:
        """``most_recent.pt`` of a run that stopped before completing (a requeued Slurm job, or
        the same command re-run into the same run dir continues from it)."""
        path = self.path / CHECKPOINT
        metrics = self.previous()
        if not path.is_file() or (metrics is not None and metrics.get("status") == "completed"):
            return None
        status = metrics.get("status") if metrics else "no readable metrics.json"
        log.warning(f"{self.path} holds an unfinished run ({status}): resuming from {path}")
        return path


def resume_conflicts(
    identity: RunIdentity, saved: RunIdentity, seed_given: bool, epochs_done: int
) -> list[str]:
    """What makes a checkpoint unfit to resume this run: each changed setting or seed (more
    epochs are allowed), and fewer epochs than it has already completed."""
    ignore = set(RESUMABLE) | (set() if seed_given else {"seed"})
    lines = identity.changes(saved, ignore, "the checkpoint")
    epochs = identity.get("hparams.epochs")
    if isinstance(epochs, int) and epochs < epochs_done:
        lines.append(
            f"hparams.epochs: {epochs} now, fewer than the {epochs_done} the checkpoint has done"
        )
    return lines


def resume_fields() -> dict[str, tuple]:
    """The fields a resume reads, and the types they must have (those present; upstream's
    checkpoints hold only the first five)."""
    import torch

    none = type(None)
    return {
        "epoch": (int,),
        "model": (dict,),
        "optimizer": (dict,),
        "scheduler": (dict, none),
        "scaler": (dict, none),
        "global_step": (int,),
        "step_in_epoch": (int,),
        "perm": (torch.Tensor, none),
        "sums": (torch.Tensor, none),
        "history": (list,),
        "seed": (int, none),
        "rng": (dict,),
        "identity": (dict,),
        "config": (dict,),
    }


def resume_state(path: str, identity: RunIdentity, seed_given: bool) -> dict[str, Any]:
    """Load checkpoint ``path`` for resuming the run ``identity``: its fields must have the right
    types and its recorded settings must be this run's (more epochs allowed), else a
    ``CheckpointError`` names each difference. Checkpoints without recorded settings (the
    earlier reproduction's) are resumed as they are, with a warning."""
    from phuber.checkpoint import check_fields, load_checkpoint

    state = load_checkpoint(path)
    check_fields(state, path, resume_fields())
    if "epoch" not in state or "optimizer" not in state:
        raise CheckpointError(
            f"checkpoint={path!r} holds weights only (no epoch and optimiser state): it can be "
            f"evaluated (eval.py), not resumed"
        )
    if "identity" not in state:
        log.warning(f"{path} records no settings: resuming without checking they are the same")
        return state
    try:
        saved = RunIdentity.from_dict(state["identity"])
    except ValueError as err:
        raise CheckpointError(
            f"checkpoint={path!r}: its recorded settings are broken ({err})"
        ) from err
    conflicts = resume_conflicts(identity, saved, seed_given, state["epoch"])
    if conflicts:
        raise CheckpointError(
            f"checkpoint={path!r} was written with other settings; resuming with these would "
            f"mix two runs:\n  "
            + "\n  ".join(conflicts)
            + "\n  resume with the checkpoint's settings (more hparams.epochs is fine), or start "
            "a new run without checkpoint="
        )
    return state
