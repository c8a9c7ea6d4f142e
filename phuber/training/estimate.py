"""Forward correction with an estimated T (Patrini et al., CVPR 2017, the paper's main row):
T estimated from the predictions of a model trained on the same noisy training set, with their
anchor-point estimator (giorgiop/loss-correction, ``models.py``, ``NoiseEstimator``)."""

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from torch import nn

from phuber.core.errors import ConfigError
from phuber.datasets.labels import sha256
from phuber.training.checkpoint import check_fields, load_checkpoint, load_model_state

log = logging.getLogger(__name__)
KEY = "loss.estimate_from"  # the config key that names the checkpoint T is estimated from


def anchor_transition(probs: np.ndarray, percentile: float | None = 97) -> np.ndarray:
    """T estimated from predicted probabilities ``probs`` (N × K): row i is the prediction for
    class i's anchor point, the example whose predicted probability of i is the highest below
    the ``percentile``-th percentile of that column (``np.percentile``'s 'higher' value; those at
    or above it are left out, their ``filter_outlier``), or the highest (``percentile=None``, as
    they do on CIFAR-100); rows normalised to sum to 1. Each column is judged on the predictions
    as given: the reference zeroes the left-out entries in place (a NumPy view), which can change
    a later row; we do not."""
    k = probs.shape[1]
    rows = np.empty((k, k))
    for i in range(k):
        column = probs[:, i]
        if percentile is not None:
            threshold = np.percentile(column, percentile, method="higher")
            column = np.where(column >= threshold, 0.0, column)
        rows[i] = probs[int(np.argmax(column))]
    return rows / rows.sum(1, keepdims=True)


@dataclass
class Estimate:
    """An estimated T and where it came from, as ``metrics.json`` records them."""

    matrix: np.ndarray
    source: str
    source_sha256: str

    def record(self, true: np.ndarray | None, realized: np.ndarray) -> dict[str, Any]:
        """The estimate and its error against the true T (where the noise model gives it) and
        against the realized T of the training labels."""
        out: dict[str, Any] = {
            "estimated_transition": self.matrix.round(6).tolist(),
            "estimated_from": self.source,
            "estimated_from_sha256": self.source_sha256,
            "estimation_error_realized": _errors(self.matrix, realized),
        }
        if true is not None:
            out["estimation_error_true"] = _errors(self.matrix, true)
        return out


def _errors(estimate: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    difference = np.abs(estimate - reference)
    return {"mean_abs": float(difference.mean()), "max_abs": float(difference.max())}


def source_settings(path: str) -> dict[str, Any]:
    """The recorded identity of the checkpoint a T is estimated from (for the run's identity:
    forward runs estimated from replicates of one run are replicates too)."""
    state = load_checkpoint(path, key=KEY)
    identity = state.get("identity")
    if not isinstance(identity, dict) or not isinstance(identity.get("settings"), dict):
        raise ConfigError(
            f"loss.estimate_from={path!r}: records no run identity; estimate from a checkpoint "
            f"written by train.py (e.g. …/final_model.pt of a loss=ce run)"
        )
    return identity["settings"]


def estimate(
    forward: nn.Module,
    images: torch.Tensor,
    transform: Any,
    labels_sha256: str,
    batch_size: int,
    info: Any,
) -> Estimate:
    """Estimate T for ``forward`` (a ``ForwardCorrectedCrossEntropy`` with ``estimate_from``)
    from the checkpoint's model's predictions on the training ``images``, and give it to it. The
    checkpoint must come from a run on the same training labels (the SHA-256 of their
    ``noisy_labels.npz``), else a ``ConfigError`` says so."""
    from phuber.training.build import build

    path = forward.estimate_from
    state = load_checkpoint(path, key=KEY)
    theirs = state.get("labels_sha256")
    if theirs != labels_sha256:
        said = "records no training labels" if theirs is None else "trained on other labels"
        raise ConfigError(
            f"loss.estimate_from={path!r}: {said} (its noisy_labels.npz SHA-256 {theirs}, this "
            f"run's {labels_sha256}); estimate from a model trained on this run's noisy labels"
        )
    check_fields(state, path, {"config": (dict,)}, KEY)
    model = build(
        OmegaConf.create(state["config"].get("model", {})),
        "loss.estimate_from (its model)",
        in_channels=info.channels,
    )
    load_model_state(model, state["model"], path, KEY)
    model.to(images.device).eval()
    with torch.inference_mode():
        probs = torch.cat(
            [
                torch.softmax(model(transform(images[i : i + batch_size])).float(), 1)
                for i in range(0, len(images), batch_size)
            ]
        )
    matrix = anchor_transition(probs.double().cpu().numpy(), forward.anchor_percentile)
    forward.use_transition(matrix)
    log.info(f"Estimated T from {path} (anchor percentile {forward.anchor_percentile})")
    return Estimate(matrix, str(path), sha256(path))


def forward_to_estimate(loss_fn: nn.Module) -> nn.Module | None:
    """The forward-corrected loss in ``loss_fn`` whose T is to be estimated, if there is one."""
    return next((m for m in loss_fn.modules() if getattr(m, "estimate_from", None)), None)
