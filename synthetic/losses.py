"""Margin losses ℓ(z), z = y·f(x) with y ∈ {−1, +1}, and their derivatives ℓ'(z).

The Huberised logistic loss is what clipping the gradient of the logistic loss at τ amounts to; the
partially Huberised one clips only through the probability σ(z), as the PHuber losses do.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit

from phuber.core.errors import InvalidValue


@dataclass(frozen=True)
class MarginLoss:
    """ℓ(z) and ℓ'(z), elementwise on arrays of margins."""

    name: str

    def value(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def grad(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class Logistic(MarginLoss):
    """ℓ(z) = log(1 + e^(−z)); ℓ'(z) = −σ(−z)."""

    name: str = "logistic"

    def value(self, z: np.ndarray) -> np.ndarray:
        return np.logaddexp(0.0, -z)

    def grad(self, z: np.ndarray) -> np.ndarray:
        return -expit(-z)


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Huberised(MarginLoss):
    """Logistic loss with its slope clipped at −τ, 0 < τ < 1 (gradient clipping):
    ℓ(z) = −τz − log(1 − τ) − τ·logit(τ) for z ≤ −logit(τ), else logistic."""

    tau: float = 0.1
    name: str = "huberised"

    def __post_init__(self) -> None:
        if not (_finite(self.tau) and 0 < self.tau < 1):
            raise InvalidValue("huber_tau", self.tau, "in (0, 1) (a slope bound)")

    @property
    def z0(self) -> float:
        return -float(logit(self.tau))

    def value(self, z: np.ndarray) -> np.ndarray:
        linear = -self.tau * z - math.log(1 - self.tau) - self.tau * float(logit(self.tau))
        return np.where(z <= self.z0, linear, np.logaddexp(0.0, -z))

    def grad(self, z: np.ndarray) -> np.ndarray:
        return np.where(z <= self.z0, -self.tau, -expit(-z))


@dataclass(frozen=True)
class PartiallyHuberised(MarginLoss):
    """Partially Huberised logistic loss, τ > 1: with p = σ(z),
    ℓ = −τp + log τ + 1 for p ≤ 1/τ (z ≤ −log(τ − 1)), else −log p."""

    tau: float = 2.0
    name: str = "phuber"

    def __post_init__(self) -> None:
        if not (_finite(self.tau) and self.tau > 1):
            raise InvalidValue("phuber_tau", self.tau, "> 1")

    @property
    def z0(self) -> float:
        return float(logit(1 / self.tau))

    def value(self, z: np.ndarray) -> np.ndarray:
        linear = -self.tau * expit(z) + math.log(self.tau) + 1
        return np.where(z <= self.z0, linear, np.logaddexp(0.0, -z))

    def grad(self, z: np.ndarray) -> np.ndarray:
        p = expit(z)
        return np.where(z <= self.z0, -self.tau * p * (1 - p), -expit(-z))
