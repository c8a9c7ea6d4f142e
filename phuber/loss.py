"""Classification losses of Menon et al. (ICLR 2020) as functions of p = softmax(logits)[y].

Every loss works from the log-probability of the target class, so values and gradients stay finite
for logits up to ±1e4 in float32, and half-precision logits are upcast to float32 (under autocast
too). Branches are selected with ``torch.where``: no data-dependent indexing and no host sync, so
the losses run under ``torch.compile`` and CUDA graphs.
"""

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from phuber.errors import InvalidValue

Reduction = Literal["mean", "sum", "none"]


# float32's range: a loss parameter multiplies float32 tensors, so it must be one (not inf, and
# not flushed towards 0).
F32_MAX = 3.4028234663852886e38
F32_TINY = 1.1754943508222875e-38  # the smallest normal float32


def in_float32(value: float) -> bool:
    """Whether ``value`` is 0 or a normal float32 number (its magnitude in [F32_TINY, F32_MAX])."""
    return value == 0 or F32_TINY <= abs(value) <= F32_MAX


def _number(name: str, value: object, ok: Callable[[float], bool], allowed: str) -> float:
    """``value`` as a float if it is a finite real number, within float32's range, that passes
    ``ok``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidValue(name, value, allowed)
    if not ok(value):
        raise InvalidValue(name, value, allowed)
    if not in_float32(value):
        raise InvalidValue(name, value, f"{allowed}, within float32's range (1.2e-38 to 3.4e38)")
    return float(value)


def _check_tau(tau: float) -> float:
    return _number("tau", tau, lambda t: t > 1, "> 1 (the PHuber clipping threshold)")


def _check_q(q: float) -> float:
    return _number("q", q, lambda v: 0 < v <= 1, "in (0, 1] (the GCE exponent)")


class Loss(nn.Module):
    """Base class: subclasses map the log-softmax (shape ``(N, K)``, float32) and the targets to
    the per-example loss. The log-softmax is computed once, in float32 with autocast off.

    ``name`` is the loss's config name (``conf/loss/<name>.yaml``), used to label runs.
    """

    name: str

    def __init__(self, reduction: Reduction = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise InvalidValue("reduction", reduction, "'mean', 'sum' or 'none'")
        self.reduction = reduction

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


class _TargetProbLoss(Loss):
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


class CrossEntropy(_TargetProbLoss):
    """Cross-entropy: ℓ(p) = −log p."""

    name = "ce"

    def from_log_prob(self, log_p: torch.Tensor) -> torch.Tensor:
        return -log_p


class GeneralizedCrossEntropy(_TargetProbLoss):
    """Generalised cross-entropy (Zhang & Sabuncu, 2018): ℓ(p) = (1 − p^q) / q, 0 < q ≤ 1.

    q → 0 recovers cross-entropy, q = 1 the linear loss.
    """

    name = "gce"

    def __init__(self, q: float = 0.7, reduction: Reduction = "mean") -> None:
        super().__init__(reduction)
        self.q = _check_q(q)

    def from_log_prob(self, log_p: torch.Tensor) -> torch.Tensor:
        return -torch.expm1(self.q * log_p) / self.q

    def extra_repr(self) -> str:
        return f"q={self.q}"


class Unhinged(_TargetProbLoss):
    """Unhinged, or linear, loss (van Rooyen et al., 2015): ℓ(p) = 1 − p."""

    name = "linear"

    def from_log_prob(self, log_p: torch.Tensor) -> torch.Tensor:
        return one_minus_p(log_p)


class PHuberCrossEntropy(_TargetProbLoss):
    """Partially Huberised cross-entropy, τ > 1.

    ℓ(p) = −τ·p + log τ + 1   if p ≤ 1/τ
    ℓ(p) = −log p              otherwise

    The loss is continuous with a continuous slope at p = 1/τ, and |∂ℓ/∂p| ≤ τ: below the
    threshold the gradient is clipped, above it the loss is cross-entropy.
    """

    name = "phuber_ce"

    def __init__(self, tau: float = 10, reduction: Reduction = "mean") -> None:
        super().__init__(reduction)
        self.tau = _check_tau(tau)
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


class PHuberGeneralizedCrossEntropy(_TargetProbLoss):
    """Partially Huberised generalised cross-entropy, τ > 1, 0 < q ≤ 1.

    With p* = τ^(1/(q−1)):
    ℓ(p) = −τ·p + τ·p* + (1 − p*^q)/q   if p ≤ p*
    ℓ(p) = (1 − p^q)/q                   otherwise

    For q = 1 the base loss is linear with slope 1 < τ, so p* = 0 and nothing is clipped.
    """

    name = "phuber_gce"

    def __init__(self, q: float = 0.7, tau: float = 10, reduction: Reduction = "mean") -> None:
        super().__init__(reduction)
        self.q = _check_q(q)
        self.tau = _check_tau(tau)
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
