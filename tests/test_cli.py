"""What only a subprocess shows: exit codes, messages, signals, output layout, CLI parsing."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torchvision.transforms as T
from conftest import ROOT, run_cli
from test_json import assert_strict_tree

from phuber.core.errors import ConfigError
from phuber.datasets.load import load_arrays
from phuber.models import LeNet
from phuber.training import run as train
from phuber.training import trainer
from phuber.training.checkpoint import load_checkpoint
from phuber.training.scheduler import ExponentialDecayLR

FAST = ["hparams.epochs=1", "seed=0", "device=cpu"]


def only_run_dir(base):
    (run_dir,) = [p for p in base.glob("*/*") if p.is_dir()]
    return run_dir


def test_train_then_eval(cli, tmp_path):
    """Training in a process of its own (exit status, files, logs), then eval.py's real entry
    point in this one."""
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
    code, output = cli("eval.py", f"checkpoint={checkpoint}", "device=cpu")
    assert code == 0, output
    assert f"test: accuracy {test_acc:.4f}" in output
    (eval_json,) = (tmp_path / "outputs").glob("*/*/eval.json")
    assert json.loads(eval_json.read_text())["test"]["acc"] == pytest.approx(test_acc)
    # the training split: agreement with the noisy labels it was trained on, and says so
    rate = json.loads((run_dir / "metrics.json").read_text())["data"]["realized_noise_rate"]
    split = ["dataset.train.use=true", "dataset.test.use=false", "hydra.run.dir=train"]
    code, output = cli("eval.py", f"checkpoint={checkpoint}", "device=cpu", *split)
    assert code == 0, output
    line = next(line for line in output.splitlines() if line.startswith("train: accuracy"))
    assert f"against the labels it was trained on ({100 * rate:.1f}% corrupted)" in line
    assert "| accuracy on the true labels " in line
    scores = json.loads((tmp_path / "train" / "eval.json").read_text())["train"]
    assert scores["labels"] == "as trained on" and scores["corrupted_fraction"] == pytest.approx(
        rate
    )


def test_eval_scores_upstream_checkpoint_like_upstream(cli, tmp_path):
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
    code, output = cli("eval.py", "dataset=mnist_5k", "model=lenet", f"checkpoint={path}")
    assert code == 0, output
    assert f"test: accuracy {expected:.4f}" in output
    assert 0.3 < expected < 1


def test_help_lists_groups_and_options(cli):
    out = cli("train.py", "--help")[1]
    for word in (
        "dataset: ",
        "loss: ",
        "model: ",
        "phuber_ce",
        "corrupt_prob",
        "grad_clip_max_norm",
    ):
        assert word in out


def test_multirun_layout(cli, tmp_path):
    code, output = cli("train.py", "--multirun", "loss=ce,phuber_ce", *FAST, "tensorboard=false")
    assert code == 0, output
    runs = sorted((tmp_path / "multirun").glob("*/*/*/metrics.json"))
    assert [p.parent.name for p in runs] == ["0", "1"]
    assert [json.loads(p.read_text())["summary"]["loss"] for p in runs] == ["ce", "phuber_ce"]


BAD_INPUTS = [
    ("loss.tau=1", "loss.tau=1", "> 1"),
    ("loss=phuber_gce loss.q=1.5", "loss.q=1.5", "(0, 1]"),
    ("model.num_classes=7", "model.num_classes=7", "10"),
    ("dataset=cifar10 model=lenet", "model='lenet'", "choose model=resnet18 or"),
    ("device=gpu7", "device='gpu7'", "torch device"),
    ("checkpoint=/nonexistent/most_recent.pt", "checkpoint='/nonexistent", "existing checkpoint"),
    ("loss=huber", "loss", "phuber_ce"),
    ("dataset.train.noise_type=uniform", "dataset.train.noise_type='uniform'", "pairflip"),
    (
        "dataset.train.noise_type=asymmetric_block",
        "noise_type='asymmetric_block'",
        "cifar100",
    ),
    ("loss=sce loss.A=4", "loss.A=4", "< 0"),
    (
        "dataset=cifar10n model=resnet18 dataset.train.human_labels=best",
        "dataset.train.human_labels='best'",
        "one of 'aggre', 'worse', 'random1', 'random2', 'random3'",
    ),
    (
        "dataset=cifar10n model=resnet18 dataset.train.corrupt_prob=0.2",
        "dataset.train.corrupt_prob=0.2",
        "0 with human labels",
    ),
    (
        "dataset=cifar100n model=resnet18 dataset.train.noise_type=instance",
        "dataset.train.noise_type='instance'",
        "left unset with human labels",
    ),
    (
        "dataset.train.noise_type=instance dataset.train.corrupt_prob=1.2",
        "dataset.train.corrupt_prob=1.2",
        "[0, 1]",
    ),
    ("dataset=imagenet", "dataset", "cifar10"),
    # Values that used to reach a traceback (issue "Results you can trust", point 7):
    ("loss.tau=inf", "loss.tau=inf", "> 1"),
    ("dataset.train.corrupt_prob=inf", "dataset.train.corrupt_prob=inf", "[0, 1]"),
    ("seed=18446744073709551616", "seed=18446744073709551616", "an integer >= 0"),
    ("device=mps", "device='mps'", "a device of this machine"),
    ("auto_cpu_if_no_gpu=false", "device='cuda:0'", "device=cpu"),
    ("device=xla", "device='xla'", "cpu, cuda[:N] or mps"),
    ("dataset.train.use=false", "dataset.train.use=False", "true to train"),
    ("checkpoint=" + "x" * 5000 + ".pt", "checkpoint='xxxx", "an existing checkpoint"),
    ("loss=gce +loss.tau=2", "loss.tau=2", "takes no parameter 'tau'; it takes q"),
    ("hparams.optimizer=sgd", "hparams.optimizer='sgd'", "hparams/optimizer=NAME"),
    ("dataset=cifar100", "cifar100 images are 32×32", "model=resnet50"),
    ("hparams/scheduler=none", "hparams/scheduler", "Could not"),
    (
        "hparams.grad_clip_mode=every hparams.grad_clip_max_norm=1",
        "hparams.grad_clip_mode='every'",
        "'per_example', 'logit'",
    ),
    # Parameters at their extremes, combinations that make a loss constant, values a builder
    # would have overridden (issue "Trust, second round", point 6), and two rounds made one (7):
    ("hparams.logit_clip=1e-40", "hparams.logit_clip=1e-40", "within float32's range"),
    ("loss=sce loss.alpha=0 loss.beta=0", "loss.alpha=0, loss.beta=0", "is constant"),
    ("loss=nce_mae loss.alpha=0 loss.beta=0", "loss.alpha=0, loss.beta=0", "is constant"),
    ("loss=sce loss.alpha=1e38", "loss.alpha=1e+38", "not finite in float32"),
    ("loss=forward dataset.train.corrupt_prob=0.9", "is constant", "its transition matrix"),
    ("loss=forward +loss.transition=[[1,0],[0,1]]", "loss.transition", "a 10×10 row-stochastic"),
    ("dataset.num_classes=null", "dataset.num_classes=None", "an integer >= 2 (at most 4096)"),
    ("model._target_=abc", "model._target_='abc'", "a class or function phuber can import"),
    (
        "dataset.train.corrupt_prob=nan eval_batch_size=0",
        "dataset.train.corrupt_prob=nan: must be in [0, 1]\n  eval_batch_size=0: must be an "
        "integer >= 1",
        "must be in [0, 1]",
    ),
    # A group chosen with what is not an option's name ended in Hydra's ValueError traceback.
    ("model=null", "model=null: must be the name of one of its options", "lenet, resnet18"),
    ("loss=1", "loss=1: must be the name of one of its options", "phuber_ce"),
    # Keys nobody reads (point 6): Hydra suggests the +, which must not turn a typo into a no-op.
    ("+hparams.epoch=1", "hparams.epoch=1: unknown key", "did you mean hparams.epochs?"),
    ("+los=ce", "los=ce: unknown key", "did you mean loss?"),
    ("++hparams.epoch=1", "hparams.epoch=1: unknown key", "did you mean hparams.epochs?"),
    ("++mixed_precisoin=true", "mixed_precisoin=true: unknown key", "mixed_precision"),
    ("+dataset.train.corupt_prob=0.4", "unknown key", "dataset.train.corrupt_prob"),
]
if not torch.cuda.is_available():
    BAD_INPUTS.append(("device=cuda:0 auto_cpu_if_no_gpu=false", "CUDA is not", "device=cpu"))


# Bad values of many keys at once, each named in the one message (each key's whole range is
# tried by tests/test_domains.py; here, the real command line's parsing and message).
ALL_AT_ONCE = [
    (
        "dataset.train.corrupt_prob=1.5 hparams.epochs=abc hparams.batch_size=0 "
        "dataset.val.split=1.0 mixed_precision=maybe seed=-3 eval_every=0 dataset.root=5 "
        "dataset.train.noise_seed=-1 dataset.val.seed=-2",
        [
            "dataset.train.corrupt_prob=1.5: must be in [0, 1]",
            "hparams.epochs='abc': must be an integer >= 0",
            "hparams.batch_size=0: must be an integer >= 1",
            "dataset.val.split=1.0: must be in [0, 1)",
            "mixed_precision='maybe': must be true or false",
            "seed=-3: must be an integer >= 0",
            "eval_every=0: must be an integer >= 1",
            "dataset.root=5: must be a folder path",
            "dataset.train.noise_seed=-1: must be an integer >= 0",
            "dataset.val.seed=-2: must be an integer >= 0",
        ],
    ),
    (
        "loss=phuber_gce loss.q=nan loss.tau=1e40 hparams.optimizer.lr=-0.1 "
        "hparams.grad_clip_max_norm=0 hparams.logit_clip=0 hparams.scheduler.decay_rate=0 "
        "dataset.train.corrupt_prob=-0.1",
        [
            "loss.q=nan: must be in (0, 1]",
            "loss.tau=1e+40: must be > 1 (the PHuber clipping threshold), within float32's range",
            "hparams.optimizer.lr=-0.1: must be > 0",
            "hparams.grad_clip_max_norm=0: must be > 0",
            "hparams.logit_clip=0: must be in (0, 8.50706e+37]",
            "hparams.scheduler.decay_rate=0: must be > 0",
            "dataset.train.corrupt_prob=-0.1: must be in [0, 1]",
        ],
    ),
    ("loss=gce loss.q=0 hparams.optimizer.lr=nan", ["loss.q=0: must be", "lr=nan: must be > 0"]),
    ("loss=taylor_ce loss.order=0", ["loss.order=0: must be an integer >= 1"]),
    ("loss=bootstrap loss.mode=medium", ["loss.mode='medium': must be 'soft' or 'hard'"]),
    ("loss=agce loss.a=0 loss.q=-1", ["loss.a=0: must be > 0", "loss.q=-1: must be > 0"]),
]


@pytest.mark.parametrize("overrides,lines", ALL_AT_ONCE)
def test_bad_values_of_many_keys_are_one_message_naming_each(cli, tmp_path, overrides, lines):
    code, output = cli("train.py", *overrides.split())
    assert code == 2 and "Traceback" not in output, output
    for line in lines:
        assert line in output, (line, output)
    assert not list(tmp_path.rglob("metrics.json"))


@pytest.mark.parametrize("overrides,key,allowed", BAD_INPUTS)
def test_bad_input_gives_short_message_without_traceback(cli, tmp_path, overrides, key, allowed):
    """Through the real entry point (in this process): exit status 1 (Hydra) or 2 (ours), one
    screen naming key, value and what is allowed, no traceback, nothing read or trained."""
    code, output = cli("train.py", *overrides.split())
    assert code in (1, 2), output
    assert key in output and allowed in output, output
    assert "Traceback" not in output
    assert len(output.splitlines()) <= 40  # one screen
    assert not (tmp_path / "data").exists()  # rejected before any data was read or downloaded
    assert not list(tmp_path.rglob("metrics.json"))  # nothing trained


def test_bad_input_through_a_new_process(tmp_path, monkeypatch):
    """The same path end to end in a fresh interpreter: the exit status a shell sees, and one
    message naming the config-level and the build-level problems together; --help answers
    without importing torch."""
    bad = ["hparams.epochs=-1", "dataset.train.corrupt_prob=nan", "loss.tau=1", "+hparams.epoch=1"]
    result = run_cli("train.py", *bad, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in output, output
    for line in (
        "hparams.epochs=-1: must be",
        "dataset.train.corrupt_prob=nan: must be in [0, 1]",
        "loss.tau=1: must be > 1",
        "hparams.epoch=1: unknown key",
    ):
        assert output.count(line) == 1, output
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")  # each import on stderr
    result = run_cli("train.py", "--help", cwd=tmp_path)
    assert result.returncode == 0 and "| torch\n" not in result.stderr


def test_bad_checkpoints_through_eval(cli, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    wrong = tmp_path / "lenet100.pt"
    torch.save({"model": LeNet(num_classes=100).state_dict()}, wrong)
    for path, message in (
        (garbage, "truncated or not a PyTorch checkpoint"),
        (wrong, "fc3.weight"),
    ):
        code, output = cli("eval.py", f"checkpoint={path}")
        assert code == 2 and message in output and "Traceback" not in output, output
    code, output = cli("eval.py")
    assert code == 2 and "checkpoint=None" in output


def test_missing_real_data_offline(cli):
    code, output = cli("train.py", "dataset=cifar10", "model=resnet18", "dataset.download=false")
    assert code == 2 and "not found" in output and "mnist_5k" in output
    assert "Traceback" not in output


SIGNAL_ARGS = ["seed=0", "device=cpu", "hparams.epochs=2", "hparams.batch_size=16"]
SIGNAL_ARGS += ["tensorboard=false", "dataset.train.corrupt_prob=0.4"]
STEPS_PER_EPOCH = 250  # 4,000 images in batches of 16


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    """The uninterrupted 2-epoch run the interrupted ones must reproduce (made once, in this
    process: what is compared is the weights, not a process)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        cfg = compose("train", SIGNAL_ARGS)
    out = tmp_path_factory.mktemp("straight")
    train.run(cfg, out)
    return load_checkpoint(out / "final_model.pt")["model"]


def check_resumed(cli, tmp_path, straight_run, resume_args):
    """The interrupted run's checkpoint is mid-epoch 1 and its status preempted; resumed with
    ``resume_args``, it ends with the uninterrupted run's weights, bit for bit."""
    state = load_checkpoint(tmp_path / "interrupted/most_recent.pt")
    assert state["epoch"] == 1 and 0 < state["step_in_epoch"] < STEPS_PER_EPOCH
    assert json.loads((tmp_path / "interrupted/metrics.json").read_text())["status"] == "preempted"
    code, output = cli("train.py", *resume_args)
    assert code == 0, output
    resumed = (
        tmp_path / "interrupted"
        if "hydra.run.dir=interrupted" in resume_args
        else (tmp_path / "resumed")
    )
    a = load_checkpoint(resumed / "final_model.pt")["model"]
    assert all(torch.equal(a[k], straight_run[k]) for k in a)
    history = json.loads((resumed / "metrics.json").read_text())["history"]
    assert [r["epoch"] for r in history] == [0, 1]
    return output


def test_sigterm_mid_epoch_in_a_process_of_its_own(cli, tmp_path, straight_run):
    """What a shell sees: a real SIGTERM mid-epoch, the run saves and exits 128 + 15 within
    seconds, printing how to resume; resumed with checkpoint=, it matches the uninterrupted run."""
    args = [*SIGNAL_ARGS, "hydra.run.dir=interrupted"]
    proc = subprocess.Popen(
        [sys.executable, "-u", str(ROOT / "train.py"), *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # the thread count of this process, where the runs it is compared with train: float
        # sums may round otherwise with another count
        env={
            "PYTHONPATH": str(ROOT),
            "OMP_NUM_THREADS": str(torch.get_num_threads()),
            "PATH": "/usr/bin:/bin",
        },
    )
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "epoch 0 |" in line:
            time.sleep(0.2)  # inside epoch 1
            proc.send_signal(signal.SIGTERM)
            break
    start = time.perf_counter()
    lines += proc.stdout.readlines()
    proc.wait(timeout=60)
    output = "".join(lines)
    assert time.perf_counter() - start < 10
    assert proc.returncode == 128 + signal.SIGTERM, output
    checkpoint = tmp_path / "interrupted/most_recent.pt"
    assert f"resume with the same command plus: checkpoint={checkpoint}" in output
    check_resumed(
        cli,
        tmp_path,
        straight_run,
        [*SIGNAL_ARGS, f"checkpoint={checkpoint}", "hydra.run.dir=resumed"],
    )


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGUSR2])
def test_slurm_and_submitit_signals_mid_epoch(cli, tmp_path, monkeypatch, sig, straight_run):
    """Slurm's warning (SIGUSR1) and submitit's signal (SIGUSR2), raised in this process 40
    steps into epoch 1: the same save and exit status; a requeued job (the same command into
    the same run dir) resumes to the uninterrupted run's weights."""
    real, steps = trainer.batch_counts, []

    def count(*args, **kwargs):
        steps.append(1)
        if len(steps) == STEPS_PER_EPOCH + 40:
            signal.raise_signal(sig)
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "batch_counts", count)
    args = [*SIGNAL_ARGS, "hydra.run.dir=interrupted"]
    code, output = cli("train.py", *args)
    assert code == 128 + sig and "resume with the same command plus: checkpoint=" in output
    monkeypatch.setattr(trainer, "batch_counts", real)
    output = check_resumed(cli, tmp_path, straight_run, args)
    assert "holds an unfinished run (preempted): resuming" in output


def test_eval_uses_the_checkpoints_data_set_and_model(cli, tmp_path):
    """A model trained on MNIST (files in a root of its own) is evaluated on MNIST from the
    checkpoint alone; an override that contradicts it is refused, naming both values."""
    from datafiles import write_mnist

    write_mnist(tmp_path / "mnist_root" / "MNIST" / "raw", n_train=64, n_test=32)
    args = ["dataset=mnist", "dataset.root=mnist_root", "hparams.epochs=1", "seed=0"]
    code, output = cli("train.py", *args, "device=cpu", "tensorboard=false", "hydra.run.dir=run")
    assert code == 0, output
    test_acc = json.loads((tmp_path / "run" / "metrics.json").read_text())["final"]["test_acc"]
    checkpoint = f"checkpoint={tmp_path / 'run' / 'final_model.pt'}"
    code, output = cli("eval.py", checkpoint, "device=cpu", "hydra.run.dir=eval")
    assert code == 0 and f"test: accuracy {test_acc:.4f}" in output, output
    saved = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert saved["dataset"] == "mnist" and saved["identity"]["loss"] == "phuber_ce"
    assert assert_strict_tree(tmp_path) == 2  # metrics.json and eval.json
    for override, line, theirs in (
        ("dataset=fashion_mnist", "dataset.name='fashion_mnist': contradicts", "name='mnist'"),
        ("model=resnet18", "model._target_='phuber.network.resnet18': contradicts", "LeNet"),
        ("dataset=cifar100", "dataset.num_classes=100: contradicts", "num_classes=10;"),
    ):
        code, output = cli("eval.py", checkpoint, override, "hydra.run.dir=refused")
        assert code == 2 and line in output and "Traceback" not in output, output
        assert f"trained with {theirs}" in output or theirs in output
    code, output = cli(
        "eval.py",
        checkpoint,
        "dataset=mnist",
        "dataset.test.use=false",
        "dataset.train.use=true",
        "hydra.run.dir=train_split",
    )
    assert code == 0 and "test:" not in output, output
    assert "train: accuracy" in output and "against the labels it was trained on (" in output


def test_report_and_synthetic_inputs_are_checked(cli):
    for script, args, line in (
        ("synthetic_1.py", ["gamma=abc"], "gamma='abc': must be > 0"),
        ("synthetic_1.py", ["gamma=nan"], "gamma=nan: must be > 0"),
        ("synthetic_1.py", ["phuber_tau=inf"], "phuber_tau must be > 1"),
        ("synthetic_1.py", ["+gama=1"], "did you mean gamma?"),
        ("synthetic_2.py", ["seed=-1"], "seed=-1: must be an integer >= 0"),
        ("synthetic_2.py", ["huber_tau=nan"], "huber_tau must be in (0, 1)"),
    ):
        code, output = cli(script, *args)
        assert code == 2 and line in output and "Traceback" not in output, output
        assert not list(Path().rglob("results.json"))


# -- every bad value, for every key: a clean rejection naming the key, or a valid run ----------

import itertools  # noqa: E402

from hydra import compose, initialize_config_dir  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from phuber.core.identity import SEED_KEYS, flatten  # noqa: E402

BAD_VALUES = ["nan", "inf", "-inf", "0", "-1", "-1e300", "1e300", "1e-300", str(10**31)]
BAD_VALUES += ["abc", "''", "true", "null", "[1,2]", "{a:1}"]
LOSSES = sorted(p.stem for p in (ROOT / "conf" / "loss").glob("*.yaml"))


def train_keys(loss: str) -> dict[str, object]:
    """Every leaf key of the training config with ``loss=<loss>`` (the loss's parameters too),
    with its default value."""
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        cfg = compose("train", [f"loss={loss}"])
    return flatten(OmegaConf.to_container(cfg, resolve=True))


KEYS = {loss: train_keys(loss) for loss in LOSSES}
_runs = itertools.count()


def must_refuse(key: str, default: object, value: str) -> bool:
    """Values no key takes, judged from the key's default alone: NaN and infinities anywhere;
    lists and mappings; for a key whose default is a bool, anything but true; for a number,
    anything not a number (null is a seed's "draw one"); for a string, anything not a string."""
    if value in ("nan", "inf", "-inf", "[1,2]", "{a:1}"):
        return True
    if value == "null" and key in SEED_KEYS:
        return False
    number = value not in ("abc", "''", "true", "null")
    if isinstance(default, bool):
        return value != "true"
    if isinstance(default, int | float):
        return not number
    if isinstance(default, str):
        return value not in ("abc", "''")
    return False  # a null default: the key's kind is not known here


@settings(max_examples=max(10, settings().max_examples // 2))
@given(data=st.data())
def test_any_bad_value_of_any_key_is_rejected_cleanly_or_runs(cli, monkeypatch, data):
    """Through the real entry point: for a key of the training config and a value drawn from
    NaN, ±inf, 0, negatives, huge and tiny numbers, wrong types and lists, either the run is
    valid (it builds and reads its data; training itself is skipped here) or it exits 1 or 2
    with a short message naming the key, never a traceback."""
    from phuber.training import trainer

    monkeypatch.setattr(trainer.Trainer, "fit", lambda self: {})
    loss = data.draw(st.sampled_from(LOSSES), label="loss")
    key = data.draw(st.sampled_from(sorted(KEYS[loss])), label="key")
    value = data.draw(st.sampled_from(BAD_VALUES), label="value")
    run_dir = f"hydra.run.dir=runs/{next(_runs)}"
    device = [] if key == "device" else ["device=cpu"]
    code, output = cli("train.py", f"loss={loss}", f"{key}={value}", *device, run_dir)
    assert "Traceback" not in output, output
    assert len(output.splitlines()) <= 40, output
    if code != 0 or must_refuse(key, KEYS[loss][key], value):
        assert code in (1, 2) and key in output, output


def test_a_given_transition_is_used_not_replaced(tiny_cfg, tmp_path):
    """+loss.transition=T given to loss=forward: checked, used by the loss (not the noise
    model's), and recorded in the run's identity."""
    import numpy as np

    from phuber.training.build import build_parts

    t = (np.full((10, 10), 0.02) + np.eye(10) * 0.8).round(2).tolist()
    cfg = tiny_cfg("loss=forward", "dataset.train.corrupt_prob=0.4", f"+loss.transition={t}")
    loss = build_parts(cfg).loss_fn
    assert np.allclose(loss.log_transition.exp().numpy(), t)
    train.run(cfg, tmp_path)
    identity = json.loads((tmp_path / "metrics.json").read_text())["identity"]
    assert np.allclose(identity["settings"]["loss.transition"], t)
    bad = tiny_cfg("loss=forward", "+loss.transition=" + str([[0.5] * 10] * 10))
    with pytest.raises(ConfigError, match="row-stochastic"):
        build_parts(bad)


def test_eval_with_a_group_chosen_by_what_is_not_a_name_is_one_message(cli, tmp_path):
    for choice in ("model=1", "model=null", "dataset=[mnist,2]"):
        code, output = cli("eval.py", "checkpoint=x.pt", choice)
        assert code == 2 and "must be the name of one of its options" in output, output
        assert "Traceback" not in output


def test_eval_with_nothing_to_evaluate_is_refused(cli, tmp_path):
    from phuber.models import LeNet

    torch.save({"model": LeNet().state_dict()}, tmp_path / "m.pt")
    off = ["dataset.train.use=false", "dataset.val.use=false", "dataset.test.use=false"]
    code, output = cli("eval.py", f"checkpoint={tmp_path / 'm.pt'}", *off)
    assert code == 2 and "with every split off there is nothing to evaluate" in output, output
    code, output = cli(
        "eval.py",
        f"checkpoint={tmp_path / 'm.pt'}",
        "dataset.val.use=true",
        "dataset.test.use=false",
        "device=cpu",
    )
    assert code == 2 and "there is no validation split to evaluate" in output, output
    assert not list(tmp_path.rglob("eval.json"))
