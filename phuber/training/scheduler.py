"""Learning-rate schedules the paper uses that torch lacks."""

import torch
from torch.optim.lr_scheduler import LRScheduler

from phuber.core.declared import Declared, declare
from phuber.core.domains import Flag, Integer, Real


class ExponentialDecayLR(Declared, LRScheduler):
    """Keras' ExponentialDecay: lr = lr₀ · decay_rate^(step / decay_steps).

    With ``staircase=True`` the exponent is an integer division. Step it once per optimiser step
    (``hparams.scheduler_interval=step`` tells the training loop so). Written in closed form
    rather than as a ``LambdaLR``, so its state dict holds plain numbers and loads with
    ``weights_only=True``.
    """

    domains = declare(
        decay_steps=Integer(1),
        decay_rate=Real(0, low_open=True, why="the factor per decay_steps"),
        staircase=Flag(),
        last_epoch=Integer(-1),
    )

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        decay_steps: int,
        decay_rate: float,
        staircase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        exponent = self.last_epoch / self.decay_steps
        if self.staircase:
            exponent = self.last_epoch // self.decay_steps
        return [base_lr * self.decay_rate**exponent for base_lr in self.base_lrs]


class ConstantLR(LRScheduler):
    """Keeps the learning rate constant, for runs that want no schedule. The earlier
    reproduction's configs may name it (``phuber.scheduler.ConstantLR``), so it stays."""

    def get_lr(self) -> list[float]:
        return list(self.base_lrs)
