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
"""

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

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
