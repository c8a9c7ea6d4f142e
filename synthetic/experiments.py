"""The two synthetic experiments: fig. 2a (Long & Servedio) and fig. 2b (outliers)."""

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig
from scipy.optimize import minimize_scalar

from phuber.core.checks import SEED, check_keys, raise_problems
from phuber.core.domains import Choice, Flag, Integer, Real
from phuber.core.errors import ConfigError
from phuber.core.files import save_json
from phuber.core.rundir import RunDir
from synthetic import data, linear, plots
from synthetic.losses import Huberised, Logistic, MarginLoss, PartiallyHuberised

log = logging.getLogger(__name__)


def margin_losses(cfg: DictConfig) -> list[MarginLoss]:
    """Logistic, Huberised and partially Huberised losses; bad τ values are config errors."""
    try:
        return [Logistic(), Huberised(tau=cfg.huber_tau), PartiallyHuberised(tau=cfg.phuber_tau)]
    except (ValueError, TypeError) as err:
        raise ConfigError(str(err)) from err


# The keys of conf/synthetic/*.yaml that no object checks when it is built (the τs are checked by
# the losses); a key absent from a script's config is skipped. NumPy float64 throughout.
KEYS = {
    "n_repeat": Integer(1),
    "n_train": Integer(1),
    "n_test": Integer(1),
    "corrupt_prob": Real(0, 1, float32=False),
    "gamma": Real(0, low_open=True, float32=False),
    "var": Real(0, float32=False),
    "mixture": Flag(),
    "method": Choice(tuple(sorted(linear.METHODS))),
    "seed": SEED,
    "plot_boundaries": Flag(),
    "save_fig": Flag(),
    "show_fig": Flag(),
}


def validate(cfg: DictConfig) -> None:
    """Check a synthetic experiment's keys, all problems in one message."""
    raise_problems(check_keys(cfg, KEYS))


Experiment = Callable[[DictConfig, Path], dict[str, Any]]


def _config(cfg: DictConfig) -> dict[str, Any]:
    """The settings an experiment's ``results.json`` records (and is recognised by)."""
    return {k: cfg[k] for k in cfg}


def run_once(experiment: Experiment) -> Experiment:
    """Run ``experiment`` unless ``out_dir`` holds its result for the same config already (then
    return that): a finished result is never overwritten, and one run dir has one writer."""

    @functools.wraps(experiment)
    def wrapper(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
        with RunDir(out_dir) as run_dir:
            earlier = run_dir.finished("results.json", "config", _config(cfg))
            return earlier if earlier is not None else experiment(cfg, out_dir)

    return wrapper


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values))


@run_once
def long_servedio(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Fit linear models with each loss on ``n_repeat`` noisy Long & Servedio samples; score them
    on clean test samples. Writes ``results.json`` and the fig. 2a box plot."""
    validate(cfg)
    losses = margin_losses(cfg)
    start = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    shape = {"gamma": cfg.gamma, "var": cfg.var, "mixture": cfg.mixture}
    x_train, y_train = data.long_servedio(
        rng, cfg.n_repeat, cfg.n_train, corrupt_prob=cfg.corrupt_prob, **shape
    )
    x_test, y_test = data.long_servedio(rng, cfg.n_repeat, cfg.n_test, corrupt_prob=0.0, **shape)
    results: dict[str, Any] = {"config": _config(cfg)}
    fitted = {}
    for loss in losses:
        w = linear.fit(x_train, y_train, loss, cfg.method)
        fitted[loss.name] = w
        train_loss, train_acc = linear.evaluate(w, x_train, y_train, loss)
        test_loss, test_acc = linear.evaluate(w, x_test, y_test, loss)
        entry: dict[str, Any] = {}
        for key, values in (
            ("train_loss", train_loss),
            ("test_loss", test_loss),
            ("train_acc", train_acc),
            ("test_acc", test_acc),
        ):
            entry[f"{key}_mean"], entry[f"{key}_std"] = _mean_std(values)
        entry["test_acc"] = test_acc.tolist()
        entry["weights"] = w.tolist()
        results[loss.name] = entry
        log.info(
            f"{loss.name:>10}: test acc {entry['test_acc_mean']:.3f} ± {entry['test_acc_std']:.3f}"
            f" | train acc {entry['train_acc_mean']:.3f} | test loss {entry['test_loss_mean']:.4f}"
        )
    results["time_s"] = time.perf_counter() - start
    log.info(f"{cfg.n_repeat} repeats in {results['time_s']:.1f} s")
    save_json(out_dir / "results.json", results)
    figure = plots.long_servedio_boxplot(
        {name: results[name]["test_acc"] for name in fitted}, cfg.corrupt_prob
    )
    plots.finish(figure, out_dir / "long_servedio", cfg.save_fig, cfg.show_fig)
    if cfg.plot_boundaries:
        figure = plots.boundaries(x_train[0], y_train[0], {k: w[0] for k, w in fitted.items()})
        plots.finish(figure, out_dir / "boundaries", cfg.save_fig, cfg.show_fig)
    return results


@run_once
def outliers(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Risk of the 1-D linear model f(x) = θx under each loss, with and without outliers, and
    where its minimiser θ* over θ ∈ [−3, 3] moves. Writes ``results.json`` and the fig. 2b plot.

    A bounded loss (PHuber) keeps decreasing as θ grows, so its θ* sits at the grid's edge; what
    matters is that outliers leave its risk unchanged while they drag the others' θ* to about 0.
    """
    validate(cfg)
    losses = margin_losses(cfg)
    rng = np.random.default_rng(cfg.seed)
    x, y, is_outlier = data.outliers(rng)
    thetas = np.linspace(-3.0, 3.0, 601)
    z = y[None, :] * thetas[:, None] * x[None, :]  # (θ, points)
    settings = {"inliers": ~is_outlier, "all": np.ones_like(is_outlier)}
    results: dict[str, Any] = {"config": _config(cfg), "theta": thetas.tolist()}
    for loss in losses:
        entry: dict[str, Any] = {}
        for setting, keep in settings.items():
            risk = loss.value(z[:, keep]).mean(axis=1)
            entry[f"risk_{setting}"] = risk.tolist()
            entry[f"theta_star_{setting}"] = _refine_minimum(loss, x[keep], y[keep], thetas, risk)
        results[loss.name] = entry
        log.info(
            f"{loss.name:>10}: θ* = {entry['theta_star_inliers']:.4f} on inliers, "
            f"{entry['theta_star_all']:.4f} with outliers"
        )
    save_json(out_dir / "results.json", results)
    figure = plots.outliers_figure(results, [loss.name for loss in losses])
    plots.finish(figure, out_dir / "outliers", cfg.save_fig, cfg.show_fig)
    return results


def _refine_minimum(
    loss: MarginLoss, x: np.ndarray, y: np.ndarray, grid: np.ndarray, risk: np.ndarray
) -> float:
    """The global minimiser on the grid (the PHuber risk is not convex), refined between its
    neighbours."""
    i = int(np.argmin(risk))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    result = minimize_scalar(
        lambda t: loss.value(y * t * x).mean(), bounds=(lo, hi), method="bounded"
    )
    return float(result.x)
