import json

from conftest import run_cli


def test_benchmark_tiny_mode(tmp_path):
    """Both pipelines run a few small batches; the report has every figure (no timing asserted)."""
    out = tmp_path / "bench.json"
    result = run_cli(
        "benchmarks/bench.py", "--tiny", "--cases", "lenet", "--out", str(out), cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert {"machine", "device", "torch", "commit", "command"} <= report.keys()
    rows = report["cases"]["lenet"]
    for pipeline in ("ours", "reference"):
        for key in ("images_per_s", "epoch_time_s", "time_to_first_step_s", "peak_rss_mib"):
            assert rows[pipeline][key] > 0, (pipeline, key)
    assert rows["speedup"] > 0 and "ours/ref" in result.stdout
