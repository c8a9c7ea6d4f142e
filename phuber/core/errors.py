"""Errors a user can fix, and the one place that turns them into a one-screen message.

This module imports nothing heavy: the CLI, the config checks and the synthetic experiments use it
before (or without) torch.
"""

import signal
from pathlib import Path
from typing import Any


class PhuberError(Exception):
    """An error caused by the user's input (config, files); shown without a traceback."""

    exit_code: int | None = None  # None: the CLI's usual exit status for user errors


class ConfigError(PhuberError):
    """A config value out of range or of the wrong kind; ``problems``: one line each."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems if problems is not None else [message]


class DataError(PhuberError):
    """A data set that is missing, unreadable or corrupt."""


class CheckpointError(PhuberError):
    """A checkpoint that is missing, unsafe, corrupt or does not fit the model."""


class StorageError(PhuberError):
    """A file could not be written (disk full, read-only, no permission); nothing older was lost."""


class RunDirError(PhuberError):
    """The run directory is in use by another process, or holds a run with other settings."""


class NonFiniteLoss(PhuberError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    @classmethod
    def at(cls, epoch: int, step: int, checkpoint: Path, suspects: list[str]) -> "NonFiniteLoss":
        """At ``epoch`` and global ``step``; ``suspects``: the settings most likely responsible,
        as ``key=value``."""
        return cls(
            f"the training loss or its gradient became non-finite at epoch {epoch}, global step "
            f"{step}; stopped "
            f"without saving (the last good checkpoint, if any, is {checkpoint}).\n  the "
            f"settings most likely responsible: {', '.join(suspects)}\n  try a lower "
            f"hparams.optimizer.lr, other loss parameters, or mixed_precision=false"
        )


class Preempted(PhuberError):
    """The run was stopped by a signal after saving a checkpoint it can resume from.

    ``signals`` is the ``phuber.runtime.StopSignals`` that caught it: the exit status follows the
    shell's convention (128 + N), and ``hand_on`` passes the signal to the handler installed
    before ours (submitit's requeue, say).
    """

    def __init__(self, message: str, signals: Any, checkpoint: Path | None = None) -> None:
        super().__init__(message)
        self.signum: int = signals.received
        self.exit_code = 128 + self.signum
        self.previous_handler = signals.previous_handler
        self.checkpoint = checkpoint

    @classmethod
    def saved(cls, signals: Any, epoch: int, step: int, checkpoint: Path | None) -> "Preempted":
        """Stopped at ``epoch`` and ``step``, with the checkpoint to resume from (``None`` when
        nothing was saved)."""
        where = f"stopped by {signal.Signals(signals.received).name} at epoch {epoch}, step {step}"
        if checkpoint is None:
            return cls(f"{where}; save=false: nothing saved", signals)
        return cls(f"{where}; saved {checkpoint}", signals, checkpoint)

    def advice(self, sweep_rerun: str | None) -> str:
        """How to resume: one run with ``checkpoint=``; a sweep (``sweep_rerun``: the command
        that continues it) by running it again, which resumes this job and skips the done."""
        if self.checkpoint is None:
            return ""
        if sweep_rerun is not None:
            return (
                f"\n  resume the sweep with {sweep_rerun}: completed jobs are skipped, this one "
                f"resumes from {self.checkpoint.name}"
            )
        return f"\n  resume with the same command plus: checkpoint={self.checkpoint}"

    def hand_on(self) -> None:
        handler = self.previous_handler
        if callable(handler) and handler is not signal.default_int_handler:
            handler(self.signum, None)


class InvalidValue(ValueError):
    """Raised by a constructor for a parameter it cannot work with.

    Carries the parameter's name, so the config layer can name the config key
    (``loss.tau=1: must be > 1``) without restating the rule.
    """

    def __init__(self, param: str, value: object, allowed: str) -> None:
        super().__init__(f"{param} must be {allowed}, got {param}={value!r}")
        self.param, self.value, self.allowed = param, value, allowed

    def at(self, node: str) -> str:
        """The message for the config node that passed the value: ``loss.tau=1: must be > 1``."""
        return f"{node}.{self.param}={self.value!r}: must be {self.allowed}"

    def lines(self, node: str) -> list[str]:
        """One message line per rejected parameter, for the config node that passed them."""
        return [self.at(node)]


class InvalidCombination(InvalidValue):
    """Values of several parameters that each class takes alone, but not together."""

    def __init__(self, values: dict[str, object], allowed: str) -> None:
        first = next(iter(values))
        super().__init__(first, values[first], allowed)
        self.values = values

    def at(self, node: str) -> str:
        given = ", ".join(f"{node}.{k}={v!r}" for k, v in self.values.items())
        return f"{given}: must be {self.allowed}"


class InvalidValues(InvalidValue):
    """Several parameters a constructor cannot work with, reported together (one line each)."""

    def __init__(self, problems: list[InvalidValue]) -> None:
        ValueError.__init__(self, "; ".join(str(p) for p in problems))
        first = problems[0]
        self.param, self.value, self.allowed = first.param, first.value, first.allowed
        self.problems = problems

    def lines(self, node: str) -> list[str]:
        return [line for p in self.problems for line in p.lines(node)]
