"""The base of every loss: a loss maps the float32 log-softmax of the logits and the targets to
the per-example loss, so values and gradients stay finite for logits up to ±1e4 in float32, and
half-precision logits are upcast to float32 (under autocast too). Branches are selected with
``torch.where``: no data-dependent indexing and no host sync, so losses run under
``torch.compile`` and CUDA graphs.

``Loss`` and ``TargetProbLoss`` are the public bases to subclass (docs/extending.md); a loss
declares what each of its parameters accepts in ``domains`` (``phuber.core.domains``), and every
one is checked, all at once, before its constructor runs.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
from torch import nn
from torch.nn import functional as F

from phuber.core.declared import Declared, declare
from phuber.core.domains import Choice, Domain

Reduction = Literal["mean", "sum", "none"]


@dataclass(frozen=True)
class StepContext:
    """What the trainer tells a loss before each training step (``Loss.set_context``): the
    learning rate of the optimiser step being taken, the epoch (0-based) and the global step.
    Python numbers, read without a host sync."""

    lr: float
    epoch: int
    step: int


@dataclass(frozen=True)
class RunPlan:
    """What a run will do, told to its loss before training (``Loss.check_plan``): epochs, the
    training examples and the batch size (an epoch's last batch may be smaller)."""

    epochs: int
    train_size: int
    batch_size: int

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.train_size // self.batch_size)

    def seen(self, steps: int) -> int:
        """Examples trained on after ``steps`` steps."""
        epochs, rest = divmod(steps, self.steps_per_epoch)
        return epochs * self.train_size + min(rest * self.batch_size, self.train_size)


class Loss(Declared, nn.Module):
    """Base class: subclasses map the log-softmax (shape ``(N, K)``, float32) and the targets to
    the per-example loss. The log-softmax is computed once, in float32 with autocast off.

    ``name`` is the loss's config name (``conf/loss/<name>.yaml``), used to label runs.

    What a loss may need beyond logits and targets comes through narrow hooks, so the trainer
    never reaches into a loss nor a loss into the optimiser: ``context`` (the last
    ``StepContext``: learning rate, epoch, step), ``penalty(parameters)`` (a term on the model's
    parameters added to the training loss, e.g. ANL's L1), ``diagnostics()`` (numbers recorded
    per epoch, e.g. OGC's threshold) and ``check_plan(plan)`` (a setting that cannot take
    effect in this run — a warm-up as long as the run — raises ``InvalidValue`` before training,
    rather than the run training another method under this one's name). A ``stateful`` loss
    keeps state across steps (OGC's queue): it is saved in checkpoints (``state_dict``: buffers
    and ``get_extra_state``), changes only in training mode (evaluation puts the loss in eval
    mode), and is refused where a loss is called per example (``grad_clip_mode=per_example``).
    """

    name: str
    stateful: bool = False
    penalizes: bool = False  # whether penalty() returns a term
    domains: ClassVar[Mapping[str, Domain]] = declare(reduction=Choice(("mean", "sum", "none")))

    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__()
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

    def check_plan(self, plan: RunPlan) -> None:
        """Raise ``InvalidValue`` for a parameter that cannot act in a run of this ``plan``."""

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
