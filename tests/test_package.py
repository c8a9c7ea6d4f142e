"""The package installs like one, and the README's library snippet runs from anywhere."""

import os
import re
import subprocess
import sys

from conftest import ROOT


def test_installs_and_the_readme_snippet_runs_outside_the_clone(tmp_path):
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    install = subprocess.run(
        [*pip, "--no-deps", "--no-build-isolation", "--target", str(site), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert (site / "phuber" / "report" / "paper_results.csv").is_file()
    assert (site / "hydra_plugins" / "phuber_sweeper" / "__init__.py").is_file()
    assert (site / "synthetic" / "experiments.py").is_file()
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Using the library") :]
    snippet = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    (tmp_path / "snippet.py").write_text("import phuber\nprint(phuber.__file__)\n" + snippet)
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-P", "snippet.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith(str(site))  # the installed copy, not the clone
    assert "of the labels corrupted" in run.stdout and "tensor(" in run.stdout
