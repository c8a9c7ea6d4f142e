"""Linear classifiers f(x) = w·x fitted by minimising the mean margin loss with SciPy."""

import numpy as np
from scipy.optimize import minimize

from synthetic.losses import MarginLoss

METHODS = {"slsqp": "SLSQP", "lbfgsb": "L-BFGS-B"}


def risk_and_grad(w: np.ndarray, x: np.ndarray, y: np.ndarray, loss: MarginLoss):
    """Mean loss over the points and its exact gradient: (1/n) Σ ℓ'(y w·x) y x."""
    z = y * (x @ w)
    return loss.value(z).mean(), (loss.grad(z) * y) @ x / len(y)


def fit(x: np.ndarray, y: np.ndarray, loss: MarginLoss, method: str = "slsqp") -> np.ndarray:
    """Fit one weight vector per repeat: ``x`` ``(R, n, d)``, ``y`` ``(R, n)`` → ``(R, d)``.

    Each repeat starts from w = 0, as in the earlier reproduction, with the exact gradient.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    weights = np.empty((x.shape[0], x.shape[2]))
    for r in range(x.shape[0]):
        result = minimize(
            risk_and_grad,
            np.zeros(x.shape[2]),
            args=(x[r], y[r], loss),
            jac=True,
            method=METHODS[method],
            options={"maxiter": 200},
        )
        weights[r] = result.x
    return weights


def evaluate(w: np.ndarray, x: np.ndarray, y: np.ndarray, loss: MarginLoss):
    """Per-repeat mean loss and accuracy (f > 0 predicts +1, else −1): two ``(R,)`` arrays."""
    scores = np.einsum("rnd,rd->rn", x, w)
    predictions = np.where(scores > 0, 1.0, -1.0)
    return loss.value(y * scores).mean(axis=1), (predictions == y).mean(axis=1)
