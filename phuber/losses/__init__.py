"""Every loss phuber trains with: the paper's (``paper``), the robust-loss baselines
(``robust``), the forward correction (``forward``) and LogitClip around any of them
(``logit_clip``), on the public bases ``Loss`` and ``TargetProbLoss`` (``base``)."""

from phuber.losses.base import Loss, Reduction, TargetProbLoss
from phuber.losses.forward import ForwardCorrectedCrossEntropy, attach_transition
from phuber.losses.logit_clip import LogitClip
from phuber.losses.paper import (
    CrossEntropy,
    GeneralizedCrossEntropy,
    PHuberCrossEntropy,
    PHuberGeneralizedCrossEntropy,
    Unhinged,
)
from phuber.losses.robust import (
    AsymmetricGeneralizedCrossEntropy,
    Bootstrapping,
    FocalLoss,
    MeanAbsoluteError,
    NormalizedCEMeanAbsoluteError,
    NormalizedCEReverseCE,
    SymmetricCrossEntropy,
    TaylorCrossEntropy,
)

__all__ = [
    "AsymmetricGeneralizedCrossEntropy",
    "Bootstrapping",
    "CrossEntropy",
    "FocalLoss",
    "ForwardCorrectedCrossEntropy",
    "GeneralizedCrossEntropy",
    "LogitClip",
    "Loss",
    "MeanAbsoluteError",
    "NormalizedCEMeanAbsoluteError",
    "NormalizedCEReverseCE",
    "PHuberCrossEntropy",
    "PHuberGeneralizedCrossEntropy",
    "Reduction",
    "SymmetricCrossEntropy",
    "TargetProbLoss",
    "TaylorCrossEntropy",
    "Unhinged",
    "attach_transition",
]
