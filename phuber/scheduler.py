"""The schedules under the names configs use (``phuber.scheduler.ExponentialDecayLR``, the
earlier reproduction's too); they live in ``phuber.training.scheduler``."""

from phuber.training.scheduler import ConstantLR, ExponentialDecayLR

__all__ = ["ConstantLR", "ExponentialDecayLR"]
