"""The base of every loss: a loss maps the float32 log-softmax of the logits and the targets to
the per-example loss, so values and gradients stay finite for logits up to ±1e4 in float32, and
half-precision logits are upcast to float32 (under autocast too). Branches are selected with
``torch.where``: no data-dependent indexing and no host sync, so losses run under
``torch.compile`` and CUDA graphs.

``Loss`` and ``TargetProbLoss`` are the public bases to subclass (README "Extending phuber");
``checked_number`` is the one check of a loss's numeric parameter.
"""

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from phuber.core.errors import InvalidValue

Reduction = Literal["mean", "sum", "none"]


# float32's range: a loss parameter multiplies float32 tensors, so it must be one (not inf, and
# not flushed towards 0).
F32_MAX = 3.4028234663852886e38
F32_TINY = 1.1754943508222875e-38  # the smallest normal float32


def in_float32(value: float) -> bool:
    """Whether ``value`` is 0 or a normal float32 number (its magnitude in [F32_TINY, F32_MAX])."""
    return value == 0 or F32_TINY <= abs(value) <= F32_MAX


def checked_number(name: str, value: object, ok: Callable[[float], bool], allowed: str) -> float:
    """``value`` as a float if it is a finite real number, within float32's range, that passes
    ``ok``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidValue(name, value, allowed)
    if not ok(value):
        raise InvalidValue(name, value, allowed)
    if not in_float32(value):
        raise InvalidValue(name, value, f"{allowed}, within float32's range (1.2e-38 to 3.4e38)")
    return float(value)


@dataclass(frozen=True)
class StepContext:
    """What the trainer tells a loss before each training step (``Loss.set_context``): the
    learning rate of the optimiser step being taken, the epoch (0-based) and the global step.
    Python numbers, read without a host sync."""

    lr: float
    epoch: int
    step: int


class Loss(nn.Module):
    """Base class: subclasses map the log-softmax (shape ``(N, K)``, float32) and the targets to
    the per-example loss. The log-softmax is computed once, in float32 with autocast off.

    ``name`` is the loss's config name (``conf/loss/<name>.yaml``), used to label runs.

    What a loss may need beyond logits and targets comes through three narrow hooks, so the
    trainer never reaches into a loss nor a loss into the optimiser: ``context`` (the last
    ``StepContext``: learning rate, epoch, step), ``penalty(parameters)`` (a term on the model's
    parameters added to the training loss, e.g. ANL's L1), and ``diagnostics()`` (numbers recorded
    per epoch, e.g. OGC's threshold). A ``stateful`` loss keeps state across steps (OGC's queue):
    it is saved in checkpoints (``state_dict``: buffers and ``get_extra_state``), changes only in
    training mode (evaluation puts the loss in eval mode), and is refused where a loss is called
    per example (``grad_clip_mode=per_example``).
    """

    name: str
    stateful: bool = False
    penalizes: bool = False  # whether penalty() returns a term

    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise InvalidValue("reduction", reduction, "'mean', 'sum' or 'none'")
        self.reduction = reduction
        self.context: StepContext | None = None

    def set_context(self, context: StepContext) -> None:
        self.context = context

    def penalty(self, parameters: Iterable[torch.Tensor]) -> torch.Tensor | None:
        """A term on the model's parameters added to the training loss (none by default)."""
        return None

    def diagnostics(self) -> dict[str, float]:
        """Numbers to record per epoch (host values: no sync); none by default."""
        return {}

    def per_example(self, log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``logits``: ``(N, K)`` scores, ``targets``: ``(N,)`` class indices."""
        if logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()
        with torch.autocast(logits.device.type, enabled=False):
            loss = self.per_example(F.log_softmax(logits, dim=1), targets)
        if self.reduction == "mean":
            return loss.mean()
        if self.reduction == "sum":
            return loss.sum()
        return loss


class TargetProbLoss(Loss):
    """A loss of p = softmax(logits)[y] alone: subclasses map log p (shape ``(N,)``) to it."""

    def from_log_prob(self, log_p: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def per_example(self, log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.from_log_prob(target_log_prob(log_probs, targets))


def one_minus_p(log_p: torch.Tensor) -> torch.Tensor:
    """1 − p from log p, exact for p near 1 (where 1 − exp(log p) cancels)."""
    return -torch.expm1(log_p)


def target_log_prob(log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p_y for each row: ``(N, K)``, ``(N,)`` → ``(N,)``."""
    return log_probs.gather(1, targets[:, None]).squeeze(1)
