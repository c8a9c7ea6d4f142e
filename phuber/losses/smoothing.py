"""Label smoothing against label noise (Lukasik et al., ICML 2020) and its generalisation with a
negative rate, negative label smoothing (Wei et al., ICML 2022; code:
UCSC-REAL/negative-label-smoothing, ``loss.py``, ``loss_gls``)."""

import torch

from phuber.core.declared import declare
from phuber.core.domains import Integer, Real
from phuber.core.errors import InvalidValue
from phuber.losses.base import Loss, Reduction, RunPlan, target_log_prob


class GeneralizedLabelSmoothing(Loss):
    """ℓ = (1 − r)·(−log p_y) + r·(−(1/K) Σ_k log p_k): cross-entropy against the smoothed label
    (1 − r)·e_y + r/K. r > 0 is label smoothing, r < 0 negative label smoothing; r = 0 is CE.

    ``warmup_epochs``: the first epochs train with CE, as the authors' NLS runs start from a
    CE-trained model (``main_warmup.py``, then ``main_GLS_load.py``); the switch follows the
    epoch the trainer passes (``Loss.context``). Theirs also restarts the learning-rate schedule
    for the second stage; here one schedule spans both. Unbounded for r < 1.
    """

    name = "label_smoothing"
    domains = declare(
        smooth_rate=Real(high=1, high_open=True, why="the label keeps weight 1 − r > 0"),
        warmup_epochs=Integer(0),
    )

    def __init__(
        self, smooth_rate: float = 0.1, warmup_epochs: int = 0, reduction: Reduction = "mean"
    ) -> None:
        super().__init__(reduction)
        self.smooth_rate, self.warmup_epochs = smooth_rate, warmup_epochs

    def check_plan(self, plan: RunPlan) -> None:
        """A warm-up as long as the run would train cross-entropy throughout."""
        if self.warmup_epochs and self.warmup_epochs >= plan.epochs:
            raise InvalidValue(
                "warmup_epochs",
                self.warmup_epochs,
                f"< hparams.epochs={plan.epochs}: its epochs train cross-entropy, so this run "
                f"would be CE throughout; lower it or train longer",
            )

    def per_example(self, log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        ce = -target_log_prob(log_probs, targets)
        epoch = self.context.epoch if self.context is not None else 0  # outside training: 0
        if epoch < self.warmup_epochs:
            return ce
        return (1 - self.smooth_rate) * ce - self.smooth_rate * log_probs.mean(1)

    def extra_repr(self) -> str:
        return f"smooth_rate={self.smooth_rate}, warmup_epochs={self.warmup_epochs}"


class NegativeLabelSmoothing(GeneralizedLabelSmoothing):
    """Negative label smoothing: generalised label smoothing with a rate r < 0, after a CE
    warm-up. Defaults r = −0.2 (one of the paper's candidate rates) and 10 warm-up epochs (half
    of LeNet's recipe; the authors warm up 120 of 220 epochs): our choices, set them per run."""

    name = "nls"
    domains = declare(smooth_rate=Real(high=0, high_open=True, why="negative smoothing"))

    def __init__(
        self, smooth_rate: float = -0.2, warmup_epochs: int = 10, reduction: Reduction = "mean"
    ) -> None:
        super().__init__(smooth_rate, warmup_epochs, reduction)
