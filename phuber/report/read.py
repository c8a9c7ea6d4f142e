"""Reading one run's ``metrics.json``: what the report may use of it, every number checked, or the
one-line reason it is left out. Whatever a file holds, reading it never raises."""

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phuber.core.identity import RunIdentity

RHO = "dataset.train.corrupt_prob"
Curve = list[tuple[int, float]]  # (epoch, value) pairs of one run
# Per-epoch fractions the report draws (history key → what it is).
CURVES = {"test_acc": "test accuracy", "train_noisy_memorised": "memorised fraction"}


class LeftOut(Exception):
    """Why a run is not in the tables (one line)."""


@dataclass
class Run:
    """What the report uses of one completed run: its identity, final test accuracy (a fraction)
    and per-epoch curves (``CURVES``; absent where the run did not record them)."""

    identity: RunIdentity
    test_acc: float
    curves: dict[str, Curve] = field(default_factory=dict)
    points_left_out: list[str] = field(default_factory=list)  # non-finite points, named

    @property
    def rho(self) -> float:
        return self.identity.get(RHO)


def is_fraction(value: Any) -> bool:
    """A finite number in [0, 1], not a bool."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 <= value <= 1
    )


def read_run(path: Path) -> Run:
    """The run recorded in ``path``, or ``LeftOut`` saying why it cannot be tabulated."""
    try:
        return _read(path)
    except LeftOut:
        raise
    except Exception as err:  # a defect of ours must not drop a file unnamed: it is named here
        raise LeftOut(f"could not be read ({type(err).__name__}: {err})") from err


def _read(path: Path) -> Run:
    try:
        metrics = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise LeftOut(f"unreadable metrics.json ({type(err).__name__})") from None
    if not isinstance(metrics, dict):
        raise LeftOut(f"metrics.json holds a {type(metrics).__name__}, not a run's metrics")
    history = metrics.get("history")
    history = history if isinstance(history, list) else []
    status = metrics.get("status", "unknown")
    if status != "completed":
        summary = metrics.get("summary")
        epochs = summary.get("epochs", "?") if isinstance(summary, dict) else "?"
        raise LeftOut(f"{_short(status, str)} after {len(history)}/{_short(epochs, str)} epochs")
    identity = _identity(metrics)
    _check_identity(identity)
    final = metrics.get("final")
    test_acc = final.get("test_acc") if isinstance(final, dict) else None
    if not is_fraction(test_acc):
        raise LeftOut(
            f"completed without a test accuracy in [0, 1] (final.test_acc={_short(test_acc)}; "
            f"dataset.test.use=false?)"
        )
    dropped: list[str] = []
    curves = {name: _curve(history, name, dropped) for name in CURVES}
    return Run(identity, float(test_acc), {k: v for k, v in curves.items() if v}, dropped)


def _identity(metrics: dict[str, Any]) -> RunIdentity:
    """The run's recorded identity; for a run of an older phuber, which recorded none, the same
    derivation from the config and summary it did record."""
    if "identity" in metrics:
        try:
            return RunIdentity.from_dict(metrics["identity"])
        except ValueError as err:
            raise LeftOut(f"broken run identity ({err})") from None
    config, summary = metrics.get("config"), metrics.get("summary")
    if not isinstance(config, dict) or not isinstance(summary, dict) or "loss" not in summary:
        raise LeftOut("no run identity, and no config to derive it from: cannot be grouped")
    seed = summary.get("seed")
    return RunIdentity.from_config(
        config, seed if isinstance(seed, int) else None, str(summary["loss"])
    )


def _check_identity(identity: RunIdentity) -> None:
    """The settings the tables are made of must be there and of their kind."""
    problems = []
    if not isinstance(identity.get("dataset.name"), str):
        problems.append(f"dataset.name={_short(identity.get('dataset.name'))}")
    human = identity.get("dataset.train.human_labels")
    if not is_fraction(identity.get(RHO)):
        problems.append(f"{RHO}={_short(identity.get(RHO))}")
    if not isinstance(identity.get("dataset.train.noise_type", "symmetric"), str) or (
        human is not None and not isinstance(human, str)
    ):
        problems.append("dataset.train.noise_type / human_labels")
    for name in ("hparams.grad_clip_max_norm", "hparams.logit_clip"):
        value = identity.get(name)
        if value is not None and not _positive(value):
            problems.append(f"{name}={_short(value)}")
    if problems:
        raise LeftOut(f"its recorded settings cannot be tabulated: {', '.join(problems)}")


def _positive(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _curve(history: list, name: str, dropped: list[str]) -> Curve:
    """``(epoch, value)`` of the epochs whose row records ``name`` (null: not recorded that
    epoch). A non-finite value (NaN, ±inf: another tool's file) costs its point, named in
    ``dropped``; a finite value out of [0, 1] or a row without a whole epoch number is
    ``LeftOut``."""
    curve: Curve = []
    for i, row in enumerate(history):
        if not isinstance(row, dict) or row.get(name) is None:
            continue
        epoch, value = row.get("epoch"), row[name]
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise LeftOut(f"history row {i} has {name} but no epoch number >= 0")
        if isinstance(value, float) and not math.isfinite(value):
            dropped.append(f"history: {name}={value} at epoch {epoch}: that point left out")
            continue
        if not is_fraction(value):
            raise LeftOut(f"history: {name}={_short(value)} at epoch {epoch}, not in [0, 1]")
        curve.append((epoch, float(value)))
    epochs = [e for e, _ in curve]
    if len(set(epochs)) != len(epochs):
        raise LeftOut(f"history: {name} recorded twice for one epoch")
    return curve


def _short(value: Any, show: Any = repr) -> str:
    """A value for a one-line reason, cut to 60 characters."""
    text = show(value)
    return text if len(text) <= 60 else text[:57] + "..."
