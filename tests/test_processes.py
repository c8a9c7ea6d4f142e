"""No process outlives its sweep: a real parallel sweep (joblib's workers, in processes of their
own) stopped by SIGTERM stops its jobs at a checkpoint, prints its summary and exits 143; a
sweep whose process is killed outright (SIGKILL) leaves no worker behind for more than seconds.
Its workers are found as the sweep's process's descendants, and looked for afterwards."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT

from phuber.app.processes import children

SWEEP = ["--multirun", "loss=ce,gce", "hparams.epochs=1000", "seed=0", "device=cpu"]
SWEEP += ["tensorboard=false", "hydra.sweep.dir=sweep"]


def descendants(pid: int) -> set[int]:
    found = set()
    for child in children(pid):
        found |= {child, *descendants(child)}
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except OSError:
        return False


def start(tmp_path):
    """The sweep's process, once both jobs train (their metrics.json exist), and its workers."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *SWEEP],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 120
    jobs = [tmp_path / "sweep" / str(i) / "metrics.json" for i in (0, 1)]
    while not all(p.exists() for p in jobs):
        assert process.poll() is None and time.time() < deadline, process.communicate()[0]
        time.sleep(0.2)
    time.sleep(1.5)  # into the first epoch
    workers = descendants(process.pid)
    assert len(workers) >= 2, workers
    return process, workers


@pytest.mark.slow
def test_sigterm_stops_the_jobs_at_a_checkpoint_and_ends_with_the_summary(tmp_path):
    process, workers = start(tmp_path)
    try:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 128 + signal.SIGTERM, output
        assert "0 failed, 2 stopped" in output and "stopped by SIGTERM: resume the sweep" in output
        for job in (0, 1):
            metrics = json.loads((tmp_path / "sweep" / str(job) / "metrics.json").read_text())
            assert metrics["status"] == "preempted", metrics["status"]
            assert (tmp_path / "sweep" / str(job) / "most_recent.pt").exists()
        deadline = time.time() + 20
        while any(alive(pid) for pid in workers) and time.time() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in workers if alive(pid)]
    finally:
        with __import__("contextlib").suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.slow
def test_workers_of_a_killed_sweep_end_within_seconds(tmp_path):
    process, workers = start(tmp_path)
    try:
        process.kill()
        process.communicate(timeout=30)
        deadline = time.time() + 30
        while any(alive(pid) for pid in workers) and time.time() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in workers if alive(pid)], "workers outlived their sweep"
        for job in (0, 1):  # each stopped at a checkpoint before it ended
            metrics = json.loads((tmp_path / "sweep" / str(job) / "metrics.json").read_text())
            assert metrics["status"] == "preempted", metrics["status"]
    finally:
        with __import__("contextlib").suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
