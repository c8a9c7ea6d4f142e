"""Shared fixtures: configs composed through Hydra's compose API, shrunk for fast runs."""

import logging
import os
import runpy
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hypothesis import HealthCheck, settings
from omegaconf import DictConfig, open_dict

# One torch thread per test process unless told otherwise: the suite runs on one worker per core
# (pytest-xdist, pyproject.toml), and results compared across processes use one thread.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

# Property tests: a bounded number of examples in the suite (it must stay within its time), many
# more with HYPOTHESIS_PROFILE=thorough. Examples reuse function-scoped fixtures on purpose (a
# tmp_path each example writes its own subfolder of).
_SHARED = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}
settings.register_profile("suite", max_examples=25, derandomize=True, **_SHARED)
settings.register_profile("thorough", max_examples=400, **_SHARED)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))


@pytest.fixture(scope="session")
def compose_cfg() -> Callable[..., DictConfig]:
    """``compose_cfg(overrides, config_name="train")`` → the composed config."""

    def _compose(overrides: list[str] | None = None, config_name: str = "train") -> DictConfig:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
            return compose(config_name=config_name, overrides=overrides or [])

    return _compose


@pytest.fixture
def tiny_cfg(compose_cfg) -> Callable[..., DictConfig]:
    """A 1-epoch LeNet run on the embedded data, no TensorBoard, seeded; extra overrides win."""

    def _tiny(*overrides: str) -> DictConfig:
        base = ["hparams.epochs=1", "seed=0", "tensorboard=false", "device=cpu"]
        cfg = compose_cfg([*base, *overrides])
        with open_dict(cfg):
            cfg.dataset.root = str(ROOT / "data")
        return cfg

    return _tiny


def run_cli(
    script: str, *args: str, cwd: Path, timeout: float = 300, **kwargs
) -> subprocess.CompletedProcess:
    """Run ``python <script> args`` (or ``python -m args``) from ``cwd`` as a user would; output
    dirs land in ``cwd``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, script if script == "-m" else str(ROOT / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys) -> Iterator[Callable[..., tuple[int, str]]]:
    """``cli("train.py", *args)`` runs a script's real entry point (argument parsing, Hydra,
    ``phuber.cli``'s error handling, the exit status) in this process, from ``tmp_path``, and
    returns ``(exit status, stdout + stderr)``: the CLI as a user meets it, without the 3–4 s of
    a new interpreter's imports. A ``--multirun`` without a launcher runs on Hydra's basic
    launcher here (its jobs in this process, where the test's patches hold); the default
    parallel launcher is tested in a process of its own (``tests/test_launchers.py``)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def _run(script: str, *args: str) -> tuple[int, str]:
        if "--multirun" in args and not any(a.startswith("hydra/launcher=") for a in args):
            args = (*args, "hydra/launcher=basic")
        monkeypatch.setattr(sys, "argv", [script, *args])
        code = 0
        try:
            runpy.run_path(str(ROOT / script), run_name="__main__")
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    yield _run
    for handler in root.handlers:  # Hydra's, bound to this test's captured streams
        if handler not in handlers:
            handler.close()
    root.handlers[:], root.level = handlers, level


def stopped_and_resumed(tiny_cfg, tmp_path: Path, *overrides: str) -> tuple[dict, dict]:
    """A 2-epoch run straight through (``full``), and one stopped after epoch 1 and resumed
    from its checkpoint (``first``, then ``second``): both final checkpoints."""
    from phuber.training import run as train
    from phuber.training.checkpoint import load_checkpoint

    train.run(tiny_cfg(*overrides, "hparams.epochs=2"), tmp_path / "full")
    train.run(tiny_cfg(*overrides, "hparams.epochs=1"), tmp_path / "first")
    resumed = tiny_cfg(*overrides, "hparams.epochs=2")
    resumed.checkpoint = str(tmp_path / "first/most_recent.pt")
    train.run(resumed, tmp_path / "second")
    return (
        load_checkpoint(tmp_path / "full/final_model.pt"),
        load_checkpoint(tmp_path / "second/final_model.pt"),
    )
