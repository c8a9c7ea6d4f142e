"""Shared fixtures: configs composed through Hydra's compose API, shrunk for fast runs."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


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
