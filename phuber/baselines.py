"""The robust-loss baselines under the names configs and checkpoints use
(``phuber.baselines.SymmetricCrossEntropy``); they live in ``phuber.losses``."""

from phuber.losses.forward import ForwardCorrectedCrossEntropy
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
    "FocalLoss",
    "ForwardCorrectedCrossEntropy",
    "MeanAbsoluteError",
    "NormalizedCEMeanAbsoluteError",
    "NormalizedCEReverseCE",
    "SymmetricCrossEntropy",
    "TaylorCrossEntropy",
]
