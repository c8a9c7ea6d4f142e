import json

import pytest
import torch

from phuber.core.errors import ConfigError
from phuber.losses.paper import PHuberCrossEntropy
from phuber.models import LeNet
from phuber.training import run as train
from phuber.training import trainer
from phuber.training.clipping import clip_logit_gradients, per_example_clipped_backward


def per_sample_grads(model, loss_fn, x, y):
    grads = []
    for i in range(len(y)):
        model.zero_grad()
        loss_fn(model(x[i : i + 1]), y[i : i + 1]).backward()
        grads.append({k: p.grad.clone() for k, p in model.named_parameters()})
    return grads


@pytest.mark.parametrize("max_norm", [0.05, 1.0, 1e6])
def test_per_example_equals_loop_of_per_sample_backward(max_norm):
    torch.manual_seed(0)
    model, loss_fn = LeNet(), PHuberCrossEntropy(tau=3)
    x, y = torch.randn(6, 1, 28, 28), torch.randint(0, 10, (6,))
    grads = per_sample_grads(model, loss_fn, x, y)
    norms = [torch.sqrt(sum(g.pow(2).sum() for g in gi.values())) for gi in grads]
    factors = [min(1.0, max_norm / n.item()) for n in norms]
    expected = {
        k: sum(f * gi[k] for f, gi in zip(factors, grads, strict=True)) / 6 for k in grads[0]
    }
    model.zero_grad()
    unclipped, n_clipped = per_example_clipped_backward(model, loss_fn, x, y, max_norm)
    for k, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[k], rtol=1e-4, atol=1e-7)
    assert int(n_clipped) == sum(f < 1 for f in factors)
    mean = {k: sum(gi[k] for gi in grads) / 6 for k in grads[0]}
    assert unclipped.item() == pytest.approx(
        torch.sqrt(sum(g.pow(2).sum() for g in mean.values())).item(), rel=1e-4
    )


def test_logit_clipping_equals_clipping_each_examples_logit_gradient():
    torch.manual_seed(1)
    model, loss_fn = LeNet(), PHuberCrossEntropy(tau=10)
    x, y = torch.randn(5, 1, 28, 28), torch.randint(0, 10, (5,))
    max_norm = 0.3
    expected = {k: torch.zeros_like(p) for k, p in model.named_parameters()}
    for i in range(5):  # each example's logit gradient, clipped, pushed back through the network
        model.zero_grad()
        logits = model(x[i : i + 1])
        (g,) = torch.autograd.grad(loss_fn(logits, y[i : i + 1]), logits)
        g = g * min(1.0, max_norm / g.norm().item())
        logits.backward(g / 5)
        for k, p in model.named_parameters():
            expected[k] += p.grad
    model.zero_grad()
    counter = torch.zeros((), dtype=torch.long)
    logits = model(x)
    clip_logit_gradients(logits, max_norm, counter)
    loss_fn(logits, y).backward()
    for k, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[k], rtol=1e-4, atol=1e-7)
    assert 0 <= int(counter) <= 5


@pytest.mark.parametrize("mode", ["per_example", "logit"])
def test_training_with_each_mode(tiny_cfg, tmp_path, mode):
    cfg = tiny_cfg(f"hparams.grad_clip_mode={mode}", "hparams.grad_clip_max_norm=0.5")
    final = train.run(cfg, tmp_path)
    row = json.loads((tmp_path / "metrics.json").read_text())["history"][0]
    assert 0 < row["train_grad_clipped_frac"] <= 1 and final["test_acc"] > 0.3


def test_per_example_refuses_batch_norm_and_needs_a_norm(tiny_cfg, tmp_path):
    cfg = tiny_cfg("model=resnet18", "hparams.grad_clip_mode=per_example")
    cfg.hparams.grad_clip_max_norm = 1.0
    with pytest.raises(ConfigError, match="BatchNorm"):
        trainer.Trainer(cfg, tmp_path)
    with pytest.raises(ConfigError, match=r"used with a hparams\.grad_clip_max_norm"):
        train.run(tiny_cfg("hparams.grad_clip_mode=logit"), tmp_path)


def test_logit_clip_keeps_the_wrapped_losss_clipped_fraction(tiny_cfg, tmp_path):
    """LogitClip around PHuber-CE: train_clipped_frac is still recorded, and is the share of
    examples whose clipped logits put PHuber in its linear regime."""
    import json

    import torch

    from phuber.losses.logit_clip import LogitClip
    from phuber.losses.paper import PHuberCrossEntropy
    from phuber.training import run as train
    from phuber.training.metrics import batch_counts

    train.run(tiny_cfg("hparams.logit_clip=0.05", "loss.tau=2"), tmp_path)
    (row,) = json.loads((tmp_path / "metrics.json").read_text())["history"]
    assert 0 <= row["train_clipped_frac"] <= 1
    logits, labels = 40 * torch.randn(64, 10), torch.randint(0, 10, (64,))
    wrapped = LogitClip(PHuberCrossEntropy(tau=2), 0.05)
    counts = batch_counts(logits, labels, labels, torch.zeros(64, dtype=torch.bool), wrapped)
    log_p = torch.log_softmax(wrapped.clip(logits), 1).gather(1, labels[:, None]).squeeze(1)
    assert int(counts["clipped"]) == int((log_p <= -torch.log(torch.tensor(2.0))).sum()) > 0
