"""Sweeps through the launchers, on the embedded data: the default parallel one (joblib) and
submitit's (requirements-cluster.txt)."""

import json

import pytest
import torch
from conftest import CONF, run_cli

from phuber.training.checkpoint import load_checkpoint

TINY = ["loss=ce,phuber_ce", "hparams.epochs=1", "seed=0", "device=cpu", "save=false"]


def test_multirun_is_parallel_by_default_with_a_progress_line_and_sequential_results(tmp_path, cli):
    """``--multirun`` with no launcher named runs its jobs on joblib's workers, one per core,
    shows one progress line for the sweep (no per-run bars), and trains the weights Hydra's
    basic launcher trains, bit for bit, at the same thread count (one)."""
    args = [*TINY, "tensorboard=false", "save=true"]
    parallel = run_cli("train.py", "--multirun", *args, "hydra.sweep.dir=par", cwd=tmp_path)
    assert parallel.returncode == 0, parallel.stdout + parallel.stderr
    output = parallel.stdout + parallel.stderr
    assert "JoblibLauncher" in (tmp_path / "par/multirun.yaml").read_text()
    assert "Joblib.Parallel(n_jobs=" in output
    assert "sweep: 2/2 jobs finished (2 completed, 0 skipped, 0 failed)" in output
    assert "Epoch 0:" not in output  # no tqdm bar of a run
    assert not (tmp_path / "par/.progress").exists()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers' count
    try:
        code, output = cli(
            "train.py", "--multirun", "hydra/launcher=basic", *args, "hydra.sweep.dir=seq"
        )
    finally:
        torch.set_num_threads(threads)
    assert code == 0, output
    assert "JoblibLauncher" not in (tmp_path / "seq/multirun.yaml").read_text()
    for job in ("0", "1"):
        a = load_checkpoint(tmp_path / "par" / job / "final_model.pt")["model"]
        b = load_checkpoint(tmp_path / "seq" / job / "final_model.pt")["model"]
        assert all(torch.equal(a[k], b[k]) for k in a), job


def test_default_jobs_follow_gpus_then_cores(monkeypatch):
    import os

    from phuber.app.sweep import default_jobs

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,3")
    assert default_jobs() == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert default_jobs() == len(os.sched_getaffinity(0))


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["submitit_local"])
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


LAUNCHER_OPTIONS = sorted(p.stem for p in (CONF / "hydra" / "launcher").glob("*.yaml"))


@pytest.mark.parametrize("option", LAUNCHER_OPTIONS)
def test_each_launcher_setting_is_judged_at_its_edges_before_launching(option):
    """Every key a launcher option's file sets has a declared domain (phuber.app.launchers),
    and each edge of it is refused naming hydra.launcher.<key> or is inside the domain."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf
    from omegaconf.errors import ValidationError

    from phuber.app.launchers import LAUNCHERS, launcher_problems

    if option == "slurm":
        pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="an optional extra")
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        launcher = compose("train", [f"hydra/launcher={option}"], return_hydra_config=True)
    launcher = launcher.hydra.launcher
    domains = LAUNCHERS[launcher._target_]
    own = OmegaConf.load(CONF / "hydra" / "launcher" / f"{option}.yaml")
    keys = [k for k in own if k != "defaults"]
    assert set(keys) <= set(domains), set(keys) - set(domains)
    assert launcher_problems(launcher) == []
    for key in keys:
        before = launcher[key]
        for value in domains[key].edges():
            try:
                launcher[key] = value
            except ValidationError:  # of the plugin's own type: Hydra refuses it, no traceback
                continue
            problems = launcher_problems(launcher)
            if problems:
                assert any(f"hydra.launcher.{key}=" in line for line in problems), problems
            else:
                domains[key].check(launcher[key])  # as the plugin holds it
        launcher[key] = before


def test_a_bad_launcher_setting_is_one_message_before_any_job(tmp_path):
    """hydra.launcher.n_jobs=0 ended in joblib's traceback: now one message, exit 2, no job."""
    result = run_cli("train.py", "--multirun", *TINY, "hydra.launcher.n_jobs=0", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in output, output
    assert "hydra.launcher.n_jobs=0: must be an integer >= 1" in output
    assert not list(tmp_path.rglob("metrics.json"))
