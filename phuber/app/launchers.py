"""The launchers' settings that phuber's configs set (``conf/hydra/launcher/*.yaml``), declared
where phuber consumes them: its sweeper judges them before a sweep launches anything, so a bad
value is one message naming ``hydra.launcher.<key>`` rather than a joblib or submitit
traceback. No heavy imports."""

from collections.abc import Mapping

from omegaconf import DictConfig, OmegaConf

from phuber.core.declared import declare
from phuber.core.domains import Choice, Domain, Integer, Real, Text

_JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
_SLURM = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
_LOCAL = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"
_MINUTES = Integer(1, why="minutes a job may run")

LAUNCHERS: dict[str, Mapping[str, Domain]] = {
    _JOBLIB: declare(
        n_jobs=Integer(1, why="jobs at once; by default one per GPU, else one per core"),
        backend=Choice(("loky", "multiprocessing", "threading")),
        prefer=Choice(("processes", "threads"), nullable=True),
        verbose=Integer(0),
        timeout=Real(0, low_open=True, nullable=True, float32=False, null_means="none"),
    ),
    _SLURM: declare(
        partition=Text("a Slurm partition's name", nullable=True, null_means="the default"),
        timeout_min=_MINUTES,
        gpus_per_node=Integer(0),
        tasks_per_node=Integer(1),
        cpus_per_task=Integer(1),
        mem_gb=Real(0, low_open=True, float32=False),
        signal_delay_s=Integer(0, why="seconds before the time limit that a job is warned"),
        max_num_timeout=Integer(0, why="requeues after a time limit"),
        array_parallelism=Integer(1, why="jobs of the sweep running at once"),
    ),
    _LOCAL: declare(
        timeout_min=_MINUTES,
        gpus_per_node=Integer(0, nullable=True, null_means="none"),
        cpus_per_task=Integer(1, nullable=True, null_means="submitit's default"),
    ),
}


def launcher_problems(launcher: DictConfig) -> list[str]:
    """Every setting of ``hydra.launcher`` outside its declared domain, one line each."""
    from phuber.core.checks import check_keys

    target = OmegaConf.select(launcher, "_target_")
    domains = LAUNCHERS.get(target, {}) if isinstance(target, str) else {}
    return [f"hydra.launcher.{line}" for line in check_keys(launcher, domains)]
