"""Forward loss correction (Patrini et al., CVPR 2017): cross-entropy through the labels' noise,
with T the true transition matrix, one the config gives, or one estimated from a first model."""

import numpy as np
import torch

from phuber.core.declared import declare
from phuber.core.domains import File, Matrix, Real
from phuber.core.errors import ConfigError, InvalidValue
from phuber.losses.base import Loss, Reduction


class ForwardCorrectedCrossEntropy(Loss):
    """Forward loss correction (Patrini et al., CVPR 2017): ℓ = −log (Tᵀp)_y = −log Σ_k p_k T_ky,
    with T_ij = P(given label j | true label i).

    By default T is the training set's true T, the "oracle" forward correction of the paper:
    the builder passes the matrix of the run's noise model (or a ``transition`` the config
    gives), and for noise known only with the data (human labels, instance-dependent noise) the
    trainer passes the data's class-level matrix (``use_transition``). With ``estimate_from`` (a
    checkpoint of a model trained on the same noisy labels) T is estimated from that model's
    predictions as the paper's main row does (``phuber.estimate``: anchor points at the
    ``anchor_percentile``-th percentile of each class's predicted probability; null: the
    maximum). Computed as −logsumexp_k(log p_k + log T_ky), finite for any logits; the model's
    p estimates the clean class distribution.
    """

    name = "forward"
    domains = declare(
        transition=Matrix(nullable=True, null_means="the run's noise model's"),
        estimate_from=File(
            "checkpoint written by train.py", nullable=True, null_means="T is not estimated"
        ),
        anchor_percentile=Real(0, 100, low_open=True, nullable=True, null_means="the maximum"),
    )

    def __init__(
        self,
        transition: np.ndarray | list | None = None,
        estimate_from: str | None = None,
        anchor_percentile: float | None = 97,
        reduction: Reduction = "mean",
    ):
        super().__init__(reduction)
        self.register_buffer("log_transition", None, persistent=False)
        if estimate_from is not None and transition is not None:
            raise InvalidValue("transition", "given", "null with estimate_from (T is estimated)")
        self.estimate_from = estimate_from
        self.anchor_percentile = anchor_percentile
        if transition is not None:
            self.use_transition(transition)

    def use_transition(self, transition: np.ndarray | list) -> None:
        """Correct through ``transition`` (checked as the ``transition`` parameter is)."""
        try:
            matrix = self.domains["transition"].check(transition)
        except ValueError as err:
            raise InvalidValue("transition", np.shape(transition), str(err)) from None
        with np.errstate(divide="ignore"):
            log_t = torch.from_numpy(np.log(matrix)).float()
        device = self.log_transition.device if self.log_transition is not None else None
        self.log_transition = log_t.to(device)

    def per_example(self, log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.log_transition is None:
            raise RuntimeError("ForwardCorrectedCrossEntropy has no transition matrix yet")
        log_t_y = self.log_transition[:, targets].T  # (N, K): log T_ky for each example's y
        return -torch.logsumexp(log_probs + log_t_y, dim=1)


def attach_transition(loss_fn: torch.nn.Module, transition: np.ndarray | None) -> bool:
    """Give each forward-corrected loss in ``loss_fn`` built without a matrix (noise known only
    with the data) the data's; ``transition`` is ``None`` when no training labels were loaded.
    Whether any loss took it."""
    attached = False
    for module in loss_fn.modules():
        waiting = isinstance(module, ForwardCorrectedCrossEntropy) and module.estimate_from is None
        if waiting and module.log_transition is None:
            if transition is None:
                raise ConfigError(
                    "loss=forward: this noise is known only from the training labels; load them "
                    "with dataset.train.use=true"
                )
            module.use_transition(transition)
            attached = True
    return attached
