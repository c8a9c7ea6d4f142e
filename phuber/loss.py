"""The paper's losses under the names configs and checkpoints use (``phuber.loss.CrossEntropy``,
the earlier reproduction's too); they live in ``phuber.losses``."""

from phuber.losses.base import Loss, TargetProbLoss
from phuber.losses.base import TargetProbLoss as _TargetProbLoss
from phuber.losses.paper import (
    CrossEntropy,
    GeneralizedCrossEntropy,
    PHuberCrossEntropy,
    PHuberGeneralizedCrossEntropy,
    Unhinged,
)

__all__ = [
    "CrossEntropy",
    "GeneralizedCrossEntropy",
    "Loss",
    "PHuberCrossEntropy",
    "PHuberGeneralizedCrossEntropy",
    "TargetProbLoss",
    "Unhinged",
    "_TargetProbLoss",
]
