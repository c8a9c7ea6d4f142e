"""The losses of Menon et al. (ICLR 2020), as functions of p = softmax(logits)[y]: cross-entropy,
GCE, the linear loss, and the partially Huberised PHuber-CE and PHuber-GCE."""

import math

import torch

from phuber.core.declared import declare
from phuber.core.domains import Real
from phuber.losses.base import Reduction, TargetProbLoss, one_minus_p

TAU = Real(1, low_open=True, why="the PHuber clipping threshold")
Q = Real(0, 1, low_open=True, why="the GCE exponent")


class CrossEntropy(TargetProbLoss):
    """Cross-entropy: ℓ(p) = −log p."""

    name = "ce"

    def from_log_prob(self, log_p: torch.Tensor) -> torch.Tensor:
        return -log_p


class GeneralizedCrossEntropy(TargetProbLoss):
    """Generalised cross-entropy (Zhang & Sabuncu, 2018): ℓ(p) = (1 − p^q) / q, 0 < q ≤ 1.

    q → 0 recovers cross-entropy, q = 1 the linear loss.
    """

    name = "gce"
    domains = declare(q=Q)

    def __init__(self, q: float = 0.7, reduction: Reduction = "mean") -> None:
        super().__init__(reduction)
        self.q = q

    def from_log_prob(self, log_p: torch.Tensor) -> torch.Tensor:
        return -torch.expm1(self.q * log_p) / self.q

    def extra_repr(self) -> str:
        return f"q={self.q}"


class Unhinged(TargetProbLoss):
    """Unhinged, or linear, loss (van Rooyen et al., 2015): ℓ(p) = 1 − p."""

    name = "linear"

    def from_log_prob(self, log_p: torch.Tensor) -> torch.Tensor:
        return one_minus_p(log_p)


class PHuberCrossEntropy(TargetProbLoss):
    """Partially Huberised cross-entropy, τ > 1.

    ℓ(p) = −τ·p + log τ + 1   if p ≤ 1/τ
    ℓ(p) = −log p              otherwise

    The loss is continuous with a continuous slope at p = 1/τ, and |∂ℓ/∂p| ≤ τ: below the
    threshold the gradient is clipped, above it the loss is cross-entropy.
    """

    name = "phuber_ce"
    domains = declare(tau=TAU)

    def __init__(self, tau: float = 10, reduction: Reduction = "mean") -> None:
        super().__init__(reduction)
        self.tau = tau
        self.log_threshold = -math.log(self.tau)  # log(1/τ)
        self.boundary_term = math.log(self.tau) + 1

    def from_log_prob(self, log_p: torch.Tensor) -> torch.Tensor:
        linear = -self.tau * log_p.exp() + self.boundary_term
        return torch.where(log_p <= self.log_threshold, linear, -log_p)

    def clipped(self, log_p: torch.Tensor) -> torch.Tensor:
        """Boolean mask of the examples in the linear (clipped) regime."""
        return log_p <= self.log_threshold

    def extra_repr(self) -> str:
        return f"tau={self.tau}"


class PHuberGeneralizedCrossEntropy(TargetProbLoss):
    """Partially Huberised generalised cross-entropy, τ > 1, 0 < q ≤ 1.

    With p* = τ^(1/(q−1)):
    ℓ(p) = −τ·p + τ·p* + (1 − p*^q)/q   if p ≤ p*
    ℓ(p) = (1 − p^q)/q                   otherwise

    For q = 1 the base loss is linear with slope 1 < τ, so p* = 0 and nothing is clipped.
    """

    name = "phuber_gce"
    domains = declare(q=Q, tau=TAU)

    def __init__(self, q: float = 0.7, tau: float = 10, reduction: Reduction = "mean") -> None:
        super().__init__(reduction)
        self.q, self.tau = q, tau
        # log p* = log τ / (q − 1); −inf for q = 1.
        self.log_threshold = math.log(self.tau) / (self.q - 1) if self.q < 1 else -math.inf
        p_star = math.exp(self.log_threshold)
        self.boundary_term = self.tau * p_star + (1 - p_star**self.q) / self.q

    def from_log_prob(self, log_p: torch.Tensor) -> torch.Tensor:
        linear = -self.tau * log_p.exp() + self.boundary_term
        gce = -torch.expm1(self.q * log_p) / self.q
        return torch.where(log_p <= self.log_threshold, linear, gce)

    def clipped(self, log_p: torch.Tensor) -> torch.Tensor:
        """Boolean mask of the examples in the linear (clipped) regime."""
        return log_p <= self.log_threshold

    def extra_repr(self) -> str:
        return f"q={self.q}, tau={self.tau}"
