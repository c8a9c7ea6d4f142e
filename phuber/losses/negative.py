"""Active Negative Loss (Ye et al., NeurIPS 2023; code: Virusdoll/Active-Negative-Loss): a
normalised active loss plus a *normalised negative* loss, and an L1 term on the model's
parameters, which the authors' code adds inside the loss (with weight decay 0):
ℓ = α·active + β·negative + δ·‖θ‖₁.

The L1 term reaches the trainer through ``Loss.penalty``: it is added to each step's training
loss, not to evaluation's.
"""

import math
from collections.abc import Iterable

import torch

from phuber.core.declared import declare
from phuber.core.domains import Real
from phuber.losses.base import Loss, Reduction, target_log_prob
from phuber.losses.robust import NON_NEGATIVE, normalized_ce


class _ActiveNegative(Loss):
    """α·active + β·negative per example, and δ·‖θ‖₁ as the penalty."""

    penalizes = True
    domains = declare(
        alpha=NON_NEGATIVE,
        beta=NON_NEGATIVE,
        delta=Real(0, why="the L1 weight"),
        min_prob=Real(0, 1, low_open=True, high_open=True),
    )

    def __init__(
        self, alpha: float, beta: float, delta: float, min_prob: float, reduction: Reduction
    ) -> None:
        super().__init__(reduction)
        self.alpha, self.beta, self.delta, self.min_prob = alpha, beta, delta, min_prob
        self.log_min = math.log(self.min_prob)

    def penalty(self, parameters: Iterable[torch.Tensor]) -> torch.Tensor | None:
        if self.delta == 0:
            return None
        return self.delta * sum(p.abs().sum() for p in parameters)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, delta={self.delta}"


class NCEandNNCE(_ActiveNegative):
    """ANL-CE: α·NCE + β·NNCE + δ·‖θ‖₁, with NCE = (−log p_y)/(−Σ_k log p_k) and the normalised
    negative CE NNCE = 1 − (A + log p_y)/Σ_k (A + log p_k), p clamped to [min_prob, 1] and
    A = −log min_prob (``NormalizedNegativeCrossEntropy``). Bounded.

    Defaults: the authors' CIFAR-10 config (``config/cifar10_anl_ce.json``: α 5, β 5, δ 5e-5,
    min_prob 1e-7).
    """

    name = "nce_nnce"

    def __init__(
        self,
        alpha: float = 5.0,
        beta: float = 5.0,
        delta: float = 5e-5,
        min_prob: float = 1e-7,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(alpha, beta, delta, min_prob, reduction)

    def per_example(self, log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        shifted = log_probs.clamp(min=self.log_min) - self.log_min  # A + log p, ≥ 0
        nnce = 1 - target_log_prob(shifted, targets) / shifted.sum(1)
        return self.alpha * normalized_ce(log_probs, targets) + self.beta * nnce


class NFLandNNFL(_ActiveNegative):
    """ANL-FL: α·NFL + β·NNFL + δ·‖θ‖₁ (``NormalizedFocalLoss``, ``NormalizedNegativeFocalLoss``),
    with the focal weights (1 − p)^γ treated as constants, as the code does (``logpt.data``):
    NFL = FL_y / Σ_k FL_k, FL_k = −(1 − p_k)^γ log p_k; NNFL = 1 − (A − FL_y)/(K·A − Σ_k FL_k)
    with log p clamped at log min_prob and A = −(1 − min_prob)^γ log min_prob. Bounded.

    Defaults: the authors' CIFAR-10 config (``config/cifar10_anl_fl.json``: α 5, β 5, δ 5e-5,
    γ 0.5, min_prob 1e-7).
    """

    name = "nfl_nnfl"
    domains = declare(gamma=NON_NEGATIVE)

    def __init__(
        self,
        alpha: float = 5.0,
        beta: float = 5.0,
        delta: float = 5e-5,
        gamma: float = 0.5,
        min_prob: float = 1e-7,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(alpha, beta, delta, min_prob, reduction)
        self.gamma = gamma
        self.A = -((1 - self.min_prob) ** self.gamma) * self.log_min

    def _focal(self, log_probs: torch.Tensor, targets: torch.Tensor) -> tuple:
        """FL of the target and the normaliser Σ_k FL_k, the weights (1 − p)^γ detached."""
        weights = (-torch.expm1(log_probs.detach())).clamp(min=0) ** self.gamma
        focal_y = -target_log_prob(weights, targets) * target_log_prob(log_probs, targets)
        return focal_y, -(weights * log_probs).sum(1)

    def per_example(self, log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        nfl = self._focal(log_probs, targets)
        nfl = nfl[0] / nfl[1]
        focal_y, normaliser = self._focal(log_probs.clamp(min=self.log_min), targets)
        k = log_probs.shape[1]
        nnfl = 1 - (self.A - focal_y) / (k * self.A - normaliser)
        return self.alpha * nfl + self.beta * nnfl

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, gamma={self.gamma}"
