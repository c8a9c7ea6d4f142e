"""Every loss phuber trains with: the paper's (``paper``), the robust-loss baselines
(``robust``), the forward correction (``forward``), the methods of 2020–2025 (``ogc``,
``negative``, ``divergence``, ``eps_softmax``, ``smoothing``) and LogitClip around any of them
(``logit_clip``), on the public bases ``Loss`` and ``TargetProbLoss`` (``base``)."""

from phuber.losses.base import Loss, Reduction, RunPlan, StepContext, TargetProbLoss
from phuber.losses.divergence import JensenShannon
from phuber.losses.eps_softmax import ECEandMAE, EFLandMAE
from phuber.losses.forward import ForwardCorrectedCrossEntropy, attach_transition
from phuber.losses.logit_clip import LogitClip
from phuber.losses.negative import NCEandNNCE, NFLandNNFL
from phuber.losses.ogc import OGC_CE, OGC_FL, OGC_GCE, OptimizedGradientClipping
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
from phuber.losses.smoothing import GeneralizedLabelSmoothing, NegativeLabelSmoothing

__all__ = [
    "OGC_CE",
    "OGC_FL",
    "OGC_GCE",
    "AsymmetricGeneralizedCrossEntropy",
    "Bootstrapping",
    "CrossEntropy",
    "ECEandMAE",
    "EFLandMAE",
    "FocalLoss",
    "ForwardCorrectedCrossEntropy",
    "GeneralizedCrossEntropy",
    "GeneralizedLabelSmoothing",
    "JensenShannon",
    "LogitClip",
    "Loss",
    "MeanAbsoluteError",
    "NCEandNNCE",
    "NFLandNNFL",
    "NegativeLabelSmoothing",
    "NormalizedCEMeanAbsoluteError",
    "NormalizedCEReverseCE",
    "OptimizedGradientClipping",
    "PHuberCrossEntropy",
    "PHuberGeneralizedCrossEntropy",
    "Reduction",
    "RunPlan",
    "StepContext",
    "SymmetricCrossEntropy",
    "TargetProbLoss",
    "TaylorCrossEntropy",
    "Unhinged",
    "attach_transition",
]
