"""Training metrics by name: per-batch counts accumulated on the device, read once per epoch.

A metric is added in one place (``batch_counts`` and ``epoch_row``) and reaches the log,
TensorBoard and ``metrics.json`` through the row the trainer records.
"""

from typing import Any

import torch
from torch import nn

# The per-epoch sums, in the order a mid-epoch checkpoint stores them: loss·n, gradient norm,
# predictions that match the given label, that match it on corrupted examples (memorised noise),
# that match the true label on corrupted and on clean examples, examples in a PHuber loss's
# linear (clipped) regime, and examples whose gradient was clipped (per-example, logit modes).
SUM_NAMES = (
    "loss",
    "grad_norm",
    "correct",
    "memorised",
    "noisy_true",
    "clean_true",
    "clipped",
    "grad_clipped",
)


# What evaluation sums over a split: loss·n, correct predictions of the split's labels and of the
# true labels (they differ on a noisy validation split).
EVAL_SUM_NAMES = ("loss", "correct", "clean_correct")


class Sums:
    """Named running sums in one float64 device tensor: adding never waits on the host. Training
    uses ``SUM_NAMES`` (the default), evaluation ``EVAL_SUM_NAMES``."""

    def __init__(
        self,
        device: torch.device,
        values: torch.Tensor | None = None,
        names: tuple[str, ...] = SUM_NAMES,
    ) -> None:
        self.names = names
        zeros = torch.zeros(len(names), device=device, dtype=torch.float64)
        self.values = zeros if values is None else values.to(device)

    def add(self, **parts: torch.Tensor) -> None:
        """Add one batch's values; every name must be given, by name."""
        self.values += torch.stack([parts[name].double() for name in self.names])

    def read(self) -> dict[str, float]:
        """The sums on the host (one sync)."""
        return dict(zip(self.names, self.values.tolist(), strict=True))


def batch_counts(
    logits: torch.Tensor,
    labels: torch.Tensor,
    clean_labels: torch.Tensor,
    is_noisy: torch.Tensor,
    loss_fn: nn.Module,
) -> dict[str, torch.Tensor]:
    """The memorisation diagnostics' counts for one batch, as device tensors."""
    pred = logits.argmax(1)
    given = pred == labels
    true = pred == clean_labels
    clipped = torch.zeros_like(given)
    loss_fn, logits_seen = innermost(loss_fn, logits)
    if hasattr(loss_fn, "clipped"):
        log_p = torch.log_softmax(logits_seen.float(), 1).gather(1, labels[:, None]).squeeze(1)
        clipped = loss_fn.clipped(log_p)
    counts = {
        "correct": given,
        "memorised": given & is_noisy,
        "noisy_true": true & is_noisy,
        "clean_true": true & ~is_noisy,
        "clipped": clipped,
    }
    return {name: mask.sum() for name, mask in counts.items()}


def innermost(
    loss_fn: nn.Module, logits: torch.Tensor | None = None
) -> tuple[nn.Module, torch.Tensor | None]:
    """The loss inside any wrappers (LogitClip's ``unwrap``), and the logits it sees: a wrapped
    loss keeps its diagnostics (PHuber's clipped fraction under LogitClip)."""
    while hasattr(loss_fn, "unwrap"):
        loss_fn, logits = loss_fn.unwrap(logits)
    return loss_fn, logits


def epoch_row(
    s: dict[str, float], n: int, n_noisy: int, steps: int, loss_fn: nn.Module, clip_mode: str
) -> dict[str, Any]:
    """An epoch's training metrics from its sums over ``n`` examples (``n_noisy`` corrupted) and
    ``steps`` steps, and the loss's own diagnostics at the epoch's end (``loss_<name>``: OGC's
    threshold); diagnostics that do not apply to the run are left out."""
    row = {
        "train_loss": s["loss"] / n,
        "train_acc": s["correct"] / n,
        "grad_norm": s["grad_norm"] / steps,
    }
    if n_noisy:
        row["train_noisy_memorised"] = s["memorised"] / n_noisy
        row["train_noisy_true_acc"] = s["noisy_true"] / n_noisy
    if n > n_noisy:
        row["train_clean_true_acc"] = s["clean_true"] / (n - n_noisy)
    if hasattr(innermost(loss_fn)[0], "clipped"):
        row["train_clipped_frac"] = s["clipped"] / n
    if clip_mode != "global":
        row["train_grad_clipped_frac"] = s["grad_clipped"] / n
    if hasattr(loss_fn, "diagnostics"):
        row.update({f"loss_{k}": v for k, v in loss_fn.diagnostics().items()})
    return row
