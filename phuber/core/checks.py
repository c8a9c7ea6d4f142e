"""Config checks as data: a rule is (key, check, what is allowed), and every problem becomes one
line ``key=value: must be ...`` of a single ``ConfigError``. Used by the training and
evaluation configs (``phuber.training.config``) and the synthetic experiments. No heavy imports.
"""

import math
from collections.abc import Callable, Iterable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from phuber.core.errors import ConfigError

# (key, check, what is allowed): the message for a value that fails is "key=value: must be allowed".
Rule = tuple[str, Callable[[Any], bool], str]

MAX_SEED = 2**63 - 2  # torch seeds the augmentation generator with seed + 1 < 2**64


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    """A finite real number (not a bool, NaN or ±inf)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def between(lo: float, hi: float, hi_open: bool = False) -> Callable[[Any], bool]:
    return lambda v: is_num(v) and lo <= v and (v < hi if hi_open else v <= hi)


def is_seed(v: Any) -> bool:
    return is_int(v) and 0 <= v <= MAX_SEED


SEED_ALLOWED = f"an integer >= 0 (at most {MAX_SEED})"
BOOL: tuple[Callable[[Any], bool], str] = (is_bool, "true or false")


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


def check_rules(cfg: DictConfig, rules: Iterable[Rule]) -> list[Problem]:
    """The problem lines of the rules whose key is present in ``cfg`` and whose value fails."""
    problems = []
    for key, check, allowed in rules:
        value = OmegaConf.select(cfg, key, default="<absent>")
        if value != "<absent>" and not check(value):
            problems.append(problem(key, value, allowed))
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
