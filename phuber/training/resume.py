"""Resume state: what a checkpoint holds besides the weights, how it is checked against the run
that resumes it, and how it is restored, so that a resumed run computes what an uninterrupted one
would (bit for bit on the CPU)."""

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from phuber.core.errors import CheckpointError
from phuber.core.identity import RESUMABLE, RunIdentity
from phuber.training.checkpoint import check_fields, field_problems, load_checkpoint
from phuber.training.metrics import SUM_NAMES
from phuber.training.restore import differences, optimizer_differences, refuse
from phuber.training.runtime import restore_rng_state, rng_state

log = logging.getLogger(__name__)


@dataclass
class Progress:
    """Where training stands; saved in checkpoints so a run resumes exactly."""

    epoch: int = 0  # epochs completed
    global_step: int = 0
    step_in_epoch: int = 0  # > 0 only in a checkpoint written mid-epoch
    perm: torch.Tensor | None = None  # the current epoch's order, while mid-epoch
    sums: torch.Tensor | None = None  # the current epoch's metric sums, while mid-epoch
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RunState:
    """The objects a checkpoint saves and restores."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    generators: tuple[torch.Generator, ...]  # data order, augmentation
    progress: Progress
    seed: int
    identity: RunIdentity
    config: dict[str, Any]
    labels_sha256: str | None = None  # of the run's noisy_labels.npz: what it trained on
    loss_fn: nn.Module | None = None  # a stateful loss's state is saved and restored with it
    train_size: int = 0  # examples in the training split (an epoch's order is theirs)

    def to_checkpoint(self) -> dict[str, Any]:
        """The earlier reproduction's format (``epoch``, ``model``, ``optimizer``, ``scheduler``,
        ``scaler``) plus what an exact, checked resume needs."""
        p = self.progress
        return {
            "epoch": p.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "global_step": p.global_step,
            "step_in_epoch": p.step_in_epoch,
            "perm": p.perm,
            "sums": p.sums.cpu() if p.sums is not None else None,
            "history": p.history,
            "seed": self.seed,
            "rng": rng_state(*self.generators),
            "identity": self.identity.to_dict(),
            "config": self.config,
            "labels_sha256": self.labels_sha256,
            "loss": self.loss_fn.state_dict() if self.loss_fn is not None else {},
        }

    def restore(self, path: str, state: dict[str, Any], device: torch.device) -> None:
        """Continue from checkpoint ``state`` (read from ``path`` by :func:`resume_state`):
        weights, optimiser, schedule, scaler, a loss's state, progress, random states; every
        one checked against what this run built before anything is loaded (``check``)."""
        theirs = state.get("labels_sha256")
        if theirs is not None and theirs != self.labels_sha256:
            raise CheckpointError(
                f"checkpoint={path!r} was trained on other labels (noisy_labels.npz SHA-256 "
                f"{theirs}, this run's {self.labels_sha256}); resuming would mix two label sets"
            )
        refuse(path, "checkpoint", self.differences(state))
        self.model.load_state_dict(state["model"])
        if state.get("optimizer") is not None:
            self.optimizer.load_state_dict(_to_device(state["optimizer"], device))
        if state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        if state.get("loss") and self.loss_fn is not None:
            self.loss_fn.load_state_dict(_to_device(state["loss"], device))
        sums = state.get("sums")
        p = self.progress
        p.epoch = state["epoch"]
        p.global_step = state.get("global_step", 0)
        p.step_in_epoch = state.get("step_in_epoch", 0)
        p.perm = state.get("perm")
        p.sums = sums.to(device) if sums is not None else None
        p.history[:] = list(state.get("history", []))
        if "rng" in state:
            restore_rng_state(state["rng"], *self.generators)
        log.info(f"Resumed from {path} (epoch {p.epoch}, step {p.step_in_epoch})")

    def differences(self, state: dict[str, Any]) -> list[str]:
        """Every entry of ``state`` that does not fit this run (``phuber.training.restore``):
        each restored component against its freshly built self, and the progress a resume
        continues from (an epoch's order a permutation of this training set, its sums as many
        as this run keeps, counts >= 0)."""
        fresh = self.to_checkpoint()
        # phuber's checkpoints (they record an identity) hold every field; the earlier
        # reproduction's, the first five
        required = resume_fields() if "identity" in state else ("epoch", "model")
        lines = [f"{field}: missing" for field in required if field not in state]
        lines += field_problems(state, resume_fields())
        for entry in ("model", "scheduler", "loss"):
            if isinstance(state.get(entry), dict):  # of another type: named above
                lines += differences(state[entry], fresh[entry], entry)
        if fresh["scaler"] and isinstance(state.get("scaler"), dict):
            lines += differences(state["scaler"], fresh["scaler"], "scaler")
        if isinstance(state.get("optimizer"), dict):
            lines += optimizer_differences(state["optimizer"], self.optimizer)
        if "rng" in state:
            mine = {k: v for k, v in fresh["rng"].items() if k != "cuda"}  # a GPU's, if any
            saved = state["rng"]
            theirs = (
                {k: v for k, v in saved.items() if k != "cuda"}
                if isinstance(saved, dict)
                else saved
            )
            lines += differences(theirs, mine, "rng")
        for count in ("epoch", "global_step", "step_in_epoch"):
            if isinstance(state.get(count), int) and state[count] < 0:
                lines.append(f"{count}: {state[count]}, a count below 0")
        lines += _progress_differences(state, self.train_size)
        return lines


def _progress_differences(state: dict[str, Any], n: int) -> list[str]:
    """A mid-epoch checkpoint's order and sums against this run's training set and sums."""
    lines = []
    perm = state.get("perm")
    if isinstance(perm, torch.Tensor):
        expected = torch.arange(n)
        if perm.dtype != torch.int64 or perm.shape != (n,):
            lines.append(f"perm: {perm.dtype} {tuple(perm.shape)}, not an order of {n} examples")
        elif not torch.equal(perm.sort().values, expected):
            lines.append(f"perm: not a permutation of this run's {n} training examples")
    sums = state.get("sums")
    if isinstance(sums, torch.Tensor):
        lines += differences(sums, torch.zeros(len(SUM_NAMES), dtype=torch.float64), "sums")
    return lines


def _to_device(state: Any, device: torch.device) -> Any:
    """Optimiser states are loaded onto the parameters' device."""
    if isinstance(state, torch.Tensor):
        return state.to(device)
    if isinstance(state, dict):
        return {k: _to_device(v, device) for k, v in state.items()}
    if isinstance(state, list):
        return [_to_device(v, device) for v in state]
    return state


def resume_conflicts(identity: RunIdentity, saved: RunIdentity, epochs_done: int) -> list[str]:
    """What makes a checkpoint unfit to resume this run: each changed setting or seed (more
    epochs are allowed; a seed ``identity`` leaves null takes the checkpoint's), and fewer epochs
    than it has already completed."""
    lines = identity.changes(saved, RESUMABLE, "the checkpoint")
    epochs = identity.get("hparams.epochs")
    if isinstance(epochs, int) and epochs < epochs_done:
        lines.append(
            f"hparams.epochs: {epochs} now, fewer than the {epochs_done} the checkpoint has done"
        )
    return lines


def resume_fields() -> dict[str, tuple]:
    """The fields a resume reads, and the types they must have (those present; upstream's
    checkpoints hold only the first five)."""
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
        "labels_sha256": (str, none),
        "loss": (dict,),
    }


def resume_state(path: str, identity: RunIdentity) -> dict[str, Any]:
    """Load checkpoint ``path`` for resuming the run ``identity``: its fields must have the right
    types and its recorded settings must be this run's (more epochs allowed), else a
    ``CheckpointError`` names each difference. Checkpoints without recorded settings (the
    earlier reproduction's) are resumed as they are, with a warning."""
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
    conflicts = resume_conflicts(identity, saved, state["epoch"])
    if conflicts:
        raise CheckpointError(
            f"checkpoint={path!r} was written with other settings; resuming with these would "
            f"mix two runs:\n  "
            + "\n  ".join(conflicts)
            + "\n  resume with the checkpoint's settings (more hparams.epochs is fine), or start "
            "a new run without checkpoint="
        )
    return state
