"""What only a subprocess shows: exit codes, messages, signals, output layout, CLI parsing."""

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
import torchvision.transforms as T
from conftest import ROOT, run_cli

from phuber.checkpoint import load_checkpoint
from phuber.dataset import load_arrays
from phuber.network import LeNet
from phuber.scheduler import ExponentialDecayLR

FAST = ["hparams.epochs=1", "seed=0", "device=cpu"]


def only_run_dir(base):
    (run_dir,) = [p for p in base.glob("*/*") if p.is_dir()]
    return run_dir


def test_train_then_eval(tmp_path):
    result = run_cli("train.py", *FAST, "dataset.train.corrupt_prob=0.2", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Test accuracy:" in result.stdout
    run_dir = only_run_dir(tmp_path / "outputs")
    for name in (".hydra", "train.log", "metrics.json", "most_recent.pt", "final_model.pt"):
        assert (run_dir / name).exists(), name
    assert list(run_dir.glob("phuber_ce_tau10_rho0.2_seed0/events.out.tfevents.*"))
    assert "realized_noise_rate" in (run_dir / "train.log").read_text()
    test_acc = json.loads((run_dir / "metrics.json").read_text())["final"]["test_acc"]

    checkpoint = run_dir / "final_model.pt"
    result = run_cli("eval.py", f"checkpoint={checkpoint}", "device=cpu", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"test: accuracy {test_acc:.4f}" in result.stdout
    (eval_json,) = (tmp_path / "outputs").glob("*/*/eval.json")
    assert json.loads(eval_json.read_text())["test"]["acc"] == pytest.approx(test_acc)


def test_eval_scores_upstream_checkpoint_like_upstream(tmp_path):
    """A checkpoint in the earlier reproduction's format, scored the way its evaluator does
    (torchvision transforms per PIL image, DataLoader, argmax)."""
    torch.manual_seed(0)
    model = LeNet()
    optimizer = torch.optim.Adam(model.parameters())
    images, labels = load_arrays("mnist_5k", "", train=False)
    transform = T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])
    x = torch.stack([transform(T.functional.to_pil_image(img)) for img in images])
    for _ in range(30):  # a little training, so the accuracy is not trivial
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x[:500]), labels[:500]).backward()
        optimizer.step()
    path = tmp_path / "upstream.pt"
    scheduler = ExponentialDecayLR(optimizer, decay_steps=10000, decay_rate=0.1)
    torch.save(
        {
            "epoch": 20,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
        },
        path,
    )
    model.eval()
    loader = torch.utils.data.DataLoader(list(zip(x, labels, strict=True)), batch_size=32)
    with torch.no_grad():
        correct = sum((model(xb).argmax(1) == yb).sum().item() for xb, yb in loader)
    expected = correct / len(labels)
    result = run_cli(
        "eval.py", "dataset=mnist_5k", "model=lenet", f"checkpoint={path}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"test: accuracy {expected:.4f}" in result.stdout
    assert 0.3 < expected < 1


def test_help_lists_groups_and_options(tmp_path):
    out = run_cli("train.py", "--help", cwd=tmp_path).stdout
    for word in (
        "dataset: ",
        "loss: ",
        "model: ",
        "phuber_ce",
        "corrupt_prob",
        "grad_clip_max_norm",
    ):
        assert word in out


def test_multirun_layout(tmp_path):
    result = run_cli(
        "train.py", "--multirun", "loss=ce,phuber_ce", *FAST, "tensorboard=false", cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    runs = sorted((tmp_path / "multirun").glob("*/*/*/metrics.json"))
    assert [p.parent.name for p in runs] == ["0", "1"]
    assert [json.loads(p.read_text())["summary"]["loss"] for p in runs] == ["ce", "phuber_ce"]


BAD_INPUTS = [
    ("dataset.train.corrupt_prob=1.5", "dataset.train.corrupt_prob=1.5", "[0, 1]"),
    ("dataset.train.corrupt_prob=-0.1", "dataset.train.corrupt_prob=-0.1", "[0, 1]"),
    ("loss.tau=0.5", "loss.tau=0.5", "> 1"),
    ("loss.tau=1", "loss.tau=1", "> 1"),
    ("loss=gce loss.q=0", "loss.q=0", "(0, 1]"),
    ("loss=phuber_gce loss.q=1.5", "loss.q=1.5", "(0, 1]"),
    ("hparams.epochs=-1", "hparams.epochs=-1", ">= 0"),
    ("hparams.epochs=abc", "hparams.epochs='abc'", "integer"),
    ("hparams.batch_size=0", "hparams.batch_size=0", ">= 1"),
    ("dataset.val.split=1.0", "dataset.val.split=1.0", "[0, 1)"),
    ("hparams.grad_clip_max_norm=0", "hparams.grad_clip_max_norm=0", "> 0"),
    ("hparams.optimizer.lr=-0.1", "hparams.optimizer.lr=-0.1", "> 0"),
    ("model.num_classes=7", "model.num_classes=7", "10"),
    ("dataset=cifar10 model=lenet", "hparams/cifar10_lenet", "Available options"),
    ("mixed_precision=maybe", "mixed_precision='maybe'", "true or false"),
    ("seed=-3", "seed=-3", ">= 0"),
    ("device=gpu7", "device='gpu7'", "torch device"),
    ("checkpoint=/nonexistent/most_recent.pt", "checkpoint='/nonexistent", "existing file"),
    ("loss=huber", "loss", "phuber_ce"),
    ("dataset.train.noise_type=uniform", "dataset.train.noise_type='uniform'", "pairflip"),
    (
        "dataset=fashion_mnist dataset.train.noise_type=asymmetric",
        "noise_type='asymmetric'",
        "cifar10",
    ),
    ("dataset=imagenet", "dataset", "cifar10"),
]


@pytest.mark.parametrize("overrides,key,allowed", BAD_INPUTS)
def test_bad_input_gives_short_message_without_traceback(tmp_path, overrides, key, allowed):
    start = time.perf_counter()
    result = run_cli("train.py", *overrides.split(), cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert key in output and allowed in output, output
    assert "Traceback" not in output
    assert len(output.splitlines()) <= 40  # one screen
    assert not (tmp_path / "data").exists()  # rejected before any data was read or downloaded
    assert time.perf_counter() - start < 60


def test_bad_checkpoints_through_eval(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    wrong = tmp_path / "lenet100.pt"
    torch.save({"model": LeNet(num_classes=100).state_dict()}, wrong)
    for path, message in (
        (garbage, "truncated or not a PyTorch checkpoint"),
        (wrong, "fc3.weight"),
    ):
        result = run_cli("eval.py", f"checkpoint={path}", cwd=tmp_path)
        output = result.stdout + result.stderr
        assert result.returncode == 2 and message in output and "Traceback" not in output, output
    result = run_cli("eval.py", cwd=tmp_path)
    assert result.returncode == 2 and "checkpoint=None" in result.stdout + result.stderr


def test_missing_real_data_offline(tmp_path):
    result = run_cli(
        "train.py", "dataset=cifar10", "model=resnet18", "dataset.download=false", cwd=tmp_path
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "not found" in output and "mnist_5k" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2])
def test_signal_mid_epoch_saves_and_resume_matches_uninterrupted(tmp_path, sig):
    args = ["seed=0", "device=cpu", "hparams.epochs=3", "hparams.batch_size=8", "tensorboard=false"]
    args += ["dataset.train.corrupt_prob=0.4", "hydra.run.dir=interrupted"]
    env_cmd = [sys.executable, "-u", str(ROOT / "train.py"), *args]
    proc = subprocess.Popen(
        env_cmd,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "epoch 0 |" in line:
            time.sleep(0.3)  # inside epoch 1
            proc.send_signal(sig)
            break
    start = time.perf_counter()
    lines += proc.stdout.readlines()
    proc.wait(timeout=60)
    output = "".join(lines)
    assert time.perf_counter() - start < 10
    assert proc.returncode == 128 + sig, output
    assert "resume with the same command plus: checkpoint=" in output
    state = load_checkpoint(tmp_path / "interrupted/most_recent.pt")
    assert state["epoch"] == 1 and 0 < state["step_in_epoch"] < 450
    assert json.loads((tmp_path / "interrupted/metrics.json").read_text())["status"] == "preempted"

    resumed = [a for a in args if not a.startswith("hydra.run.dir")]
    checkpoint = tmp_path / "interrupted/most_recent.pt"
    if sig == signal.SIGUSR2:  # as a requeued job: the same command into the same run dir
        result = run_cli("train.py", *args, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "holds an unfinished run (preempted): resuming" in result.stdout
        (tmp_path / "resumed").symlink_to(tmp_path / "interrupted")
        checkpoint = None
    if checkpoint is not None:
        result = run_cli(
            "train.py", *resumed, f"checkpoint={checkpoint}", "hydra.run.dir=resumed", cwd=tmp_path
        )
        assert result.returncode == 0, result.stdout + result.stderr
    result = run_cli("train.py", *resumed, "hydra.run.dir=straight", cwd=tmp_path)
    assert result.returncode == 0
    a = load_checkpoint(tmp_path / "resumed/final_model.pt")["model"]
    b = load_checkpoint(tmp_path / "straight/final_model.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    history = json.loads((tmp_path / "resumed/metrics.json").read_text())["history"]
    assert [r["epoch"] for r in history] == [0, 1, 2]
