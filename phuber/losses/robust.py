"""Robust-loss baselines of the label-noise literature, beside the paper's losses (``loss.py``).

Each works from the float32 log-softmax the base class computes, so values and gradients stay
finite for logits up to ±1e4 and for bf16 logits; none indexes by data or syncs with the host.
p = softmax(logits), y the given label, p_y its probability. Where the Active-Passive-Losses code
(Ma et al., 2020) computes a loss with clamps, the docstring says how ours differs.
"""

import math

import torch

from phuber.core.declared import declare
from phuber.core.domains import Choice, Flag, Integer, Real
from phuber.losses.base import Loss, Reduction, TargetProbLoss, one_minus_p, target_log_prob

NON_NEGATIVE = Real(0)
POSITIVE = Real(0, low_open=True)
LOG_ZERO = Real(high=0, high_open=True, why="the value given to log 0")


class MeanAbsoluteError(TargetProbLoss):
    """Mean absolute error (Ghosh et al., AAAI 2017): ℓ = scale·Σ_k |p_k − y_k| = 2·scale·(1 − p_y).

    Bounded and symmetric. The Active-Passive-Losses code's ``MeanAbsoluteError(scale=s)`` is
    s·(1 − p_y), which is ours with scale = s/2.
    """

    name = "mae"
    domains = declare(scale=POSITIVE)

    def __init__(self, scale: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction)
        self.scale = scale

    def from_log_prob(self, log_p: torch.Tensor) -> torch.Tensor:
        return 2 * self.scale * one_minus_p(log_p)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


class SymmetricCrossEntropy(TargetProbLoss):
    """Symmetric cross-entropy (Wang et al., ICCV 2019): ℓ = α·CE + β·RCE, A < 0.

    RCE = −Σ_k p_k log y_k with log 0 := A, so RCE = −A·(1 − p_y): bounded, and ℓ is a function
    of p_y alone. The default A = log 1e-4 ≈ −9.21 is what the authors' code computes (it clamps
    the one-hot label to [1e-4, 1]: YisenWang/symmetric_cross_entropy_for_noisy_labels,
    ``loss.py``, and the same in Active-Passive-Losses); the paper's text says A = −4, which is
    ``A=-4`` here (with the authors' α, β it weighs RCE 0.43× theirs). Their code also clamps p
    to [1e-7, 1], which adds up to −A·(K − 1)·1e-7 where probabilities underflow; ours has no
    such floor.
    """

    name = "sce"
    domains = declare(alpha=NON_NEGATIVE, beta=NON_NEGATIVE, A=LOG_ZERO)

    def __init__(
        self,
        alpha: float = 0.1,
        beta: float = 1.0,
        A: float = math.log(1e-4),
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction)
        self.alpha, self.beta, self.A = alpha, beta, A

    def from_log_prob(self, log_p: torch.Tensor) -> torch.Tensor:
        return self.alpha * -log_p + self.beta * -self.A * one_minus_p(log_p)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, A={self.A}"


def normalized_ce(log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """NCE = (−log p_y) / (−Σ_k log p_k) ∈ [0, 1] (Ma et al., 2020). The denominator is at least
    K·log K > 0, so it never divides by zero."""
    return target_log_prob(log_probs, targets) / log_probs.sum(1)


class NormalizedCEReverseCE(Loss):
    """NCE+RCE, an active-passive loss (Ma et al., ICML 2020): ℓ = α·NCE + β·RCE.

    NCE = (−log p_y) / (−Σ_k log p_k); RCE = −A·(1 − p_y) as in ``SymmetricCrossEntropy``, with the
    A the authors' code uses (log 1e-4) and without its clamp of p to [1e-7, 1].
    """

    name = "nce_rce"
    domains = declare(alpha=NON_NEGATIVE, beta=NON_NEGATIVE, A=LOG_ZERO)

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 1.0,
        A: float = math.log(1e-4),
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction)
        self.alpha, self.beta, self.A = alpha, beta, A

    def per_example(self, log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        rce = -self.A * one_minus_p(target_log_prob(log_probs, targets))
        return self.alpha * normalized_ce(log_probs, targets) + self.beta * rce

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, A={self.A}"


class NormalizedCEMeanAbsoluteError(Loss):
    """NCE+MAE, an active-passive loss (Ma et al., ICML 2020): ℓ = α·NCE + β·(1 − p_y).

    The MAE term is the authors' code's (1 − p_y), half of Ghosh et al.'s Σ_k |p_k − y_k|.
    """

    name = "nce_mae"
    domains = declare(alpha=NON_NEGATIVE, beta=NON_NEGATIVE)

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, reduction: Reduction = "mean"):
        super().__init__(reduction)
        self.alpha, self.beta = alpha, beta

    def per_example(self, log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        mae = one_minus_p(target_log_prob(log_probs, targets))
        return self.alpha * normalized_ce(log_probs, targets) + self.beta * mae

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}"


class AsymmetricGeneralizedCrossEntropy(TargetProbLoss):
    """Asymmetric GCE (Zhou et al., ICML 2021): ℓ = ((a + 1)^q − (a + p_y)^q) / q, a > 0, q > 0.

    Bounded: 0 ≤ ℓ ≤ ((a + 1)^q − a^q) / q.
    """

    name = "agce"
    domains = declare(a=POSITIVE, q=POSITIVE)

    def __init__(self, a: float = 0.6, q: float = 0.6, reduction: Reduction = "mean") -> None:
        super().__init__(reduction)
        self.a, self.q = a, q

    def from_log_prob(self, log_p: torch.Tensor) -> torch.Tensor:
        return ((self.a + 1) ** self.q - (self.a + log_p.exp()) ** self.q) / self.q

    def extra_repr(self) -> str:
        return f"a={self.a}, q={self.q}"


class TaylorCrossEntropy(TargetProbLoss):
    """Taylor cross-entropy (Feng et al., IJCAI 2020): ℓ = Σ_{k=1..t} (1 − p_y)^k / k.

    The first t terms of −log p_y = Σ_k (1 − p_y)^k / k: t = 1 is MAE/2, t → ∞ is CE. Bounded
    (by Σ_k 1/k) for finite t.
    """

    name = "taylor_ce"
    # beyond 100 terms the loop (per step) costs more than it changes: the series is CE's
    domains = declare(order=Integer(1, 100, why="the number of Taylor terms"))

    def __init__(self, order: int = 2, reduction: Reduction = "mean") -> None:
        super().__init__(reduction)
        self.order = order

    def from_log_prob(self, log_p: torch.Tensor) -> torch.Tensor:
        u = one_minus_p(log_p)
        return sum(u**k / k for k in range(1, self.order + 1))

    def extra_repr(self) -> str:
        return f"order={self.order}"


class FocalLoss(TargetProbLoss):
    """Focal loss (Lin et al., ICCV 2017): ℓ = −(1 − p_y)^γ · log p_y, γ ≥ 0.

    ``detach_weight=true`` (the default) treats the factor (1 − p_y)^γ as a constant, as the
    code behind the label-noise numbers does (Active-Passive-Losses ``FocalLoss``, from
    clcarwin/focal_loss_pytorch: ``pt = Variable(logpt.data.exp())``; the ALFs code likewise):
    the gradient is (1 − p_y)^γ times CE's, finite everywhere and 0 where p_y rounds to 1.
    ``detach_weight=false`` differentiates the factor too (Lin et al.'s function), whose
    gradient is up to (1 + γ)× larger; for γ < 1 its slope γ(1 − p_y)^(γ−1) is infinite where
    p_y rounds to 1, so 1 − p_y is floored at 1e-30 there (the loss changes by < 1e-15·γ).
    """

    name = "focal"
    domains = declare(gamma=NON_NEGATIVE, detach_weight=Flag())

    def __init__(
        self, gamma: float = 0.5, detach_weight: bool = True, reduction: Reduction = "mean"
    ) -> None:
        super().__init__(reduction)
        self.gamma, self.detach_weight = gamma, detach_weight

    def from_log_prob(self, log_p: torch.Tensor) -> torch.Tensor:
        weight = one_minus_p(log_p).clamp(min=1e-30) ** self.gamma
        return -(weight.detach() if self.detach_weight else weight) * log_p

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, detach_weight={self.detach_weight}"


class Bootstrapping(Loss):
    """Bootstrapping (Reed et al., ICLR 2015 workshop): cross-entropy against a target mixed from
    the given label and the model's own prediction, ℓ = −Σ_k (β·y_k + (1 − β)·t_k) log p_k.

    ``soft``: t = p, so ℓ = β·CE + (1 − β)·H(p), the minimum-entropy regulariser of the paper
    (gradients flow through the target). ``hard``: t = one-hot argmax p, ℓ = −β log p_y −
    (1 − β) log p_max. The paper's MNIST values: β = 0.95 (soft), 0.8 (hard).
    """

    name = "bootstrap"
    domains = declare(beta=Real(0, 1), mode=Choice(("soft", "hard")))

    def __init__(self, beta: float = 0.95, mode: str = "soft", reduction: Reduction = "mean"):
        super().__init__(reduction)
        self.beta, self.mode = beta, mode

    def per_example(self, log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        ce = -target_log_prob(log_probs, targets)
        if self.mode == "soft":
            own = -(log_probs.exp() * log_probs).sum(1)
        else:
            own = -log_probs.max(1).values
        return self.beta * ce + (1 - self.beta) * own

    def extra_repr(self) -> str:
        return f"beta={self.beta}, mode={self.mode!r}"
