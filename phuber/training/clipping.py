"""Gradient clipping in three forms (``hparams.grad_clip_mode``), all at ``grad_clip_max_norm`` = c.

- ``global`` (the earlier reproduction's, the paper's "CE + clipping"): the mini-batch's averaged
  parameter gradient is rescaled to norm ≤ c.
- ``per_example``: each example's parameter gradient is rescaled to norm ≤ c before averaging, the
  form the paper's analysis of clipping is about. Per-example gradients come from
  ``torch.func.vmap(grad(...))``; models with BatchNorm are refused, since an example's gradient
  through batch statistics depends on the rest of the batch.
- ``logit``: each example's gradient with respect to its logits is rescaled to norm ≤ c, which then
  flows back through the network. Cheap, works with any model, and is the form closest to PHuber:
  both bound how hard one example can push on the logits.

Clipping the model's prediction instead, ``LogitClip`` (``hparams.logit_clip``) wraps the loss.
"""

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from phuber.core.declared import Declared, declare
from phuber.core.domains import Choice, Real
from phuber.core.errors import ConfigError

CLIP_MODES = ("global", "per_example", "logit")


def has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def clip_logit_gradients(logits: torch.Tensor, max_norm: float, clipped: torch.Tensor) -> None:
    """Rescale each row of the gradient reaching ``logits`` to norm ≤ ``max_norm``, for a loss
    that averages over the batch (row i then carries 1/N of example i's gradient). Adds the number
    of clipped examples to ``clipped`` (a device tensor: no host sync)."""
    n = logits.shape[0]

    def hook(g: torch.Tensor) -> torch.Tensor:
        norms = g.norm(dim=1, keepdim=True) * n  # per-example gradient norms
        scale = (max_norm / (norms + 1e-12)).clamp(max=1.0)
        clipped.add_((scale < 1).sum())
        return g * scale

    logits.register_hook(hook)


def per_example_clipped_backward(
    model: nn.Module,
    loss_fn: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    max_norm: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Set each parameter's ``.grad`` to the mean of the per-example gradients, each rescaled to
    norm ≤ ``max_norm``. Returns the norm of the unclipped mean gradient and the number of clipped
    examples, as device tensors."""
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    buffers = dict(model.named_buffers())

    def example_loss(p: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return loss_fn(functional_call(model, (p, buffers), (x[None],)), y[None])

    grads = vmap(grad(example_loss), in_dims=(None, 0, 0))(params, images, labels)
    norms = torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in grads.values()))
    scale = (max_norm / (norms + 1e-12)).clamp(max=1.0)
    unclipped_sq = torch.zeros((), device=images.device)
    for name, param in model.named_parameters():
        if name in grads:
            g = grads[name]
            unclipped_sq = unclipped_sq + g.mean(0).pow(2).sum()
            param.grad = (g * scale.view(-1, *[1] * (g.dim() - 1))).mean(0)
    return unclipped_sq.sqrt(), (scale < 1).sum()


class GradientStep(Declared):
    """The one entry point for every mode: ``step(images, labels)`` computes logits and loss and
    leaves the (clipped) gradient in the parameters' ``.grad``; it returns the logits, the loss,
    the gradient norm before clipping and the number of clipped examples (device tensors).

    Building it refuses a mode the run cannot do correctly, before any data is read.
    """

    domains = declare(
        mode=Choice(CLIP_MODES),
        max_norm=Real(0, low_open=True, nullable=True, null_means="no clipping"),
    )

    def __init__(
        self,
        mode: str,
        max_norm: float | None,
        model: nn.Module,
        forward: Callable[[torch.Tensor], torch.Tensor],
        loss_fn: nn.Module,
        optimizer: torch.optim.Optimizer,
        precision: Any,  # phuber.runtime.Precision
    ) -> None:
        key = f"hparams.grad_clip_mode={mode!r}"
        if mode != "global" and max_norm is None:
            raise ConfigError(f"{key}: must be used with a hparams.grad_clip_max_norm")
        if mode == "per_example" and has_batch_norm(model):
            raise ConfigError(
                f"{key}: per-example gradients are undefined through BatchNorm (an example's "
                f"gradient depends on the whole batch) and {type(model).__name__} has "
                f"BatchNorm; use grad_clip_mode=logit, or model=lenet"
            )
        if mode == "per_example" and (
            getattr(loss_fn, "stateful", False) or getattr(loss_fn, "penalizes", False)
        ):
            raise ConfigError(
                f"{key}: the loss ({type(loss_fn).__name__}) keeps state across steps or adds a "
                f"term on the parameters, which a per-example gradient cannot hold (it would "
                f"update once per example); use grad_clip_mode=global or logit"
            )
        if mode == "per_example" and precision.dtype is not None:
            raise ConfigError(f"{key} runs in float32: set mixed_precision=false")
        if mode == "logit" and precision.dtype == torch.float16:
            raise ConfigError(f"{key} needs bf16 or float32, not fp16 loss scaling")
        self.mode, self.max_norm = mode, max_norm
        self.model, self.forward, self.loss_fn = model, forward, loss_fn
        self.optimizer, self.precision = optimizer, precision
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.penalizes = getattr(loss_fn, "penalizes", False)

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        n_clipped = torch.zeros((), device=images.device, dtype=torch.long)
        self.optimizer.zero_grad(set_to_none=True)
        if self.mode == "per_example":
            with torch.no_grad():
                logits = self.forward(images)
                loss = self.loss_fn(logits, labels)
            grad_norm, n_clipped = per_example_clipped_backward(
                self.model, self.loss_fn, images, labels, self.max_norm
            )
            return logits, loss, grad_norm.double(), n_clipped
        with self.precision.autocast():
            logits = self.forward(images)
            if self.mode == "logit":
                clip_logit_gradients(logits, self.max_norm, n_clipped)
            loss = self.loss_fn(logits, labels)
            penalty = self.loss_fn.penalty(self.params) if self.penalizes else None
            if penalty is not None:
                loss = loss + penalty
        self.precision.scaler.scale(loss).backward()
        self.precision.scaler.unscale_(self.optimizer)
        if self.max_norm is None or self.mode != "global":
            grads = [p.grad for p in self.params if p.grad is not None]
            return logits, loss, torch.nn.utils.get_total_norm(grads).double(), n_clipped
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.max_norm)
        return logits, loss, norm.double(), n_clipped
