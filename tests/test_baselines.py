"""The literature's robust losses and LogitClip against closed forms written from the papers'
definitions (on probabilities and one-hot labels, not through the implementation's log p_y), and
against the Active-Passive-Losses code's definitions with its clamps."""

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from phuber.core.errors import ConfigError
from phuber.datasets.noise import transition_matrix
from phuber.losses.forward import ForwardCorrectedCrossEntropy
from phuber.losses.logit_clip import LogitClip
from phuber.losses.paper import CrossEntropy
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
from phuber.training.build import build_parts

K = 10
SYMMETRIC_T = transition_matrix("symmetric", K, 0.4)
PAIRFLIP_T = transition_matrix("pairflip", K, 0.3)


def reverse_ce(p: torch.Tensor, onehot: torch.Tensor, A: float) -> torch.Tensor:
    """−Σ_k p_k log y_k with log 0 := A."""
    log_y = torch.where(onehot > 0, torch.zeros_like(p), torch.full_like(p, A))
    return -(p * log_y).sum(1)


def nce(p: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    return (onehot * -p.log()).sum(1) / (-p.log()).sum(1)


# name → (our loss, its closed form as a function of p (N, K) and the one-hot labels)
CASES = {
    "mae": (MeanAbsoluteError(scale=1.5), lambda p, y: 1.5 * (p - y).abs().sum(1)),
    "sce": (
        SymmetricCrossEntropy(alpha=0.1, beta=1.0, A=-4.0),
        lambda p, y: 0.1 * -(y * p.log()).sum(1) + 1.0 * reverse_ce(p, y, -4.0),
    ),
    "sce_cifar100": (
        SymmetricCrossEntropy(alpha=6.0, beta=0.1, A=-4.0),
        lambda p, y: 6.0 * -(y * p.log()).sum(1) + 0.1 * reverse_ce(p, y, -4.0),
    ),
    "nce_rce": (
        NormalizedCEReverseCE(alpha=1.0, beta=10.0, A=-9.0),
        lambda p, y: nce(p, y) + 10.0 * reverse_ce(p, y, -9.0),
    ),
    "nce_mae": (
        NormalizedCEMeanAbsoluteError(alpha=10.0, beta=1.0),
        lambda p, y: 10.0 * nce(p, y) + (1 - (p * y).sum(1)),
    ),
    "agce": (
        AsymmetricGeneralizedCrossEntropy(a=0.6, q=0.6),
        lambda p, y: ((0.6 + 1) ** 0.6 - (0.6 + (p * y).sum(1)) ** 0.6) / 0.6,
    ),
    "agce_q_above_1": (
        AsymmetricGeneralizedCrossEntropy(a=6, q=1.5),
        lambda p, y: (7**1.5 - (6 + (p * y).sum(1)) ** 1.5) / 1.5,
    ),
    "taylor_ce_1": (TaylorCrossEntropy(order=1), lambda p, y: 1 - (p * y).sum(1)),
    "taylor_ce_4": (
        TaylorCrossEntropy(order=4),
        lambda p, y: sum((1 - (p * y).sum(1)) ** k / k for k in range(1, 5)),
    ),
    # The default, as the Active-Passive-Losses code (loss.py, FocalLoss at 04bce53):
    # pt = Variable(logpt.data.exp()): the weight (1 − p_y)^γ is a constant for the gradient.
    "focal": (
        FocalLoss(gamma=0.5),
        lambda p, y: -((1 - (p * y).sum(1)).detach() ** 0.5) * (p * y).sum(1).log(),
    ),
    "focal_gamma_2": (
        FocalLoss(gamma=2.0),
        lambda p, y: -((1 - (p * y).sum(1)).detach() ** 2) * (p * y).sum(1).log(),
    ),
    # Lin et al.'s function, differentiated through its weight.
    "focal_differentiated": (
        FocalLoss(gamma=0.5, detach_weight=False),
        lambda p, y: -((1 - (p * y).sum(1)) ** 0.5) * (p * y).sum(1).log(),
    ),
    "bootstrap_soft": (
        Bootstrapping(beta=0.95, mode="soft"),
        lambda p, y: -((0.95 * y + 0.05 * p) * p.log()).sum(1),
    ),
    "bootstrap_hard": (
        Bootstrapping(beta=0.8, mode="hard"),
        lambda p, y: -((0.8 * y + 0.2 * F.one_hot(p.argmax(1), K)) * p.log()).sum(1),
    ),
    "forward_symmetric": (
        ForwardCorrectedCrossEntropy(SYMMETRIC_T),
        lambda p, y: -((p @ torch.from_numpy(SYMMETRIC_T)) * y).sum(1).log(),
    ),
    "forward_pairflip": (
        ForwardCorrectedCrossEntropy(PAIRFLIP_T),
        lambda p, y: -((p @ torch.from_numpy(PAIRFLIP_T)) * y).sum(1).log(),
    ),
}


def batch(n: int = 64, scale: float = 3.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(n, K, generator=gen, dtype=torch.float64)
    return logits, torch.randint(0, K, (n,), generator=gen)


@pytest.mark.parametrize("name", list(CASES))
def test_values_and_gradients_match_closed_form(name):
    loss, closed_form = CASES[name]
    loss.reduction = "none"
    loss.double()  # the forward correction's matrix, for a float64 comparison
    logits, targets = batch()
    ours_in = logits.clone().requires_grad_()
    ours = loss(ours_in, targets)
    ref_in = logits.clone().requires_grad_()
    p = ref_in.exp() / ref_in.exp().sum(1, keepdim=True)
    reference = closed_form(p, F.one_hot(targets, K).double())
    torch.testing.assert_close(ours, reference, rtol=1e-6, atol=1e-6)
    weights = torch.rand(len(targets), dtype=torch.float64)  # a generic upstream gradient
    (ours_grad,) = torch.autograd.grad((ours * weights).sum(), ours_in)
    (ref_grad,) = torch.autograd.grad((reference * weights).sum(), ref_in)
    torch.testing.assert_close(ours_grad, ref_grad, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", list(CASES))
def test_finite_for_extreme_float32_and_bf16_logits(name):
    loss, _ = CASES[name]
    loss.reduction, loss = "mean", loss.float()
    big = torch.tensor([[1e4, -1e4] + [0.0] * (K - 2), [-1e4, 1e4] + [0.0] * (K - 2)])
    targets = torch.tensor([0, 0])
    for logits in (big, big.bfloat16(), 50 * torch.randn(8, K).bfloat16()):
        logits = logits.clone().requires_grad_()
        t = targets if len(logits) == 2 else torch.arange(8) % K
        value = loss(logits, t)
        (grad,) = torch.autograd.grad(value, logits)
        assert value.dtype == torch.float32 and torch.isfinite(value)
        assert torch.isfinite(grad).all()


# The Active-Passive-Losses code's definitions (HanxunH/Active-Passive-Losses, loss.py), with its
# clamps: p clamped to [1e-7, 1] and the one-hot label to [1e-4, 1] in the RCE term.
def apl_rce(logits, y, scale=1.0):
    p = F.softmax(logits, 1).clamp(1e-7, 1.0)
    label = F.one_hot(y, K).to(p.dtype).clamp(1e-4, 1.0)
    return scale * -(p * label.log()).sum(1)


def apl_nce(logits, y, scale=1.0):
    log_p = F.log_softmax(logits, 1)
    return scale * -(F.one_hot(y, K) * log_p).sum(1) / -log_p.sum(1)


def apl_mae(logits, y, scale=1.0):
    return scale * (1.0 - (F.one_hot(y, K) * F.softmax(logits, 1)).sum(1))


APL_A = math.log(1e-4)


@pytest.mark.parametrize("scale", [1.0, 40.0])
def test_against_active_passive_losses_code(scale):
    """Where no probability is below 1e-7 the definitions agree exactly; where some are (logits
    spread by 40), the code's clamp adds its floor, −A·(K − 1)·1e-7 at most per example."""
    logits, y = batch(scale=scale, seed=1)
    none = {"reduction": "none"}
    sce = SymmetricCrossEntropy(alpha=0.1, beta=1.0, A=APL_A, **none).double()(logits, y)
    nce_rce = NormalizedCEReverseCE(alpha=1.0, beta=1.0, **none)(logits, y)
    nce_mae = NormalizedCEMeanAbsoluteError(alpha=1.0, beta=2.0, **none)(logits, y)
    mae = MeanAbsoluteError(scale=0.5, **none)(logits, y)
    code_sce = 0.1 * F.cross_entropy(logits, y, reduction="none") + apl_rce(logits, y)
    code_nce_rce = apl_nce(logits, y) + apl_rce(logits, y)
    torch.testing.assert_close(nce_mae, apl_nce(logits, y) + apl_mae(logits, y, scale=2.0))
    torch.testing.assert_close(mae, apl_mae(logits, y, scale=1.0))  # theirs = ours at scale/2
    underflow = (F.softmax(logits, 1) < 1e-7).any(1)
    assert underflow.any() == (scale > 10)
    floor = -APL_A * (K - 1) * 1e-7
    for ours, code in ((sce, code_sce), (nce_rce, code_nce_rce)):
        torch.testing.assert_close(ours[~underflow], code[~underflow], rtol=1e-9, atol=1e-9)
        gap = code[underflow] - ours[underflow]
        assert (gap > 0).all() and (gap <= floor * (1 + 1e-6)).all()


def test_focal_where_p_rounds_to_1():
    """p_y rounds to 1. The reference code's form (detached weight) has gradient 0 there, as ours
    by default; the differentiated form's (1 − p)^0.5 has an infinite slope, NaN if computed as
    written: ours floors 1 − p and stays finite."""
    logits = torch.tensor([[40.0, 0.0, 0.0]], requires_grad=True)
    y = torch.tensor([0])
    log_p = F.log_softmax(logits, 1).gather(1, y[:, None])
    apl = (-((1 - log_p.exp().detach()) ** 0.5) * log_p).sum()  # pt = Variable(logpt.data.exp())
    (apl_grad,) = torch.autograd.grad(apl, logits, retain_graph=True)
    assert torch.isfinite(apl_grad).all() and apl_grad.abs().max() < 1e-12
    differentiated = (-((1 - log_p.exp()) ** 0.5) * log_p).sum()
    assert torch.isnan(torch.autograd.grad(differentiated, logits)[0]).any()
    for detach in (True, False):
        loss = FocalLoss(gamma=0.5, detach_weight=detach)
        (grad,) = torch.autograd.grad(loss(logits, y), logits)
        assert torch.isfinite(grad).all() and grad.abs().max() < 1e-12


def test_focal_gradient_ratio_of_the_two_forms():
    """Where p_y is moderate, the differentiated form's gradient exceeds the detached one's,
    by at most the factor 1 + γ (Lin et al.'s derivative: an extra γ·p·log p/(1 − p) term)."""
    logits, y = batch(scale=1.0)
    grads = []
    for detach in (True, False):
        x = logits.clone().requires_grad_()
        loss = FocalLoss(gamma=2.0, detach_weight=detach, reduction="sum").double()
        grads.append(torch.autograd.grad(loss(x, y), x)[0].gather(1, y[:, None]))
    ratio = grads[1] / grads[0]
    assert (ratio > 1).all() and (ratio <= 3 + 1e-9).all()


def test_forward_with_identity_is_cross_entropy_and_uses_the_runs_matrix(tiny_cfg):
    logits, y = batch()
    identity = ForwardCorrectedCrossEntropy(np.eye(K)).double()
    torch.testing.assert_close(identity(logits, y), CrossEntropy()(logits, y))
    noise = ("dataset.train.noise_type=pairflip", "dataset.train.corrupt_prob=0.3")
    cfg = tiny_cfg("loss=forward", *noise)
    loss_fn = build_parts(cfg).loss_fn
    torch.testing.assert_close(loss_fn.log_transition.exp().double(), torch.from_numpy(PAIRFLIP_T))


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: MeanAbsoluteError(scale=0), r"scale must be > 0"),
        (lambda: SymmetricCrossEntropy(A=0.5), r"A must be < 0"),
        (lambda: SymmetricCrossEntropy(alpha=-1), r"alpha must be >= 0"),
        (lambda: NormalizedCEReverseCE(beta=math.nan), r"beta must be >= 0"),
        (lambda: AsymmetricGeneralizedCrossEntropy(a=0), r"a must be > 0"),
        (lambda: AsymmetricGeneralizedCrossEntropy(q=-1), r"q must be > 0"),
        (lambda: TaylorCrossEntropy(order=0), r"order must be an integer >= 1"),
        (lambda: TaylorCrossEntropy(order=2.5), r"order must be an integer >= 1"),
        (lambda: FocalLoss(gamma=-0.5), r"gamma must be >= 0"),
        (lambda: Bootstrapping(beta=1.5), r"beta must be in \[0, 1\]"),
        (lambda: Bootstrapping(mode="medium"), r"mode must be 'soft' or 'hard'"),
        (lambda: ForwardCorrectedCrossEntropy(np.ones((3, 3))), r"row-stochastic"),
        (lambda: ForwardCorrectedCrossEntropy(np.eye(3)[:2]), r"row-stochastic"),
        (lambda: LogitClip(CrossEntropy(), 0), r"tau must be in \(0, 8.50706e\+37\]"),
        (lambda: LogitClip(CrossEntropy(), math.inf), r"tau must be in \(0, 8.50706e\+37\]"),
    ],
)
def test_invalid_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# -- LogitClip --------------------------------------------------------------------------------


def test_logit_clip_follows_the_papers_definition():
    """z ↦ z · min(1, 1/(τ‖z‖)): norms end at most 1/τ, smaller vectors are untouched, the
    prediction is unchanged, and the map is continuous at ‖z‖ = 1/τ."""
    tau = 0.5
    clip = LogitClip(CrossEntropy(), tau)
    direction = F.normalize(torch.randn(6, K, dtype=torch.float64), dim=1)
    direction[4] = direction[3]
    norms = torch.tensor([0.0, 0.3, 1.0, 2.0 - 1e-9, 2.0 + 1e-9, 1e4], dtype=torch.float64)
    z = direction * norms[:, None]
    clipped = clip.clip(z)
    expected = z * torch.clamp(1 / (tau * norms), max=1.0)[:, None].nan_to_num(1.0)
    torch.testing.assert_close(clipped.double(), expected, rtol=1e-6, atol=1e-6)
    assert (clipped.norm(dim=1) <= 1 / tau + 1e-5).all()
    torch.testing.assert_close(clipped[:4].double(), z[:4], rtol=1e-6, atol=1e-7)
    assert (clipped[1:].argmax(1) == z[1:].argmax(1)).all()
    assert (clipped[3] - clipped[4]).norm() < 1e-6  # continuous at the bound


def test_logit_clip_differs_from_the_authors_code_between_tau_and_one_over_tau():
    """The published code rescales to norm 1/τ where ‖z‖ > τ: for τ = 0.5 a logit vector of norm
    1 is scaled up to norm 2 there, and kept by the paper's definition."""
    tau = 0.5
    z = F.normalize(torch.randn(1, K), dim=1)  # norm 1: τ < 1 < 1/τ

    def authors_code(x):
        norms = x.norm(dim=1, keepdim=True) + 1e-7
        return torch.where(norms > tau, x / norms / tau, x)

    assert authors_code(z).norm() == pytest.approx(2.0, rel=1e-5)
    torch.testing.assert_close(LogitClip(CrossEntropy(), tau).clip(z), z)


def test_logit_clip_loss_and_gradient_are_those_of_the_clipped_logits():
    logits, y = batch(scale=5.0)
    logits = logits.float().requires_grad_()
    wrapped = LogitClip(CrossEntropy(), 0.2)
    (grad,) = torch.autograd.grad(wrapped(logits, y), logits)
    ref_in = logits.detach().clone().requires_grad_()
    norms = ref_in.norm(dim=1, keepdim=True)
    reference = F.cross_entropy(ref_in * torch.clamp(5.0 / norms, max=1.0), y)
    (ref_grad,) = torch.autograd.grad(reference, ref_in)
    torch.testing.assert_close(wrapped(logits, y), reference)
    torch.testing.assert_close(grad, ref_grad)
    zero = torch.zeros(2, K, requires_grad=True)
    (grad0,) = torch.autograd.grad(wrapped(zero, y[:2]), zero)
    assert torch.isfinite(grad0).all()


def test_logit_clip_from_the_config_wraps_the_loss(tiny_cfg):
    parts = build_parts(tiny_cfg("loss=gce", "hparams.logit_clip=0.25"))
    assert isinstance(parts.loss_fn, LogitClip) and parts.loss_fn.tau == 0.25
    assert parts.loss_fn.loss_fn.q == 0.7
    with pytest.raises(ConfigError, match=r"hparams.logit_clip=-1: must be in \(0, 8.50706e\+37\]"):
        build_parts(tiny_cfg("hparams.logit_clip=-1"))
