import math

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from phuber.losses.paper import (
    CrossEntropy,
    GeneralizedCrossEntropy,
    PHuberCrossEntropy,
    PHuberGeneralizedCrossEntropy,
    Unhinged,
)


def closed_form(name: str, p: float, q: float = 0.7, tau: float = 10.0) -> float:
    """The formulas of the issue, written independently of the implementation."""
    if name == "ce":
        return -math.log(p)
    if name == "gce":
        return (1 - p**q) / q
    if name == "linear":
        return 1 - p
    if name == "phuber_ce":
        return -tau * p + math.log(tau) + 1 if p <= 1 / tau else -math.log(p)
    if name == "phuber_gce":
        p_star = tau ** (1 / (q - 1))
        if p <= p_star:
            return -tau * p + tau * p_star + (1 - p_star**q) / q
        return (1 - p**q) / q
    raise ValueError(name)


LOSSES = {
    "ce": lambda q, tau: CrossEntropy(reduction="none"),
    "gce": lambda q, tau: GeneralizedCrossEntropy(q=q, reduction="none"),
    "linear": lambda q, tau: Unhinged(reduction="none"),
    "phuber_ce": lambda q, tau: PHuberCrossEntropy(tau=tau, reduction="none"),
    "phuber_gce": lambda q, tau: PHuberGeneralizedCrossEntropy(q=q, tau=tau, reduction="none"),
}


def logits_for(p: torch.Tensor, num_classes: int = 10) -> torch.Tensor:
    """Logits whose softmax gives probability p to class 0 (the rest spread evenly)."""
    rest = (1 - p) / (num_classes - 1)
    logits = torch.log(rest)[:, None].repeat(1, num_classes)
    logits[:, 0] = torch.log(p)
    return logits


PROBS = torch.tensor([1e-6, 0.01, 0.05, 0.0999, 0.1001, 0.2, 0.5, 0.9, 0.999], dtype=torch.float64)


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("q,tau", [(0.7, 10.0), (0.3, 2.0), (0.9, 50.0)])
def test_values_match_closed_form(name, q, tau):
    loss = LOSSES[name](q, tau)(logits_for(PROBS), torch.zeros(len(PROBS), dtype=torch.long))
    expected = torch.tensor(
        [closed_form(name, float(p), q, tau) for p in PROBS], dtype=torch.float64
    )
    torch.testing.assert_close(loss, expected, rtol=1e-9, atol=1e-9)


def test_reductions():
    logits = torch.randn(7, 5)
    targets = torch.randint(0, 5, (7,))
    none = PHuberCrossEntropy(tau=3, reduction="none")(logits, targets)
    assert none.shape == (7,)
    torch.testing.assert_close(PHuberCrossEntropy(tau=3)(logits, targets), none.mean())
    torch.testing.assert_close(
        PHuberCrossEntropy(tau=3, reduction="sum")(logits, targets), none.sum()
    )
    with pytest.raises(ValueError, match="reduction"):
        CrossEntropy(reduction="avg")


def test_ce_matches_torch():
    logits, targets = torch.randn(50, 10), torch.randint(0, 10, (50,))
    torch.testing.assert_close(
        CrossEntropy()(logits, targets), torch.nn.functional.cross_entropy(logits, targets)
    )


def loss_of_p(module, p: torch.Tensor) -> torch.Tensor:
    return module.from_log_prob(torch.log(p))


@pytest.mark.parametrize(
    "module,threshold",
    [
        (PHuberCrossEntropy(tau=10), 0.1),
        (PHuberCrossEntropy(tau=2), 0.5),
        (PHuberGeneralizedCrossEntropy(q=0.7, tau=10), 10 ** (1 / (0.7 - 1))),
        (PHuberGeneralizedCrossEntropy(q=0.5, tau=3), 3 ** (1 / (0.5 - 1))),
    ],
)
def test_continuity_of_value_and_slope_at_threshold(module, threshold):
    eps = 1e-7
    p = torch.tensor([threshold - eps, threshold + eps], dtype=torch.float64, requires_grad=True)
    values = loss_of_p(module, p)
    (slope_below, slope_above) = torch.autograd.grad(values.sum(), p)[0]
    assert abs(values[0] - values[1]) < 1e-5
    assert abs(slope_below - slope_above) < 1e-3 * abs(slope_below)
    assert slope_below == pytest.approx(-module.tau, rel=1e-6)  # the slope there is exactly −τ


@pytest.mark.parametrize(
    "module,base",
    [
        (PHuberCrossEntropy(tau=10), CrossEntropy()),
        (PHuberCrossEntropy(tau=2), CrossEntropy()),
        (PHuberGeneralizedCrossEntropy(q=0.7, tau=10), GeneralizedCrossEntropy(q=0.7)),
        (PHuberGeneralizedCrossEntropy(q=0.4, tau=4), GeneralizedCrossEntropy(q=0.4)),
    ],
)
def test_gradient_bounded_by_tau_and_equal_to_base_above_threshold(module, base):
    p = torch.linspace(1e-8, 1, 20001, dtype=torch.float64).requires_grad_()
    grad = torch.autograd.grad(loss_of_p(module, p).sum(), p)[0]
    assert grad.abs().max() <= module.tau * (1 + 1e-9)
    above = torch.exp(torch.tensor(module.log_threshold)) < p.detach()
    torch.testing.assert_close(loss_of_p(module, p)[above], loss_of_p(base, p)[above])
    base_grad = torch.autograd.grad(loss_of_p(base, p).sum(), p)[0]
    torch.testing.assert_close(grad[above], base_grad[above])
    assert (base_grad.abs() > module.tau).any()  # the base loss itself is not bounded


def test_phuber_gce_with_q_one_is_linear():
    logits, targets = torch.randn(20, 4), torch.randint(0, 4, (20,))
    torch.testing.assert_close(
        PHuberGeneralizedCrossEntropy(q=1.0, tau=5)(logits, targets), Unhinged()(logits, targets)
    )


@pytest.mark.parametrize("name", list(LOSSES))
def test_gradcheck_float64(name):
    torch.manual_seed(0)
    module = LOSSES[name](0.7, 3.0)
    logits = (3 * torch.randn(6, 5, dtype=torch.float64)).requires_grad_()
    targets = torch.randint(0, 5, (6,))
    assert torch.autograd.gradcheck(lambda x: module(x, targets), (logits,))


@pytest.mark.parametrize("name", list(LOSSES))
def test_extreme_logits_finite_in_float32(name):
    module = LOSSES[name](0.7, 10.0)
    logits = torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [1e4, 1e4, -1e4]]).requires_grad_()
    targets = torch.tensor([0, 0, 2])
    loss = module(logits, targets)
    (grad,) = torch.autograd.grad(loss.sum(), logits)
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()


@pytest.mark.parametrize("name", list(LOSSES))
def test_autocast_computes_in_float32(name):
    module = LOSSES[name](0.7, 10.0)
    lin = torch.nn.Linear(8, 4)
    x, targets = torch.randn(16, 8), torch.randint(0, 4, (16,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = lin(x)
        loss = module(logits, targets)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    expected = module(logits.float(), targets)
    torch.testing.assert_close(loss, expected)


def test_no_graph_breaks_under_compile():
    torch._dynamo.reset()
    module = PHuberGeneralizedCrossEntropy(q=0.7, tau=10)
    compiled = torch.compile(module, fullgraph=True, backend="eager")
    logits, targets = torch.randn(8, 10), torch.randint(0, 10, (8,))
    torch.testing.assert_close(compiled(logits, targets), module(logits, targets))


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: PHuberCrossEntropy(tau=1.0), r"tau must be > 1.*tau=1.0"),
        (lambda: PHuberCrossEntropy(tau=-3), r"tau must be > 1.*tau=-3"),
        (lambda: PHuberGeneralizedCrossEntropy(q=0.7, tau=0.5), r"tau must be > 1"),
        (lambda: GeneralizedCrossEntropy(q=0.0), r"q must be in \(0, 1\].*q=0.0"),
        (lambda: GeneralizedCrossEntropy(q=1.5), r"q must be in \(0, 1\].*q=1.5"),
        (lambda: PHuberGeneralizedCrossEntropy(q=-1, tau=10), r"q must be in \(0, 1\]"),
    ],
)
def test_invalid_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("name", ["ce", "gce", "linear", "phuber_ce", "phuber_gce", "pytorch_ce"])
def test_loss_configs_instantiate(name):
    cfg = OmegaConf.load(f"conf/loss/{name}.yaml")
    loss = hydra.utils.instantiate(cfg)
    value = loss(torch.randn(4, 10), torch.randint(0, 10, (4,)))
    assert value.shape == () and torch.isfinite(value)
    if "tau" in cfg:
        cfg.tau = 3.5
        assert hydra.utils.instantiate(cfg).tau == 3.5
    if "q" in cfg:
        cfg.q = 0.25
        assert hydra.utils.instantiate(cfg).q == 0.25
