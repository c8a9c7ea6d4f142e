"""Docs that are tested: every code block of README.md and docs/ runs, or at least parses.

- ``python`` blocks run (in a fresh namespace each; the registry they may touch is restored);
- ``yaml`` blocks parse;
- ``console`` blocks run their ``$ `` commands through the real entry point, and every output
  line the page shows must appear;
- ``bash`` blocks: each phuber command composes through Hydra (``train.py``, ``eval.py``, the
  synthetic scripts: every override and every sweep value, then the config's own checks), the
  report's and the benchmark's command lines parse; the few other commands (pip, pytest, cd, …)
  are named here, so an unknown one fails.
- Relative links between the pages resolve.
"""

import re
import shlex
import sys

import pytest
from conftest import CONF, ROOT
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)
# Commands a page may show that the suite does not run (installing, testing, viewing, the
# extension example, which tests/test_extending.py does as the page says).
NOT_PHUBER = ("pip ", "python -m pytest", "ruff ", "git clone", "tensorboard ", "cd ")
SCRIPTS = {"train.py": "train", "eval.py": "eval"}
SCRIPTS |= {
    f"synthetic_{i}.py": f"synthetic/{n}" for i, n in ((1, "long_servedio"), (2, "outliers"))
}


def blocks(lang: str) -> list[tuple[str, str]]:
    """``(page:line, body)`` of every block of the language on every page."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in BLOCK.finditer(text):
            if match.group(1) == lang:
                line = text[: match.start()].count("\n") + 1
                found.append((f"{page.name}:{line}", match.group(2)))
    return found


def commands() -> list[tuple[str, str]]:
    """Every command line of every bash block (each once, where it first appears),
    continuations joined, comments dropped."""
    found: dict[str, str] = {}
    for where, body in blocks("bash"):
        for line in body.replace("\\\n", " ").splitlines():
            line = " ".join(line.split("  #")[0].split())
            if line and not line.startswith("#"):
                found.setdefault(line, where)
    return [(where, line) for line, where in found.items()]


def ids(items):
    return [f"{where} {text.splitlines()[0][:60]}" for where, text in items]


@pytest.mark.parametrize("where,code", blocks("python"), ids=ids(blocks("python")))
def test_python_blocks_run(where, code, capsys):
    from phuber.datasets.registry import DATASETS

    before = dict(DATASETS)
    try:
        exec(compile(code, where, "exec"), {"__name__": "docs"})
    finally:
        DATASETS.clear()
        DATASETS.update(before)


@pytest.mark.parametrize("where,text", blocks("yaml"), ids=ids(blocks("yaml")))
def test_yaml_blocks_parse(where, text):
    assert OmegaConf.create(text) is not None


@pytest.mark.parametrize("where,text", blocks("console"), ids=ids(blocks("console")))
def test_console_blocks_show_what_the_cli_prints(cli, where, text):
    sessions = re.split(r"^\$ ", text, flags=re.M)[1:]
    assert sessions, f"{where}: no $ command"
    for session in sessions:
        command, *shown = session.splitlines()
        script, *args = shlex.split(command)[1:]
        _, output = cli(script, *args)
        for line in shown:
            line = line.strip().removeprefix("[...]")
            assert line in output, f"{where}: {line!r} not in:\n{output}"


@pytest.mark.parametrize("where,line", commands(), ids=ids(commands()))
def test_bash_commands_compose_or_parse(where, line):
    words = [w for w in shlex.split(line) if not re.fullmatch(r"[A-Z_]+=\S*", w)]  # env vars
    if line.startswith(NOT_PHUBER) or "--config-dir" in words:
        return
    if words[:2] == ["bash", "benchmarks/gpu.sh"]:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        import gpu_check

        gpu_check.parser().parse_args([w for w in words[2:] if not re.fullmatch(r"\[.*\]", w)])
        return
    assert words[0] == "python", f"{where}: not a command the suite knows: {line}"
    words = [w for w in words[1:] if not re.fullmatch(r"\[.*\]", w)]  # usage's [optional] parts
    if words[:2] == ["-m", "phuber.report"]:
        from phuber.report.cli import main

        assert main([w for w in words[2:] if w != "..."]) == 2  # parses; the dirs are examples
        return
    if words[0] == "benchmarks/bench.py":
        sys.path.insert(0, str(ROOT / "benchmarks"))
        import bench

        bench.parser().parse_args(words[1:])
        return
    script, *overrides = words
    assert script in SCRIPTS, f"{where}: not a command the suite knows: {line}"
    compose_each(SCRIPTS[script], [o for o in overrides if o != "--multirun"], where)


# Launchers from an optional extra (requirements-cluster.txt): a command naming one is composed
# where the extra is installed, and skipped (saying so) where only requirements.txt is.
OPTIONAL_LAUNCHERS = {
    name: "hydra_plugins.hydra_submitit_launcher"
    for name in ("slurm", "submitit_slurm", "submitit_local")
}


def _file_keys() -> set[str]:
    from phuber.core.domains import File
    from phuber.training.config import KEYS

    return {key for key, domain in KEYS.items() if isinstance(domain, File)}


FILES = _file_keys()  # keys whose value the pages show as a placeholder path


def compose_each(config: str, overrides: list[str], where: str) -> None:
    for override in overrides:
        launcher = override.removeprefix("hydra/launcher=")
        if launcher != override and launcher in OPTIONAL_LAUNCHERS:
            pytest.importorskip(OPTIONAL_LAUNCHERS[launcher], reason="an optional extra")
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        _compose_each(config, overrides, where)


def _compose_each(config: str, overrides: list[str], where: str) -> None:
    """Compose ``config`` with the overrides, once per value of every swept key (the command
    line's and the experiment's), and check each: the config's own problems (placeholder
    paths of file-valued keys aside) are a failure."""
    from phuber.training.config import config_problems

    sweeps = {o.split("=")[0]: o.split("=", 1)[1].split(",") for o in overrides if _swept(o)}
    fixed = [o for o in overrides if not _swept(o)]
    base = _compose(config, [*fixed, *(f"{k}={v[0]}" for k, v in sweeps.items())])
    given = {o.split("=")[0].lstrip("+~") for o in overrides}
    params = OmegaConf.select(base, "hydra.sweeper.params") or {}
    for key, value in params.items():  # the experiment's grid (each value composes elsewhere)
        if key.lstrip("+~") not in given:
            sweeps[key] = str(value).split(",")[:1]
    for key, values in sweeps.items():
        for value in values:
            cfg = _compose(config, [*fixed, f"{key}={value}"])
            if config in ("train", "eval"):
                task = "eval" if config == "eval" else "train"
                with_hydra = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
                problems = [p for p in config_problems(with_hydra, task) if p.key not in FILES]
                assert not problems, f"{where}: {key}={value}: {problems}"
    if not sweeps and config in ("train", "eval"):
        cfg = OmegaConf.masked_copy(base, [k for k in base if k != "hydra"])
        task = "eval" if config == "eval" else "train"
        problems = [p for p in config_problems(cfg, task) if p.key not in FILES]
        assert not problems, f"{where}: {problems}"


def _swept(override: str) -> bool:
    value = override.split("=", 1)[-1]
    return "=" in override and "," in value and not value.startswith(("[", "{", "'", '"'))


def _compose(config: str, overrides: list[str]):
    return compose(config, [o.strip("'") for o in overrides], return_hydra_config=True)


def test_relative_links_between_pages_resolve():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not target.startswith(("http://", "https://")):
                assert (page.parent / target).exists(), f"{page.name}: {target} does not exist"


def test_readme_is_the_front_page():
    """README.md at most 300 lines; reference pages in docs/."""
    assert len((ROOT / "README.md").read_text().splitlines()) <= 300
    assert len(list((ROOT / "docs").glob("*.md"))) >= 4
