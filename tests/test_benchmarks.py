import json

from conftest import ROOT


def test_benchmark_tiny_mode(tmp_path, monkeypatch, capsys):
    """Both pipelines run a few small batches; the report has every figure (no timing asserted).
    In this process: each pipeline's worker is called where bench.py would start its process."""
    import argparse
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench

    def in_process(pipeline: str, case: str, args: argparse.Namespace) -> dict:
        return bench.worker(argparse.Namespace(**{**vars(args), "worker": pipeline, "case": case}))

    monkeypatch.setattr(bench, "in_subprocess", in_process)
    out = tmp_path / "bench.json"
    bench._main(bench.parser().parse_args(["--tiny", "--cases", "lenet", "--out", str(out)]))
    stdout = capsys.readouterr().out
    report = json.loads(out.read_text())
    assert {"machine", "device", "torch", "commit", "command"} <= report.keys()
    rows = report["cases"]["lenet"]
    for pipeline in ("ours", "reference"):
        for key in ("images_per_s", "epoch_time_s", "time_to_first_step_s", "peak_rss_mib"):
            assert rows[pipeline][key] > 0, (pipeline, key)
    assert rows["speedup"] > 0 and "ours/ref" in stdout


def test_gpu_check_pieces_on_the_cpu(tmp_path):
    """benchmarks/gpu.sh's pieces, as its --dry-run runs them, without its two training
    processes (they are train.py's commands; composed here): the throughput loop eager and
    through dynamo, and data files our readers accept, the colours learnable."""
    import sys

    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_check
    from test_docs import compose_each

    from phuber.datasets.load import load_arrays

    rates = gpu_check.throughput(torch.device("cpu"), dry=True, case="lenet")  # as ResNet-50's
    assert rates["eager"]["images_per_s"] > 0 and rates["compiled"]["images_per_s"] > 0
    gpu_check.write_digits(tmp_path / "digits", 256, 64)
    images, labels = load_arrays("mnist", tmp_path / "digits", train=True)
    assert images.shape == (256, 1, 28, 28) and labels.max() <= 9
    gpu_check.write_colours(tmp_path / "colours", per_batch=40, n_test=32)
    images, labels = load_arrays("cifar10", tmp_path / "colours", train=True)
    means = np.stack([images[labels == c].float().mean((0, 2, 3)).numpy() for c in range(10)])
    assert images.shape == (200, 3, 32, 32) and np.ptp(means, axis=0).min() > 20
    grid = gpu_check.grid_args("cpu", tmp_path / "digits", tmp_path / "grid")
    compose_each("train", [a for a in grid if a != "--multirun"], "gpu_check grid")
    compose_each("train", gpu_check.resnet18_args("cpu", tmp_path, tmp_path / "r", 8), "resnet18")
    assert (ROOT / "benchmarks" / "gpu.sh").stat().st_mode & 0o111  # executable


def test_the_gpu_check_writes_where_told_or_into_an_ignored_folder():
    """Its report goes to --out, or by default into outputs/, which git ignores: a dry run
    leaves no file in the checkout."""
    import subprocess
    import sys
    from pathlib import Path

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_check

    default = gpu_check.parser().parse_args([]).out
    ignored = subprocess.run(["git", "check-ignore", "-q", str(default)], cwd=ROOT)
    assert ignored.returncode == 0, f"{default} is not ignored by git"
    assert gpu_check.parser().parse_args(["--out", "x/y.json"]).out == Path("x/y.json")
