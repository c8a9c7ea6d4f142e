"""Optimized Gradient Clipping (Ye et al., AAAI 2025; code: Virusdoll/OGC, ``methods/
losses_ogc.py``, ``methods/tools.py``): a PHuber-style loss whose clipping threshold is re-fitted
during training.

Below a probability threshold p_thr the loss is the line 1 − τ_t·p + ℓ(p_thr), above it the base
loss ℓ (CE, focal, GCE), τ_t = |ℓ'(p_thr)|. Every ``time_frame_s`` steps, from a queue of the last
``queue_size_q`` per-example H = −log p_y: a two-component Gaussian mixture on H (the lower mean
is clean), truncated-normal densities on [−log(1 − 1e-7), −log 1e-7], and a binary search for
the p_thr at which the expected gradient of the noisy component over the clean one (each clipped
at τ) equals 1 + lr·ε, with the learning rate of that very step. Until the queue is full the
threshold stays at its start, p = 1e-7; p is clamped to [1e-7, 1 − 1e-7].

The queue lives on the device and is read once per ``time_frame_s`` steps; the state (queue,
counters, threshold) is saved in checkpoints and changes only in training mode. One difference
from the code: the mixture's initialisation is seeded (by the update's number), so runs and
resumes repeat; theirs draws it afresh.
"""

import math
import warnings
from typing import Any

import numpy as np
import torch

from phuber.core.declared import declare
from phuber.core.domains import Integer, Real
from phuber.core.errors import InvalidCombination
from phuber.losses.base import Loss, Reduction, RunPlan, target_log_prob
from phuber.losses.paper import Q

MIN_PROB, MAX_PROB = 1e-7, 1 - 1e-7
MIN_H, MAX_H = -math.log(MAX_PROB), -math.log(MIN_PROB)
_GRID = 1000  # points of H on which the expected gradients are computed, as the code's


def fit_mixture(h: np.ndarray, seed: int) -> tuple[float, float, float, float]:
    """Mean and variance of the lower (clean) and the upper (noisy) component of a
    two-component Gaussian mixture on ``h`` (``fit_gmm``: scikit-learn, 10 EM iterations,
    ``reg_covar`` 1e-3)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    gmm = GaussianMixture(n_components=2, max_iter=10, reg_covar=1e-3, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gmm.fit(h.reshape(-1, 1))
    means, covars = gmm.means_.reshape(-1), gmm.covariances_.reshape(-1)
    low, high = int(means.argmin()), int(means.argmax())
    return float(means[low]), float(covars[low]), float(means[high]), float(covars[high])


def binary_search(low: float, high: float, cost: Any, tol: float, max_iter: int) -> float:
    """Where ``cost`` (target − a decreasing function of x) crosses 0 in [low, high], as the
    code's ``binary_search`` with ``is_func_decrease``: ``high`` if the cost there is below 0,
    ``low`` if it is above 0 there, else halvings until |cost| < tol (that midpoint) or
    ``max_iter`` of them (then ``high``)."""
    if cost(high) < 0:
        return high
    if cost(low) > 0:
        return low
    for _ in range(max_iter):
        middle = (low + high) / 2
        value = cost(middle)
        if abs(value) < tol:
            return middle
        if value > 0:
            high = middle
        else:
            low = middle
    return high


class OptimizedGradientClipping(Loss):
    """The base of ``ogc_ce``, ``ogc_fl`` and ``ogc_gce``: subclasses give the base loss of p
    (``base``, torch) and its derivative (``slope``, NumPy)."""

    stateful = True
    domains = declare(
        epsilon=Real(0, low_open=True),
        time_frame_s=Integer(1),
        queue_size_q=Integer(2, 2**24, why="a mixture's data: 64 MiB of float32 at most"),
        binary_search_tol=Real(0, low_open=True),
        binary_search_max_iter=Integer(0, 1000, why="halvings: 64 reach a float's width"),
    )

    def __init__(
        self,
        epsilon: float = 20.0,
        time_frame_s: int = 32,
        queue_size_q: int = 4096,
        binary_search_tol: float = 1e-7,
        binary_search_max_iter: int = 10,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction)
        self.epsilon = epsilon
        self.time_frame_s, self.queue_size_q = time_frame_s, queue_size_q
        self.tol, self.max_iter = binary_search_tol, binary_search_max_iter
        self.register_buffer("queue", torch.zeros(queue_size_q))
        self.grid_h = np.linspace(MIN_H, MAX_H, _GRID)
        self.pushed = self.steps = self.updates = 0
        self.set_threshold(MIN_PROB)
        # the last mixture's means and variances (clean, noisy); zeros until the first fit
        self.fit: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)

    def base(self, p: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def slope(self, p: Any) -> Any:
        raise NotImplementedError

    # -- the loss -------------------------------------------------------------------------------

    def per_example(self, log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        p = target_log_prob(log_probs, targets).exp().clamp(MIN_PROB, MAX_PROB)
        if self.training:
            self._push(-p.detach().log())
            self.steps += 1
            if self.steps == self.time_frame_s:
                self.steps = 0
                if self.pushed >= self.queue_size_q:
                    self._update()
        line = 1 - self.tau * p + self.boundary
        return torch.where(p <= self.prob_thr, line, self.base(p))

    def check_plan(self, plan: RunPlan) -> None:
        """The threshold is fitted at a step that is a multiple of ``time_frame_s`` once the
        queue is full: a run with no such step would train with p_thr = 1e-7 throughout."""
        total = plan.epochs * plan.steps_per_epoch
        fitted = any(
            plan.seen(step) >= self.queue_size_q
            for step in range(self.time_frame_s, total + 1, self.time_frame_s)
        )
        if not fitted:
            raise InvalidCombination(
                {"time_frame_s": self.time_frame_s, "queue_size_q": self.queue_size_q},
                f"small enough for this run ({total} steps, {plan.seen(total)} examples: "
                f"{plan.epochs} epoch(s) of {plan.train_size}), which a fit needs: a step that "
                f"is a multiple of time_frame_s once queue_size_q examples are queued; else "
                f"its threshold is never fitted and it trains clipped at p = 1e-7 throughout. "
                f"Lower them, or train longer",
            )

    def clipped(self, log_p: torch.Tensor) -> torch.Tensor:
        """The examples in the linear (clipped) regime."""
        return log_p.exp().clamp(MIN_PROB, MAX_PROB) <= self.prob_thr

    def diagnostics(self) -> dict[str, float]:
        return {"tau_t": self.tau, "prob_thr_t": self.prob_thr}

    # -- the threshold --------------------------------------------------------------------------

    def _push(self, h: torch.Tensor) -> None:
        """Append a batch's H to the ring buffer (the last q of them)."""
        n, q = h.shape[0], self.queue_size_q
        kept = h[-q:]
        start = self.pushed + n - kept.shape[0]
        index = (start + torch.arange(kept.shape[0], device=h.device)) % q
        self.queue[index] = kept.to(self.queue.dtype)
        self.pushed += n

    def _update(self) -> None:
        """Fit the mixture on the queue (in the order its values came) and search p_thr."""
        oldest = self.pushed % self.queue_size_q
        h = np.roll(self.queue.double().cpu().numpy(), -oldest)  # the one host read
        self.fit = fit_mixture(h, seed=self.updates)
        self.updates += 1
        mean_clean, var_clean, mean_noisy, var_noisy = self.fit
        clean = _truncated_pdf(self.grid_h, mean_clean, math.sqrt(var_clean))
        noisy = _truncated_pdf(self.grid_h, mean_noisy, math.sqrt(var_noisy))
        slopes = np.abs(self.slope(np.exp(-self.grid_h)))
        lr = self.context.lr if self.context is not None else 1.0
        target = 1 + lr * self.epsilon

        def cost(prob: float) -> float:  # target − the expected noisy/clean gradient ratio
            tau = self._tau(prob)
            clipped = np.minimum(slopes, tau)
            ratio = (noisy * clipped).mean() / (clean * clipped).mean()
            return target - ratio * clean.mean() / noisy.mean()

        self.set_threshold(binary_search(MIN_PROB, MAX_PROB, cost, self.tol, self.max_iter))

    def set_threshold(self, prob: float) -> None:
        """p_thr and what follows from it: τ = |ℓ'(p_thr)| and the line's offset ℓ(p_thr), in
        float32 as the code computes them (``torch.tensor(p)``)."""
        self.prob_thr, self.tau = prob, self._tau(prob)
        self.boundary = float(self.base(torch.tensor(prob)))

    def _tau(self, prob: float) -> float:
        """|ℓ'(p)| at a threshold, in float32 as the code computes it (``torch.tensor(p)``);
        an overflow is inf, which the builder's probe of the loss refuses."""
        with np.errstate(over="ignore", invalid="ignore"):
            return abs(float(self.slope(np.float32(prob))))

    # -- state ----------------------------------------------------------------------------------

    def get_extra_state(self) -> dict[str, Any]:
        return {
            "pushed": self.pushed,
            "steps": self.steps,
            "updates": self.updates,
            "prob_thr": self.prob_thr,
            "tau": self.tau,
            "fit": list(self.fit),
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.pushed, self.steps, self.updates = state["pushed"], state["steps"], state["updates"]
        self.set_threshold(state["prob_thr"])  # τ and the offset as saved: they follow from it
        self.fit = tuple(state["fit"])

    def extra_repr(self) -> str:
        return (
            f"epsilon={self.epsilon}, time_frame_s={self.time_frame_s}, "
            f"queue_size_q={self.queue_size_q}"
        )


def _truncated_pdf(x: np.ndarray, loc: float, scale: float) -> np.ndarray:
    from scipy import stats

    a, b = (MIN_H - loc) / scale, (MAX_H - loc) / scale
    return stats.truncnorm.pdf(x, a, b, loc, scale).reshape(-1)


class OGC_CE(OptimizedGradientClipping):
    """OGC with cross-entropy: ℓ(p) = −log p, ℓ'(p) = −1/p. Defaults: the authors' CIFAR-10
    script (``script/cifar10/ogc_ce.sh``: ε 20, s 32, q 4096, tol 1e-7, 10 iterations)."""

    name = "ogc_ce"

    def base(self, p: torch.Tensor) -> torch.Tensor:
        return -torch.log(p)

    def slope(self, p: Any) -> Any:
        return -1 / p


class OGC_FL(OptimizedGradientClipping):
    """OGC with focal loss: ℓ(p) = −(1 − p)^γ log p, its full derivative
    ℓ'(p) = γ(1 − p)^(γ−1) log p − (1 − p)^γ / p (the code differentiates the weight here).
    Defaults: ``script/cifar10/ogc_fl.sh`` (γ 0.5)."""

    name = "ogc_fl"
    domains = declare(gamma=Real(0))

    def __init__(self, gamma: float = 0.5, **kwargs: Any) -> None:
        self.gamma = gamma
        super().__init__(**kwargs)

    def base(self, p: torch.Tensor) -> torch.Tensor:
        return -((1 - p) ** self.gamma) * torch.log(p)

    def slope(self, p: Any) -> Any:
        g = self.gamma
        return g * np.log(p) * (1 - p) ** (g - 1) - (1 - p) ** g / p


class OGC_GCE(OptimizedGradientClipping):
    """OGC with GCE: ℓ(p) = (1 − p^q)/q, ℓ'(p) = −p^(q−1). Defaults: ``script/cifar10/
    ogc_gce.sh`` (q 0.7)."""

    name = "ogc_gce"
    domains = declare(q=Q)

    def __init__(self, q: float = 0.7, **kwargs: Any) -> None:
        self.q = q
        super().__init__(**kwargs)

    def base(self, p: torch.Tensor) -> torch.Tensor:
        return (1 - p**self.q) / self.q

    def slope(self, p: Any) -> Any:
        return -(p ** (self.q - 1))
