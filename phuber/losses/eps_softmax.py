"""ε-softmax (Wang et al., NeurIPS 2024; code: cswjl/eps-softmax, ``losses.py``): the softmax
pushed towards its own arg max, p' = (p + m·e_argmax p)/(1 + m), then a loss of p'_y beside MAE,
ℓ = α·loss(p'_y) + β·MAE."""

import math

import torch

from phuber.losses.base import Loss, Reduction, checked_number, one_minus_p, target_log_prob

_LOG_EPS = math.log(1e-8)  # the code clamps p' at 1e-8 before its log


class _EpsSoftmax(Loss):
    """α·ℓ(p'_y) + β·MAE, MAE = 2(1 − p_y) (their ``MAELoss``, scale 2)."""

    def __init__(self, m: float, alpha: float, beta: float, reduction: Reduction) -> None:
        super().__init__(reduction)
        self.m = checked_number("m", m, lambda v: v >= 0, ">= 0")
        self.alpha = checked_number("alpha", alpha, lambda v: v >= 0, ">= 0")
        self.beta = checked_number("beta", beta, lambda v: v >= 0, ">= 0")
        self.log_1m = math.log1p(self.m)

    def eps_log_prob(self, log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """log p'_y, floored at log 1e-8 as the code's clamp: where y is the arg max,
        log((p_y + m)/(1 + m)) = log1p(−(1 − p_y)/(1 + m)), exact where the code's float32
        p_y + m rounds; elsewhere log p_y − log(1 + m)."""
        log_p = target_log_prob(log_probs, targets)
        top = log_probs.argmax(1) == targets
        pushed = torch.log1p(-one_minus_p(log_p) / (1 + self.m))
        return torch.where(top, pushed, log_p - self.log_1m).clamp(min=_LOG_EPS)

    def per_example(self, log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        mae = 2 * one_minus_p(target_log_prob(log_probs, targets))
        return self.alpha * self.active(self.eps_log_prob(log_probs, targets)) + self.beta * mae

    def extra_repr(self) -> str:
        return f"m={self.m}, alpha={self.alpha}, beta={self.beta}"


class ECEandMAE(_EpsSoftmax):
    """ε-softmax with CE: ℓ = α·(−log p'_y) + β·2(1 − p_y) (``ECEandMAE``). Defaults: their
    CIFAR-10 symmetric values (``config.py``, ``get_eps_softmax``: α 0.01, β 5, m 1e5)."""

    name = "ece_mae"

    def __init__(
        self, m: float = 1e5, alpha: float = 0.01, beta: float = 5.0, reduction: Reduction = "mean"
    ) -> None:
        super().__init__(m, alpha, beta, reduction)

    def active(self, log_p: torch.Tensor) -> torch.Tensor:
        return -log_p


class EFLandMAE(_EpsSoftmax):
    """ε-softmax with focal loss: ℓ = α·(−(1 − p'_y)^γ log p'_y) + β·2(1 − p_y), the focal weight
    detached as in their ``EFocalLoss`` (γ 0.1). Defaults as ``ece_mae``."""

    name = "efl_mae"

    def __init__(
        self,
        m: float = 1e5,
        alpha: float = 0.01,
        beta: float = 5.0,
        gamma: float = 0.1,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(m, alpha, beta, reduction)
        self.gamma = checked_number("gamma", gamma, lambda v: v >= 0, ">= 0")

    def active(self, log_p: torch.Tensor) -> torch.Tensor:
        weight = one_minus_p(log_p.detach()).clamp(min=0) ** self.gamma
        return -weight * log_p

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, gamma={self.gamma}"
