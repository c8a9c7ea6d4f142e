"""LogitClip (Wei et al., ICML 2023) around any loss: the logits a loss sees are scaled to a
bounded norm (``hparams.logit_clip=τ``)."""

from typing import Any

import torch
from torch import nn

from phuber.core.declared import Declared, declare
from phuber.core.domains import F32_TINY, Real


class LogitClip(Declared, nn.Module):
    """LogitClip (Wei et al., ICML 2023) around any loss: each example's logit vector is scaled
    to L2 norm at most 1/τ before the loss, z ↦ z · min(1, 1/(τ‖z‖)) (``hparams.logit_clip=τ``).

    This is the paper's definition, continuous in z. The authors' published code rescales to
    norm 1/τ only where ‖z‖ > τ (not 1/τ), which jumps at ‖z‖ = τ whenever τ ≠ 1. The scale is
    positive, so predictions (argmax) are unchanged; only what the loss sees is bounded.
    ``tau``'s domain keeps 1/τ a float32 too (the bound the logits are scaled to).
    """

    domains = declare(
        tau=Real(0, 1 / F32_TINY, low_open=True, why="τ: logits are clipped to norm 1/τ")
    )

    def __init__(self, loss_fn: nn.Module, tau: float) -> None:
        super().__init__()
        self.loss_fn, self.tau = loss_fn, tau

    def clip(self, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        bound = 1 / self.tau
        norms = torch.linalg.vector_norm(logits, dim=1, keepdim=True)
        return logits * (bound / norms.clamp(min=bound))  # no 1/0 at z = 0

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(self.clip(logits), targets)

    # The hooks of phuber.losses.base.Loss, handed to the loss inside.
    @property
    def stateful(self) -> bool:
        return getattr(self.loss_fn, "stateful", False)

    @property
    def penalizes(self) -> bool:
        return getattr(self.loss_fn, "penalizes", False)

    def set_context(self, context: Any) -> None:
        if hasattr(self.loss_fn, "set_context"):
            self.loss_fn.set_context(context)

    def penalty(self, parameters: Any) -> torch.Tensor | None:
        return self.loss_fn.penalty(parameters) if hasattr(self.loss_fn, "penalty") else None

    def check_plan(self, plan: Any) -> None:
        if hasattr(self.loss_fn, "check_plan"):
            self.loss_fn.check_plan(plan)

    def diagnostics(self) -> dict[str, float]:
        return self.loss_fn.diagnostics() if hasattr(self.loss_fn, "diagnostics") else {}

    def unwrap(self, logits: torch.Tensor | None) -> tuple[nn.Module, torch.Tensor | None]:
        """The wrapped loss and the logits it sees (for its diagnostics)."""
        return self.loss_fn, None if logits is None else self.clip(logits)

    def extra_repr(self) -> str:
        return f"tau={self.tau}"
