"""Sweeps through the optional launchers (requirements-cluster.txt), on the embedded data."""

import json

import pytest
from conftest import run_cli

TINY = ["loss=ce,phuber_ce", "hparams.epochs=1", "seed=0", "device=cpu", "save=false"]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["parallel", "submitit_local"])
def test_tiny_sweep_through_launcher(tmp_path, launcher):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    extra = ["hydra.launcher.timeout_min=10"] if launcher == "submitit_local" else []
    result = run_cli(
        "train.py",
        "--multirun",
        f"hydra/launcher={launcher}",
        *extra,
        *TINY,
        "hydra.sweep.dir=sweep",
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    runs = sorted((tmp_path / "sweep").glob("*/metrics.json"))
    assert len(runs) == 2
    metrics = [json.loads(p.read_text()) for p in runs]
    assert {m["summary"]["loss"] for m in metrics} == {"ce", "phuber_ce"}
    assert all(m["status"] == "completed" and m["final"]["test_acc"] > 0.5 for m in metrics)
