"""ε-softmax (Wang et al., NeurIPS 2024; code: cswjl/eps-softmax, ``losses.py``, commit
f81685c): the softmax pushed towards its own arg max, p' = (p + m·e_argmax p)/(1 + m), then a
loss of p'_y beside MAE, ℓ = α·loss(p'_y) + β·MAE."""

import math

import torch

from phuber.core.declared import declare
from phuber.core.domains import Real
from phuber.losses.base import Loss, Reduction, one_minus_p, target_log_prob
from phuber.losses.robust import NON_NEGATIVE

EPS = 1e-8  # the code's ``eps``: p' is clamped at it before its log


class _EpsSoftmax(Loss):
    """α·ℓ(p'_y) + β·MAE, MAE = 2(1 − p_y) (their ``MAELoss``, scale 2).

    ``eps`` (their ``eps``, 1e-8 by default, as the code): p' is clamped at ``eps`` before its
    log, so below it the loss is constant and its gradient zero — on the examples the model
    confidently puts in another class, which under label noise are mostly mislabelled.
    ``eps=null`` is the paper's unclamped form, whose ε-softmax term keeps pulling there."""

    domains = declare(
        m=NON_NEGATIVE,
        alpha=NON_NEGATIVE,
        beta=NON_NEGATIVE,
        eps=Real(
            0,
            1,
            low_open=True,
            high_open=True,
            why="p' is clamped at it",
            nullable=True,
            null_means="unclamped, the paper's form",
        ),
    )

    def __init__(
        self, m: float, alpha: float, beta: float, eps: float | None, reduction: Reduction
    ) -> None:
        super().__init__(reduction)
        self.m, self.alpha, self.beta, self.eps = m, alpha, beta, eps
        self.log_1m = math.log1p(self.m)
        self.log_eps = -math.inf if eps is None else math.log(eps)

    def eps_log_prob(self, log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """log p'_y, floored at log ``eps`` as the code's clamp (unless ``eps`` is null): where
        y is the arg max, log((p_y + m)/(1 + m)) = log1p(−(1 − p_y)/(1 + m)), exact where the
        code's float32 p_y + m rounds; elsewhere log p_y − log(1 + m)."""
        log_p = target_log_prob(log_probs, targets)
        top = log_probs.argmax(1) == targets
        pushed = torch.log1p(-one_minus_p(log_p) / (1 + self.m))
        log_eps = torch.where(top, pushed, log_p - self.log_1m)
        return log_eps if self.eps is None else log_eps.clamp(min=self.log_eps)

    def per_example(self, log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        mae = 2 * one_minus_p(target_log_prob(log_probs, targets))
        return self.alpha * self.active(self.eps_log_prob(log_probs, targets)) + self.beta * mae

    def extra_repr(self) -> str:
        return f"m={self.m}, alpha={self.alpha}, beta={self.beta}, eps={self.eps}"


class ECEandMAE(_EpsSoftmax):
    """ε-softmax with CE: ℓ = α·(−log p'_y) + β·2(1 − p_y) (``ECEandMAE``). Defaults: their
    CIFAR-10 symmetric values (``config.py``, ``get_eps_softmax``: α 0.01, β 5, m 1e5)."""

    name = "ece_mae"

    def __init__(
        self,
        m: float = 1e5,
        alpha: float = 0.01,
        beta: float = 5.0,
        eps: float | None = EPS,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(m, alpha, beta, eps, reduction)

    def active(self, log_p: torch.Tensor) -> torch.Tensor:
        return -log_p


class EFLandMAE(_EpsSoftmax):
    """ε-softmax with focal loss: ℓ = α·(−(1 − p'_y)^γ log p'_y) + β·2(1 − p_y), the focal weight
    detached as in their ``EFocalLoss`` (γ 0.1). Defaults as ``ece_mae``."""

    name = "efl_mae"
    domains = declare(gamma=NON_NEGATIVE)

    def __init__(
        self,
        m: float = 1e5,
        alpha: float = 0.01,
        beta: float = 5.0,
        gamma: float = 0.1,
        eps: float | None = EPS,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(m, alpha, beta, eps, reduction)
        self.gamma = gamma

    def active(self, log_p: torch.Tensor) -> torch.Tensor:
        weight = one_minus_p(log_p.detach()).clamp(min=0) ** self.gamma
        return -weight * log_p

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, gamma={self.gamma}"
