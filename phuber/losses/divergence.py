"""The Jensen–Shannon divergence loss (Englesson & Azizpour, NeurIPS 2021; code:
ErikEnglesson/GJS, ``losses.py``, ``JensenShannonDivergenceWeightedScaled``)."""

import math

import torch

from phuber.core.declared import declare
from phuber.core.domains import Real
from phuber.losses.base import Loss, Reduction, target_log_prob

_LOG_FLOOR = math.log(1e-7)  # the code clamps probabilities at 1e-7 before their logs


class JensenShannon(Loss):
    """JS_π(e_y, p) = π₁·KL(e_y ‖ m) + (1 − π₁)·KL(p ‖ m), m = π₁·e_y + (1 − π₁)·p, scaled by
    Z = −1 / ((1 − π₁)·log(1 − π₁)) so that it spans CE (π₁ → 0) to MAE (π₁ → 1). As the code:
    log m and log p are floored at log 1e-7. Bounded.

    π₁ (``pi1``, their first ``js_weights``) 0.7: their CIFAR-10 symmetric 20–40% scripts
    (``scripts/C10/sym/js-40.yaml``); they use 0.1 without noise, 0.9 at 60–80%, 0.3 for
    asymmetric noise and for CIFAR-100 at 40%. The consistency variant GJS (several augmented
    views of each image) is not offered: the harness's step computes one view per example.
    """

    name = "js"
    domains = declare(pi1=Real(0, 1, low_open=True, high_open=True))

    def __init__(self, pi1: float = 0.7, reduction: Reduction = "mean") -> None:
        super().__init__(reduction)
        self.pi1 = pi1
        # log1p: log(1 − π₁) rounds to 0 for π₁ below 1e-16, and Z would divide by it
        self.scale = -1.0 / ((1 - pi1) * math.log1p(-pi1))

    def per_example(self, log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        w = 1 - self.pi1
        log_p_y = target_log_prob(log_probs, targets)
        # log m: the other classes carry (1 − π₁)·p_k, the label π₁ + (1 − π₁)·p_y
        log_m = log_probs + math.log(w)
        log_m_y = torch.log(self.pi1 + w * log_p_y.exp())
        log_m = log_m.scatter(1, targets[:, None], log_m_y[:, None]).clamp(min=_LOG_FLOOR)
        kl_label = -target_log_prob(log_m, targets)  # KL(e_y ‖ m) = −log m_y
        p = log_probs.exp()
        kl_pred = (p * (log_probs.clamp(min=_LOG_FLOOR) - log_m)).sum(1)
        return self.scale * (self.pi1 * kl_label + w * kl_pred)

    def extra_repr(self) -> str:
        return f"pi1={self.pi1}"
