"""Config keys checked against their declared domains (``phuber.core.domains``): every value
out of its domain becomes one line ``key=value: must be ...`` of a single ``ConfigError``. Used
by the training and evaluation configs (``phuber.training.config``) and the synthetic
experiments. No heavy imports.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from phuber.core.domains import Domain, Integer
from phuber.core.errors import ConfigError

MAX_SEED = 2**63 - 2  # torch seeds the augmentation generator with seed + 1 < 2**64
SEED = Integer(0, MAX_SEED, nullable=True, null_means="draw one and record it")
_ABSENT = object()


class Problem(str):
    """One problem line (``key=value: must be ...``) that knows its config key, so that checks
    depending on that key can be skipped rather than report it a second time."""

    key: str

    def __new__(cls, key: str, text: str) -> "Problem":
        problem = super().__new__(cls, text)
        problem.key = key
        return problem

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]
        return self.key, str(self)


def problem(key: str, value: Any, allowed: str) -> Problem:
    return Problem(key, f"{key}={value!r}: must be {allowed}")


def check_keys(cfg: DictConfig, domains: Mapping[str, Domain]) -> list[Problem]:
    """The problem lines of the keys present in ``cfg`` whose value is out of its domain."""
    problems = []
    for key, domain in domains.items():
        value = OmegaConf.select(cfg, key, default=_ABSENT)
        if value is _ABSENT:
            continue
        try:
            domain.check(value)
        except ValueError as err:
            problems.append(problem(key, value, str(err)))
    return problems


def raise_problems(problems: list[str]) -> None:
    """One ``ConfigError`` listing every problem, if there is any (``.problems``: the lines)."""
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems), list(problems))


def depends(keys: Iterable[str], broken: Iterable[str]) -> bool:
    """Whether anything at ``keys`` (dotted) is, or lies under or above, a broken key."""
    broken = list(broken)
    return any(
        b == k or b.startswith(f"{k}.") or k.startswith(f"{b}.") for k in keys for b in broken
    )
