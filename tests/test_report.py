import csv
import json
import statistics

import pytest
from conftest import run_cli

from phuber import report


def fake_run(path, loss="ce", rho=0.2, seed=0, acc=0.9, status="completed", **summary):
    path.mkdir(parents=True)
    metrics = {
        "status": status,
        "summary": {
            "dataset": "mnist",
            "model": "lenet",
            "loss": loss,
            "tau": summary.get("tau"),
            "q": summary.get("q"),
            "corrupt_prob": rho,
            "grad_clip_max_norm": summary.get("clip"),
            "epochs": 20,
            "seed": seed,
        },
        "history": [{}] * (20 if status == "completed" else 3),
        "final": {"test_acc": acc} if status == "completed" else {},
    }
    (path / "metrics.json").write_text(json.dumps(metrics))


def test_groups_aggregates_and_compares_with_paper(tmp_path):
    fake_run(tmp_path / "0", "ce", 0.2, 0, 0.97)
    fake_run(tmp_path / "1", "ce", 0.2, 1, 0.98)
    fake_run(tmp_path / "2", "ce", 0.2, 2, 0.99, clip=0.1)
    fake_run(tmp_path / "3", "phuber_ce", 0.4, 0, 0.985, tau=10)
    fake_run(tmp_path / "4", "phuber_ce", 0.4, 1, 0.5, status="running", tau=10)
    fake_run(tmp_path / "sub" / "5", "gce", 0.0, 0, 0.95, q=0.7)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metrics.json").write_text("{not json")
    assert report.main([str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    assert "| CE | " in text and "97.5 ± 0.7 (n=2)" in text  # mean ± sample std of 97, 98
    assert "| CE + clipping |" in text and "| PHuber-CE τ=10 |" in text and "| GCE |" in text
    # The paper's MNIST CE at rho=0.2 is 97.7: ours - paper = -0.2.
    assert "| CE | paper | " in text and "97.7 (-0.2)" in text
    assert "running after 3/20 epochs" in text and "unreadable metrics.json" in text
    rows = list(csv.DictReader((tmp_path / "report.csv").open()))
    ce = next(r for r in rows if r["loss"] == "ce" and r["grad_clip_max_norm"] == "")
    assert float(ce["test_acc_mean"]) == pytest.approx(97.5)
    assert float(ce["paper_mean"]) == 97.7 and float(ce["reproduction_mean"]) == 98.8
    assert (tmp_path / "report.png").stat().st_size > 10000


def test_empty_or_wrong_dir(tmp_path, capsys):
    assert report.main([str(tmp_path / "absent")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert report.main([str(tmp_path)]) == 2
    assert "no completed run" in capsys.readouterr().err


def test_tiny_grid_through_multirun_and_report(tmp_path):
    """2 losses x 2 noise rates x 2 seeds, 1 epoch on the embedded data, then the report."""
    result = run_cli(
        "train.py",
        "--multirun",
        "loss=ce,phuber_ce",
        "dataset.train.corrupt_prob=0.0,0.4",
        "seed=0,1",
        "hparams.epochs=1",
        "device=cpu",
        "save=false",
        "hydra.sweep.dir=sweep",
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    runs = [json.loads(p.read_text()) for p in (tmp_path / "sweep").glob("*/metrics.json")]
    assert len(runs) == 8
    out = run_cli("-m", "phuber.report", "sweep", "--out", "rep", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = list(csv.DictReader((tmp_path / "rep" / "report.csv").open()))
    assert len(rows) == 4
    for row in rows:
        accs = [
            100 * r["final"]["test_acc"]
            for r in runs
            if r["summary"]["loss"] == row["loss"]
            and r["summary"]["corrupt_prob"] == float(row["corrupt_prob"])
        ]
        assert int(row["n_runs"]) == 2
        assert float(row["test_acc_mean"]) == pytest.approx(statistics.mean(accs), abs=1e-3)
        assert float(row["test_acc_std"]) == pytest.approx(statistics.stdev(accs), abs=1e-3)
    assert "### mnist_5k / lenet" in out.stdout and (tmp_path / "rep" / "report.png").is_file()
    assert (tmp_path / "rep" / "memorisation.png").is_file()  # the rho = 0.4 runs
