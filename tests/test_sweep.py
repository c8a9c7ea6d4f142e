"""A sweep is one unit: every job runs, the sweep ends with one summary, its exit status says
whether every job succeeded, and its advice is for the whole sweep."""

import json
import signal

from test_json import assert_strict_tree

from phuber.core.errors import Preempted
from phuber.training import run as train
from phuber.training import trainer

SWEEP = ["--multirun", "hparams.epochs=1", "seed=0", "device=cpu", "tensorboard=false"]
SWEEP += ["save=false", "hydra.sweep.dir=sweep"]


def test_a_refused_job_runs_the_others_and_fails_the_sweep(cli, tmp_path):
    """dataset.train.corrupt_prob=0.2,1.5: the first trains, the second is refused, the sweep
    exits 2 with a summary naming it; relaunched, the done job is skipped and the exit status
    still says a job failed. Every JSON file the sweep wrote is strict."""
    code, output = cli("train.py", *SWEEP, "dataset.train.corrupt_prob=0.2,1.5")
    assert code == 2, output
    summary = output[output.index("Sweep of 2 jobs") :].splitlines()
    assert summary[0] == "Sweep of 2 jobs in sweep: 1 completed, 0 skipped (already done), 1 failed"
    assert summary[1] == (
        "  failed #1 (dataset.train.corrupt_prob=1.5): ConfigError: invalid config: "
        "dataset.train.corrupt_prob=1.5: must be in [0, 1]"
    )
    assert "then run the same command: completed jobs are skipped" in summary[2]
    assert json.loads((tmp_path / "sweep/0/metrics.json").read_text())["status"] == "completed"
    code, output = cli("train.py", *SWEEP, "dataset.train.corrupt_prob=0.2,1.5")
    assert code == 2 and "0 completed, 1 skipped (already done), 1 failed" in output, output
    launches = json.loads((tmp_path / "sweep/sweep.json").read_text())["launches"]
    assert [[j["status"] for j in launch["jobs"]] for launch in launches] == [
        ["completed", "failed"],
        ["skipped", "failed"],
    ]
    assert assert_strict_tree(tmp_path / "sweep") == 2  # metrics.json and sweep.json
    code, output = cli("train.py", *SWEEP, "dataset.train.corrupt_prob=0.2")
    assert code == 0 and "0 completed, 1 skipped" in output, output


def test_a_crashing_job_is_counted_and_the_sweep_goes_on(cli, monkeypatch):
    """An exception that is not a user error (a defect): logged with its traceback, counted as
    failed, the next job still runs."""
    real = train.run

    def crash_on_ce(cfg, out_dir):
        if cfg.loss._target_.endswith(".CrossEntropy"):
            raise ZeroDivisionError("a defect")
        return real(cfg, out_dir)

    monkeypatch.setattr(train, "run", crash_on_ce)
    code, output = cli("train.py", *SWEEP, "loss=ce,gce")
    assert code == 2, output
    assert "1 completed, 0 skipped (already done), 1 failed" in output
    assert "failed #0 (loss=ce): crashed: ZeroDivisionError: a defect" in output
    assert "This job crashed: a defect of phuber" in output


class _Signals:
    received = signal.SIGTERM
    previous_handler = None


def test_preemption_inside_a_sweep_advises_relaunching_the_sweep(cli, tmp_path, monkeypatch):
    """The advice printed after a preemption is sweep-level: rerun the sweep into its folder
    (checkpoint= on the sweep command would make every job resume one checkpoint)."""

    def preempted(self):
        raise Preempted.saved(_Signals(), 0, 5, self.out_dir / "most_recent.pt")

    monkeypatch.setattr(trainer.Trainer, "fit", preempted)
    args = [a for a in SWEEP if not a.startswith("hydra.sweep.dir")]
    code, output = cli("train.py", *args, "loss=ce,gce")
    assert code == 128 + signal.SIGTERM, output
    assert "resume the sweep with the same command plus hydra.sweep.dir=multirun/" in output
    assert "this one resumes from most_recent.pt" in output
    assert "checkpoint=" not in output
    code, output = cli("train.py", *SWEEP, "loss=ce,gce")
    assert "resume the sweep with the same command: completed jobs are skipped" in output


def test_progress_line_counts_and_estimates():
    from collections import Counter

    from phuber.app.sweep import progress_text

    text = progress_text(Counter(completed=2, failed=1), total=6, elapsed=90)
    assert text == (
        "sweep: 3/6 jobs finished (2 completed, 0 skipped, 1 failed), 1m30s elapsed, ETA 1m30s"
    )
    assert "ETA" not in progress_text(Counter(completed=6), total=6, elapsed=4000)
    assert "1h06m elapsed" in progress_text(Counter(completed=6), total=6, elapsed=4000)
