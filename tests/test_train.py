import json
import math

import pytest
import torch
from conftest import stopped_and_resumed
from omegaconf import open_dict

from phuber.training import run as train
from phuber.training import trainer
from phuber.training.checkpoint import load_checkpoint


def weights(path):
    return load_checkpoint(path)["model"]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_run_writes_metrics_checkpoints_and_tensorboard(tiny_cfg, tmp_path):
    cfg = tiny_cfg("dataset.train.corrupt_prob=0.4", "hparams.epochs=2", "tensorboard=true")
    cfg.dataset.val.split = 0.1
    final = train.run(cfg, tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert metrics["summary"]["loss"] == "phuber_ce" and metrics["summary"]["tau"] == 10
    assert metrics["summary"]["seed"] == 0 and metrics["summary"]["corrupt_prob"] == 0.4
    assert metrics["data"]["train_size"] == 3600 and metrics["data"]["val_size"] == 400
    assert abs(metrics["data"]["realized_noise_rate"] - 0.4) < 0.05
    transition = metrics["data"]["transition_matrix"]
    assert len(transition) == 10 and abs(transition[3][3] - 0.6) < 0.06
    assert metrics["summary"]["noise_type"] == "symmetric"
    assert [row["epoch"] for row in metrics["history"]] == [0, 1]
    for key in (
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "val_clean_acc",
        "lr",
        "grad_norm",
    ):
        assert key in metrics["history"][-1]
    assert metrics["final"]["test_acc"] == final["test_acc"] and 0.5 < final["test_acc"] <= 1
    state = load_checkpoint(tmp_path / "final_model.pt")
    assert {"epoch", "model", "optimizer", "scheduler", "scaler"} <= state.keys()
    assert state["epoch"] == 2 and state["global_step"] == 2 * 113
    assert (tmp_path / "most_recent.pt").is_file()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    (log_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert log_dir.name == "phuber_ce_tau10_rho0.4_seed0"
    for event_file in log_dir.glob("events.out.tfevents.*"):
        tags |= set(EventAccumulator(str(event_file)).Reload().Tags()["scalars"])
    expected = {
        "train/loss",
        "train/acc",
        "val/loss",
        "val/acc",
        "val/clean_acc",
        "lr",
        "grad/norm",
    }
    assert expected | {"test/acc", "test/loss", "noise/realized_rate"} <= tags
    train_loss = EventAccumulator(str(log_dir)).Reload().Scalars("train/loss")
    assert [e.step for e in train_loss] == [0, 1]
    assert train_loss[-1].value == pytest.approx(metrics["history"][-1]["train_loss"], rel=1e-6)


def test_same_seed_gives_identical_weights(tiny_cfg, tmp_path):
    for name in ("a", "b"):
        train.run(tiny_cfg("seed=0", "dataset.train.corrupt_prob=0.2"), tmp_path / name)
    assert_same_weights(
        weights(tmp_path / "a/final_model.pt"), weights(tmp_path / "b/final_model.pt")
    )
    train.run(tiny_cfg("seed=1", "dataset.train.corrupt_prob=0.2"), tmp_path / "c")
    c = weights(tmp_path / "c/final_model.pt")
    assert not torch.equal(c["fc3.weight"], weights(tmp_path / "a/final_model.pt")["fc3.weight"])


@pytest.mark.parametrize("augment", [False, True])
def test_resume_is_bit_identical(tiny_cfg, tmp_path, augment):
    overrides = ("seed=5", "dataset.train.corrupt_prob=0.4", f"dataset.train.augment={augment}")
    full, second = stopped_and_resumed(tiny_cfg, tmp_path, *overrides)
    assert_same_weights(full["model"], second["model"])
    assert full["global_step"] == second["global_step"]
    history = json.loads((tmp_path / "second/metrics.json").read_text())["history"]
    full_history = json.loads((tmp_path / "full/metrics.json").read_text())["history"]
    assert [r["epoch"] for r in history] == [0, 1]
    assert history[1]["train_loss"] == full_history[1]["train_loss"]


def test_gradient_clipping_bounds_the_update(tiny_cfg, tmp_path):
    cfg = tiny_cfg("loss=ce", "hparams.grad_clip_max_norm=0.1")
    train.run(cfg, tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["summary"]["grad_clip_max_norm"] == 0.1
    assert metrics["history"][0]["grad_norm"] > 0.1  # the logged norm is the one before clipping


def test_asymmetric_noise_run(tiny_cfg, tmp_path):
    train.run(
        tiny_cfg("dataset.train.noise_type=asymmetric", "dataset.train.corrupt_prob=0.4"), tmp_path
    )
    transition = json.loads((tmp_path / "metrics.json").read_text())["data"]["transition_matrix"]
    assert abs(transition[2][7] - 0.4) < 0.06 and transition[0][0] == 1.0  # 2→7; 0 is kept


def test_mixed_precision_on_cpu_runs(tiny_cfg, tmp_path):
    final = train.run(tiny_cfg("mixed_precision=true"), tmp_path)
    assert final["test_acc"] > 0.5


def test_non_finite_loss_stops_with_message(tiny_cfg, tmp_path):
    cfg = tiny_cfg("loss=ce", "hparams.optimizer.lr=1e6", "hparams.epochs=3")
    with pytest.raises(
        trainer.NonFiniteLoss, match=r"non-finite at epoch \d+, global step \d+"
    ) as err:
        train.run(cfg, tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "failed"
    assert "most likely responsible: hparams.optimizer.lr=1000000, " in str(err.value)


def test_no_save_writes_no_checkpoint(tiny_cfg, tmp_path):
    train.run(tiny_cfg("save=false"), tmp_path)
    assert not list(tmp_path.glob("*.pt")) and (tmp_path / "metrics.json").is_file()


def test_epoch_scheduler_and_sgd_path(tiny_cfg, tmp_path):
    cfg = tiny_cfg("hparams/optimizer=sgd", "hparams.optimizer.lr=0.05")
    with open_dict(cfg):
        cfg.hparams.scheduler = {
            "_target_": "torch.optim.lr_scheduler.MultiStepLR",
            "milestones": [1],
            "gamma": 0.1,
        }
    cfg.hparams.epochs = 2
    cfg.hparams.scheduler_interval = "epoch"  # the recipe's schedule steps every optimiser step
    train.run(cfg, tmp_path)
    history = json.loads((tmp_path / "metrics.json").read_text())["history"]
    assert history[0]["lr"] == pytest.approx(0.05) and history[1]["lr"] == pytest.approx(0.005)


def test_memorisation_diagnostics_equal_direct_computation(tiny_cfg, tmp_path):
    """With one step per epoch, the diagnostics describe the initial model on the training set."""
    cfg = tiny_cfg("dataset.train.corrupt_prob=0.4", "hparams.batch_size=4000")
    built = trainer.Trainer(cfg, tmp_path)
    data = built.train_set
    with torch.no_grad():
        logits = built.model(built.train_transform(data.images))
    pred = logits.argmax(1)
    noisy = data.is_noisy
    log_p = torch.log_softmax(logits, 1).gather(1, data.labels[:, None]).squeeze(1)

    def share(hits: torch.Tensor) -> float:  # exact, from integer counts
        return int(hits.sum()) / hits.numel()

    expected = {
        "train_noisy_memorised": share((pred == data.labels)[noisy]),
        "train_noisy_true_acc": share((pred == data.clean_labels)[noisy]),
        "train_clean_true_acc": share((pred == data.clean_labels)[~noisy]),
        "train_clipped_frac": share(log_p <= -torch.log(torch.tensor(10.0))),
        "train_acc": share(pred == data.labels),
    }
    built.fit()
    row = json.loads((tmp_path / "metrics.json").read_text())["history"][0]
    for key, value in expected.items():
        assert row[key] == pytest.approx(value, abs=1e-9), key
    assert 0 < row["train_clipped_frac"] < 1


def test_signal_is_handed_on_to_the_previous_handler():
    """Under submitit, its requeue handler must still run once the checkpoint is written."""
    import os
    import signal

    from phuber.training.runtime import StopSignals

    calls = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append(signum))
    try:
        with StopSignals() as signals:
            os.kill(os.getpid(), signal.SIGUSR2)
        assert signals.received == signal.SIGUSR2 and calls == []  # ours ran, not theirs
        error = trainer.Preempted("stopped", signals)
        assert error.exit_code == 128 + signal.SIGUSR2
        error.hand_on()
        assert calls == [signal.SIGUSR2]
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_test_accuracy_every_eval_every_epochs_and_after_the_last(tiny_cfg, tmp_path):
    cfg = tiny_cfg("hparams.epochs=3", "hparams.batch_size=500", "eval_every=2")
    final = train.run(cfg, tmp_path)
    history = json.loads((tmp_path / "metrics.json").read_text())["history"]
    assert [row["epoch"] for row in history if "test_acc" in row] == [1, 2]
    assert final["test_acc"] == history[-1]["test_acc"]  # the last epoch's score, not redone
    assert trainer.eval_interval(None, 10_000) == 1 and trainer.eval_interval(None, 10_001) == 10
    assert trainer.eval_interval(3, 50_000) == 3


def test_eval_every_does_not_change_training(tiny_cfg, tmp_path):
    for name, every in (("each", "1"), ("end", "5")):
        cfg = tiny_cfg("hparams.epochs=2", "hparams.batch_size=256", f"eval_every={every}")
        train.run(cfg, tmp_path / name)
    assert_same_weights(
        weights(tmp_path / "each" / "final_model.pt"), weights(tmp_path / "end" / "final_model.pt")
    )


def test_fused_optimiser_is_used_and_differs_from_the_loop_by_rounding_only(tiny_cfg):
    """The trainer builds torch optimisers with fused=True (speed). Fed the same gradients, the
    fused and the per-parameter Adam differ by float32 rounding only, within a bound that
    follows from an argument, not from one processor: each step, the two updates
    lr·m̂/(√v̂ + ε) are the same formula evaluated in another order, so they differ by at most
    a few (``OPS``) float32 rounding errors of the update, |m̂/(√v̂ + ε)| ≤ (1 − β₁)/√(1 − β₂)
    (Kingma & Ba, §2.1), and the stored weight by half an ulp of itself; the weight decay
    carries an earlier difference forward by a factor 1 + lr·wd ≈ 1. Over N steps:
    |Δw| ≤ N·(ulp(|w|) + lr·OPS·u·(1 − β₁)/√(1 − β₂)), u = 2⁻²⁴. The same gradients are
    used on both sides so that training's own feedback (a rounding difference changes the next
    gradient, then the next ...) does not enter: that part is chaos, not rounding."""
    from phuber.models import LeNet
    from phuber.training.build import build_parts

    assert build_parts(tiny_cfg()).optimizer.defaults["fused"] is True
    assert build_parts(tiny_cfg("+hparams.optimizer.foreach=true")).optimizer.defaults["fused"] in (
        None,
        False,
    )
    lr, wd, betas, steps, ops = 1e-3, 1e-3, (0.9, 0.999), 125, 16  # LeNet's recipe, an epoch
    torch.manual_seed(0)
    start = LeNet().state_dict()
    models, optimisers = [], []
    for fused in (True, False):
        model = LeNet()
        model.load_state_dict(start)
        models.append(model)
        optimisers.append(
            torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd, fused=fused, foreach=False)
        )
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        grads = [torch.randn(p.shape, generator=generator) for p in models[0].parameters()]
        for model, optimiser in zip(models, optimisers, strict=True):
            for p, g in zip(model.parameters(), grads, strict=True):
                p.grad = g.clone()
            optimiser.step()
    u = 2.0**-24
    update = lr * ops * u * (1 - betas[0]) / math.sqrt(1 - betas[1])
    for (name, a), b in zip(models[0].named_parameters(), models[1].parameters(), strict=True):
        ulp = 2 * u * a.detach().abs().max().item()
        bound = steps * (ulp + update)
        assert (a - b).abs().max().item() <= bound, name


def test_transition_heatmap_without_matplotlib():
    """The TensorBoard image of the matrix: viridis's ends at 0 and 1, one square per entry."""
    import numpy as np

    from phuber.training.recorder import heatmap

    image = heatmap(np.array([[1.0, 0.0], [0.5, 0.5]]), size=8)
    assert image.shape == (8, 8, 3) and image.dtype == np.uint8
    assert image[0, 0].tolist() == [253, 231, 37] and image[0, 7].tolist() == [68, 1, 84]
    assert image[7, 0].tolist() == [33, 145, 140] == image[4, 4].tolist()
