"""The methods of 2020–2025 (OGC, ANL, JS, ε-softmax, label smoothing and NLS) against closed
forms written from their papers and their authors' code (on probabilities and one-hot labels,
with the code's clamps and detached weights, not through our log p_y), and OGC's threshold
against the authors' search, state and resume."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import stopped_and_resumed
from scipy import stats
from torch.nn import functional as F

from phuber.core.errors import ConfigError, InvalidValue
from phuber.losses import (
    OGC_CE,
    OGC_FL,
    OGC_GCE,
    ECEandMAE,
    EFLandMAE,
    GeneralizedLabelSmoothing,
    JensenShannon,
    NCEandNNCE,
    NegativeLabelSmoothing,
    NFLandNNFL,
    StepContext,
)
from phuber.training.build import build_parts

K = 10


def onehot_sum(values: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    return (values * onehot).sum(1)


# ANL (Virusdoll/Active-Negative-Loss, loss.py): NormalizedCrossEntropy,
# NormalizedNegativeCrossEntropy (p clamped to [1e-7, 1], A = −log 1e-7), NormalizedFocalLoss and
# NormalizedNegativeFocalLoss (weights from ``logpt.data``, log p clamped at log 1e-7).
def anl_ce(p, y, alpha, beta, min_prob=1e-7):
    nce = onehot_sum(-p.log(), y) / (-p.log()).sum(1)
    shifted = -math.log(min_prob) + p.clamp(min=min_prob, max=1).log()
    return alpha * nce + beta * (1 - onehot_sum(shifted, y) / shifted.sum(1))


def anl_fl(p, y, alpha, beta, gamma, min_prob=1e-7):
    logp = p.log()
    nfl = onehot_sum(-((1 - logp.detach().exp()) ** gamma) * logp, y)
    nfl = nfl / (-((1 - logp.detach().exp()) ** gamma) * logp).sum(1)
    clamped = logp.clamp(min=math.log(min_prob))
    weight = (1 - clamped.detach().exp()) ** gamma
    focal_y = onehot_sum(-weight * clamped, y)
    big_a = -((1 - min_prob) ** gamma) * math.log(min_prob)
    nnfl = 1 - (big_a - focal_y) / (K * big_a - (-weight * clamped).sum(1))
    return alpha * nfl + beta * nnfl


# GJS (ErikEnglesson/GJS, losses.py, JensenShannonDivergenceWeightedScaled, custom_kl_div).
def js(p, y, pi1):
    m = pi1 * y + (1 - pi1) * p
    log_m = m.clamp(1e-7, 1.0).log()

    def kl(target):  # Σ_k target_k (log target_k − log m_k) where target_k > 0
        terms = target * (target.clamp(min=1e-7).log() - log_m)
        return torch.where(target > 0, terms, torch.zeros_like(terms)).sum(1)

    scale = -1.0 / ((1 - pi1) * math.log(1 - pi1))
    return scale * (pi1 * kl(y) + (1 - pi1) * kl(p))


# ε-softmax (cswjl/eps-softmax @ f81685c, losses.py): m added to the arg max, divided by 1 + m,
# clamped at eps = 1e-8 (``torch.clamp(input, min=self.eps)``; None: the paper's unclamped form);
# MAELoss with scale 2; EFocalLoss's weight from ``logpt.data``.
def eps_prob(p, m, eps=1e-8):
    top = F.one_hot(p.argmax(1), K).double()
    pushed = (p + m * top) / (m + 1)
    return pushed if eps is None else pushed.clamp(min=eps)


def ece_mae(p, y, m, alpha, beta, eps=1e-8):
    return alpha * onehot_sum(-eps_prob(p, m, eps).log(), y) + beta * 2 * (1 - onehot_sum(p, y))


def efl_mae(p, y, m, alpha, beta, gamma, eps=1e-8):
    logpt = onehot_sum(eps_prob(p, m, eps).log(), y)
    efl = -((1 - logpt.detach().exp()) ** gamma) * logpt
    return alpha * efl + beta * 2 * (1 - onehot_sum(p, y))


# Generalised label smoothing (UCSC-REAL/negative-label-smoothing, loss.py, loss_gls, wa 0 wb 1).
def gls(p, y, r):
    return (1 - r) * onehot_sum(-p.log(), y) + r * (-p.log()).mean(1)


CASES = {
    "nce_nnce": (NCEandNNCE(), lambda p, y: anl_ce(p, y, 5.0, 5.0)),
    "nce_nnce_mnist": (NCEandNNCE(alpha=1.0, beta=1.0), lambda p, y: anl_ce(p, y, 1.0, 1.0)),
    "nfl_nnfl": (NFLandNNFL(), lambda p, y: anl_fl(p, y, 5.0, 5.0, 0.5)),
    "js": (JensenShannon(), lambda p, y: js(p, y, 0.7)),
    "js_cifar100": (JensenShannon(pi1=0.3), lambda p, y: js(p, y, 0.3)),
    "ece_mae": (ECEandMAE(), lambda p, y: ece_mae(p, y, 1e5, 0.01, 5.0)),
    "ece_mae_small_m": (ECEandMAE(m=3.0, alpha=1.0), lambda p, y: ece_mae(p, y, 3.0, 1.0, 5.0)),
    "efl_mae": (EFLandMAE(m=3.0), lambda p, y: efl_mae(p, y, 3.0, 0.01, 5.0, 0.1)),
    "ece_mae_unclamped": (
        ECEandMAE(eps=None),
        lambda p, y: ece_mae(p, y, 1e5, 0.01, 5.0, eps=None),
    ),
    "efl_mae_unclamped": (
        EFLandMAE(m=3.0, eps=None),
        lambda p, y: efl_mae(p, y, 3.0, 0.01, 5.0, 0.1, eps=None),
    ),
    "label_smoothing": (GeneralizedLabelSmoothing(), lambda p, y: gls(p, y, 0.1)),
    "nls": (NegativeLabelSmoothing(warmup_epochs=0), lambda p, y: gls(p, y, -0.2)),
}


def batch(n: int = 64, scale: float = 3.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(n, K, generator=gen, dtype=torch.float64)
    targets = torch.randint(0, K, (n,), generator=gen)
    targets[:8] = logits[:8].argmax(1)  # some rows whose label is the arg max (ε-softmax's case)
    return logits, targets


def assert_matches(loss, closed_form, logits, targets, rtol=1e-6):
    loss.reduction = "none"
    ours_in = logits.clone().requires_grad_()
    ours = loss(ours_in, targets)
    ref_in = logits.clone().requires_grad_()
    p = ref_in.exp() / ref_in.exp().sum(1, keepdim=True)
    reference = closed_form(p, F.one_hot(targets, K).double())
    torch.testing.assert_close(ours, reference, rtol=rtol, atol=1e-7)
    weights = torch.rand(len(targets), dtype=torch.float64)  # a generic upstream gradient
    (ours_grad,) = torch.autograd.grad((ours * weights).sum(), ours_in)
    (ref_grad,) = torch.autograd.grad((reference * weights).sum(), ref_in)
    torch.testing.assert_close(ours_grad, ref_grad, rtol=rtol, atol=1e-8)


@pytest.mark.parametrize("name", list(CASES))
def test_values_and_gradients_match_the_authors_code(name):
    loss, closed_form = CASES[name]
    assert_matches(loss, closed_form, *batch())


def test_eps_softmax_clamps_where_the_authors_code_does_by_default():
    """Where p'_y < 1e-8 (an example the model puts confidently in another class, with
    m = 1e5 any p_y below 1e-3 off the arg max), the authors' clamp makes the ε-softmax term
    constant: only MAE's gradient is left. ``eps=null`` keeps the paper's pull there; both
    match the code's closed form (above) with and without its clamp."""
    logits = torch.tensor([[12.0, 0.0, 0.0], [0.0, 12.0, 0.0]], dtype=torch.float64)
    targets = torch.tensor([2, 0])  # p_y ≈ 6e-6: p'_y ≈ 6e-11 < 1e-8
    grads = {}
    for eps in (1e-8, None):
        ours = ECEandMAE(eps=eps, reduction="sum")
        x = logits.clone().requires_grad_()
        (grads[eps],) = torch.autograd.grad(ours(x, targets), x)
        mae = ECEandMAE(alpha=0.0, eps=eps, reduction="sum")
        x = logits.clone().requires_grad_()
        (mae_only,) = torch.autograd.grad(mae(x, targets), x)
        if eps is None:
            assert (grads[eps] - mae_only).abs().max() > 1e-4  # the ε-softmax term pulls
        else:
            torch.testing.assert_close(grads[eps], mae_only)  # constant below the clamp
    assert ECEandMAE().eps == 1e-8 and EFLandMAE().eps == 1e-8  # the authors' default


def ogc_closed_form(base, prob_thr, tau):
    """OGC's loss (losses_ogc.py, forward): p clamped to [1e-7, 1 − 1e-7]; where p ≤ p_thr the line
    1 − τ·p + ℓ(p_thr), with ℓ(p_thr) in float32 (``torch.tensor(prob_thr_t)``), else ℓ(p)."""
    boundary = float(base(torch.tensor(prob_thr)))

    def closed_form(p, y):
        p_y = onehot_sum(p, y).clamp(1e-7, 1 - 1e-7)
        return torch.where(p_y <= prob_thr, 1 - tau * p_y + boundary, base(p_y))

    return closed_form


OGC_BASES = {
    "ogc_ce": (OGC_CE, lambda p: -torch.log(p)),
    "ogc_fl": (OGC_FL, lambda p: -((1 - p) ** 0.5) * torch.log(p)),
    "ogc_gce": (OGC_GCE, lambda p: (1 - p**0.7) / 0.7),
}


@pytest.mark.parametrize("name", list(OGC_BASES))
def test_ogc_loss_at_a_threshold_matches_the_authors_code(name):
    make, base = OGC_BASES[name]
    loss = make().eval()  # eval: the threshold is not moved by this batch
    loss.set_threshold(0.2)
    grad = {"ogc_ce": -1 / 0.2, "ogc_gce": -(0.2 ** (0.7 - 1))}.get(name)
    if grad is None:  # the focal loss's full derivative (mapping_p_to_grad)
        grad = 0.5 * math.log(0.2) * 0.8 ** (0.5 - 1) - 0.8**0.5 / 0.2
    assert loss.tau == pytest.approx(abs(grad), rel=1e-6)
    logits, targets = batch()
    assert_matches(loss, ogc_closed_form(base, 0.2, loss.tau), logits, targets)
    p_y = F.softmax(logits, 1).gather(1, targets[:, None]).squeeze(1)
    assert (p_y <= 0.2).any() and (p_y > 0.2).any()  # both branches met


EXTREME_LOSSES = [case[0] for case in CASES.values()] + [make() for make, _ in OGC_BASES.values()]


@pytest.mark.parametrize("loss", EXTREME_LOSSES, ids=lambda loss: loss.name)
def test_finite_for_extreme_float32_and_bf16_logits(loss):
    loss.reduction, loss = "mean", loss.float().eval()
    big = torch.tensor([[1e4, -1e4] + [0.0] * (K - 2), [-1e4, 1e4] + [0.0] * (K - 2)])
    targets = torch.tensor([0, 0])
    for logits in (big, big.bfloat16(), 50 * torch.randn(8, K).bfloat16()):
        logits = logits.clone().requires_grad_()
        t = targets if len(logits) == 2 else torch.arange(8) % K
        with torch.autocast("cpu", dtype=torch.bfloat16):
            value = loss(logits, t)
        (grad,) = torch.autograd.grad(value, logits)
        assert value.dtype == torch.float32 and torch.isfinite(value)
        assert torch.isfinite(grad).all()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: NCEandNNCE(delta=-1.0), "delta"),
        (lambda: NFLandNNFL(min_prob=1.0), "min_prob"),
        (lambda: JensenShannon(pi1=1.0), "pi1"),
        (lambda: ECEandMAE(m=-1.0), "m"),
        (lambda: GeneralizedLabelSmoothing(smooth_rate=1.0), "smooth_rate"),
        (lambda: NegativeLabelSmoothing(smooth_rate=0.1), "smooth_rate"),
        (lambda: NegativeLabelSmoothing(warmup_epochs=1.5), "warmup_epochs"),
        (lambda: OGC_CE(queue_size_q=1), "queue_size_q"),
        (lambda: OGC_CE(time_frame_s=0), "time_frame_s"),
        (lambda: OGC_GCE(q=0.0), "q"),
    ],
)
def test_invalid_parameters(make, match):
    with pytest.raises(InvalidValue, match=match):
        make()


def test_nls_trains_with_ce_during_its_warm_up():
    loss = NegativeLabelSmoothing(smooth_rate=-0.5, warmup_epochs=2, reduction="none")
    logits, targets = batch()
    ce = F.cross_entropy(logits, targets, reduction="none")
    for epoch, expected in ((0, ce), (1, ce)):
        loss.set_context(StepContext(lr=0.1, epoch=epoch, step=0))
        torch.testing.assert_close(loss(logits, targets), expected)
    loss.set_context(StepContext(lr=0.1, epoch=2, step=0))
    p = F.softmax(logits, 1)
    torch.testing.assert_close(loss(logits, targets), gls(p, F.one_hot(targets, K).double(), -0.5))


def test_anl_penalty_is_the_l1_norm_of_the_parameters():
    params = [torch.tensor([1.0, -2.0]), torch.tensor([[-0.5]])]
    assert float(NCEandNNCE(delta=0.1).penalty(params)) == pytest.approx(0.35)
    assert NCEandNNCE(delta=0.0).penalty(params) is None


# -- OGC's threshold ---------------------------------------------------------------------------


def authors_threshold(loss, h, fit, lr):
    """p_thr and τ as OGC's get_tau_t and calc_grad_ratio compute them from a fitted mixture
    (losses_ogc.py): truncated-normal densities on 1000 points of H, gradients clipped at τ by
    masks, the ratio scaled by the densities' means, tools.binary_search with is_func_decrease."""
    min_h, max_h = -math.log(1 - 1e-7), -math.log(1e-7)
    sample_h = np.linspace(min_h, max_h, 1000)
    grad_abs = np.abs(loss.slope(np.exp(-sample_h)))
    mean_c, var_c, mean_n, var_n = fit
    pdf = {}
    for name, loc, scale in (("clean", mean_c, var_c**0.5), ("noisy", mean_n, var_n**0.5)):
        a, b = (min_h - loc) / scale, (max_h - loc) / scale
        pdf[name] = stats.truncnorm.pdf(sample_h, a, b, loc, scale).reshape(-1)

    def ratio(prob):
        tau = abs(float(loss.slope(torch.tensor(prob).numpy())))
        clip = grad_abs > tau
        expected = {}
        for name, density in pdf.items():
            e = np.zeros_like(density)
            e[~clip] = (density * grad_abs)[~clip]
            e[clip] = (density * tau)[clip]
            expected[name] = e.mean()
        return expected["noisy"] / expected["clean"] * pdf["clean"].mean() / pdf["noisy"].mean()

    obj, low, high = 1 + lr * loss.epsilon, 1e-7, 1 - 1e-7
    if obj - ratio(high) < 0:
        return high
    if obj - ratio(low) > 0:
        return low
    for _ in range(loss.max_iter):
        mid = (low + high) / 2
        cost = obj - ratio(mid)
        if abs(cost) < loss.tol:
            return mid
        low, high = (low, mid) if cost > 0 else (mid, high)
    return high


@pytest.mark.parametrize("name", list(OGC_BASES))
def test_ogc_threshold_updates_as_the_authors_code(name):
    """The threshold stays at p = 1e-7 until the queue is full, first moves at the first multiple
    of time_frame_s steps at which it is (step 128 at batch 32 with q 4096), with the lr of that
    step, and equals the authors' search on the same mixture."""
    make, _ = OGC_BASES[name]
    loss = make()
    gen = torch.Generator().manual_seed(1)
    start_tau = loss.tau
    for step in range(1, 129):
        logits = 2 * torch.randn(32, K, generator=gen)
        targets = torch.randint(0, K, (32,), generator=gen)
        targets[:20] = logits[:20].argmax(1)  # a clean-looking majority
        loss.set_context(StepContext(lr=1e-4 * step, epoch=0, step=step))
        loss(logits, targets)
        if step < 128:
            assert loss.prob_thr == 1e-7 and loss.tau == start_tau and loss.updates == 0
    assert loss.updates == 1 and loss.prob_thr != 1e-7
    h = loss.queue.double().numpy()
    expected = authors_threshold(loss, h, loss.fit, lr=1e-4 * 128)
    assert loss.prob_thr == expected
    assert loss.tau == abs(float(loss.slope(torch.tensor(expected).numpy())))


def test_ogc_mixture_is_scikit_learns_with_the_authors_settings():
    from sklearn.mixture import GaussianMixture

    from phuber.losses.ogc import fit_mixture

    rng = np.random.default_rng(0)
    h = np.concatenate([rng.gamma(1.0, 0.2, 3000), rng.normal(4.0, 1.0, 1000).clip(0.01)])
    gmm = GaussianMixture(n_components=2, max_iter=10, reg_covar=1e-3, random_state=3).fit(
        h.reshape(-1, 1)
    )
    low = int(gmm.means_.argmin())
    mean_c, var_c, mean_n, var_n = fit_mixture(h, seed=3)
    assert (mean_c, var_c) == (gmm.means_[low, 0], gmm.covariances_[low, 0, 0])
    assert (mean_n, var_n) == (gmm.means_[1 - low, 0], gmm.covariances_[1 - low, 0, 0])
    assert mean_c < 1 < 3 < mean_n


def test_ogc_queue_keeps_the_last_q_values_in_order():
    loss = OGC_CE(queue_size_q=5, time_frame_s=100)
    for values in ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0], [8.0]):
        loss._push(torch.tensor(values))
    oldest = loss.pushed % 5
    assert np.roll(loss.queue.numpy(), -oldest).tolist() == [4.0, 5.0, 6.0, 7.0, 8.0]
    loss._push(torch.arange(10.0, 22.0))  # more than q at once: the last q
    assert np.roll(loss.queue.numpy(), -(loss.pushed % 5)).tolist() == [17, 18, 19, 20, 21]


def test_evaluation_never_changes_a_losss_state(tiny_cfg):
    from phuber.training.evaluation import evaluate

    cfg = tiny_cfg("loss=ogc_ce", "loss.queue_size_q=64", "loss.time_frame_s=1")
    parts = build_parts(cfg)
    from phuber.training.run_data import load_run_data

    data = load_run_data(cfg, parts)
    before = (parts.loss_fn.pushed, parts.loss_fn.queue.clone(), parts.loss_fn.updates)
    evaluate(parts.model, data.test, data.eval_transform, parts.loss_fn, 256, parts.precision)
    assert parts.loss_fn.training  # restored
    after = (parts.loss_fn.pushed, parts.loss_fn.queue, parts.loss_fn.updates)
    assert before[0] == after[0] and before[2] == after[2] and torch.equal(before[1], after[1])


def test_per_example_clipping_refuses_a_stateful_or_penalizing_loss(tiny_cfg):
    for loss in ("ogc_ce", "nce_nnce"):
        cfg = tiny_cfg(
            f"loss={loss}", "hparams.grad_clip_mode=per_example", "hparams.grad_clip_max_norm=1"
        )
        with pytest.raises(ConfigError, match="per-example gradient cannot hold"):
            build_parts(cfg)


OGC_RUN = ("loss=ogc_ce", "loss.queue_size_q=512", "loss.time_frame_s=8", "seed=3")


def test_ogc_threshold_adapts_and_a_resumed_run_is_bit_identical(tiny_cfg, tmp_path):
    """A short run logs τ_t and p_thr per epoch, and they move; a run stopped after epoch 1 and
    resumed ends with the uninterrupted run's weights, queue and threshold."""
    full, second = stopped_and_resumed(tiny_cfg, tmp_path, *OGC_RUN)
    history = json.loads((tmp_path / "full/metrics.json").read_text())["history"]
    thresholds = [row["loss_prob_thr_t"] for row in history]
    assert all(1e-7 < t < 1 for t in thresholds) and thresholds[0] != thresholds[1]
    assert all(row["loss_tau_t"] > 1 for row in history)  # CE's slope 1/p > 1
    for key in full["model"]:
        assert torch.equal(full["model"][key], second["model"][key]), key
    assert torch.equal(full["loss"]["queue"], second["loss"]["queue"])
    assert full["loss"]["_extra_state"] == second["loss"]["_extra_state"]
    again = json.loads((tmp_path / "second/metrics.json").read_text())["history"]
    assert again[1]["loss_prob_thr_t"] == thresholds[1]
