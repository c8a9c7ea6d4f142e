import json

import numpy as np
import pytest
from conftest import CONF
from hydra import compose, initialize_config_dir
from omegaconf import open_dict
from scipy.special import expit

from phuber.core.errors import ConfigError
from synthetic import data, experiments, linear
from synthetic.losses import Huberised, Logistic, PartiallyHuberised

LOSSES = [Logistic(), Huberised(tau=0.26), Huberised(tau=0.1), PartiallyHuberised(tau=1.36)]
LOSSES += [PartiallyHuberised(tau=2.0)]
Z = np.concatenate([np.linspace(-30, 30, 601), [-1.0296, -0.3, 0.3]])


@pytest.mark.parametrize("loss", LOSSES, ids=lambda loss: f"{loss.name}")
def test_gradient_matches_finite_differences(loss):
    h = 1e-6
    numeric = (loss.value(Z + h) - loss.value(Z - h)) / (2 * h)
    np.testing.assert_allclose(loss.grad(Z), numeric, atol=1e-6)


def test_closed_forms():
    z = np.linspace(-20, 20, 401)
    np.testing.assert_allclose(Logistic().value(z), np.log1p(np.exp(-z)), rtol=1e-12)
    phuber = PartiallyHuberised(tau=1.36)
    p = expit(z)
    expected = np.where(p <= 1 / 1.36, -1.36 * p + np.log(1.36) + 1, -np.log(p))
    np.testing.assert_allclose(phuber.value(z), expected, rtol=1e-10, atol=1e-12)
    huber = Huberised(tau=0.26)
    assert np.abs(huber.grad(z)).max() <= 0.26 + 1e-12  # the clipped slope
    above = z > huber.z0
    np.testing.assert_allclose(huber.value(z)[above], Logistic().value(z)[above])
    # continuity at the thresholds
    for loss in (huber, phuber):
        assert (
            abs(loss.value(np.array(loss.z0 - 1e-9)) - loss.value(np.array(loss.z0 + 1e-9))) < 1e-7
        )


def test_risk_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 2)), np.sign(rng.normal(size=200))
    for loss in LOSSES:
        w = rng.normal(size=2)
        _, grad = linear.risk_and_grad(w, x, y, loss)
        numeric = [
            (
                linear.risk_and_grad(w + e, x, y, loss)[0]
                - linear.risk_and_grad(w - e, x, y, loss)[0]
            )
            / 2e-6
            for e in np.eye(2) * 1e-6
        ]
        np.testing.assert_allclose(grad, numeric, atol=1e-6)


def test_long_servedio_statistics():
    rng = np.random.default_rng(0)
    gamma, var = 1 / 24, 1e-4
    x, y = data.long_servedio(rng, 50, 2000, gamma, var, corrupt_prob=0.2)
    assert x.shape == (50, 2000, 2) and y.shape == (50, 2000)
    atoms = data.long_servedio_atoms(gamma)
    nearest = np.argmin(((x[..., None, :] - atoms) ** 2).sum(-1), axis=-1)
    frequencies = np.bincount(nearest.ravel(), minlength=6) / nearest.size
    np.testing.assert_allclose(frequencies, [1 / 8] * 4 + [1 / 4] * 2, atol=0.005)
    residual = x - atoms[nearest]
    assert residual.var() == pytest.approx(var, rel=0.02)
    clean = np.where(x[..., 0] >= 0, 1.0, -1.0)
    assert (y != clean).mean() == pytest.approx(0.2, abs=0.005)
    x_atoms, y_clean = data.long_servedio(rng, 2, 100, gamma, var, 0.0, mixture=False)
    assert set(map(tuple, x_atoms.reshape(-1, 2).round(6))) <= set(map(tuple, atoms.round(6)))
    assert (y_clean == np.where(x_atoms[..., 0] >= 0, 1, -1)).all()


def test_outlier_data():
    x, y, is_outlier = data.outliers(np.random.default_rng(0))
    assert len(x) == 10050 and is_outlier.sum() == 50
    assert abs(x[(y == 1) & ~is_outlier].mean() - 1) < 0.05
    assert (x[is_outlier] * y[is_outlier] < -190).all()  # far on the wrong side


def compose_synthetic(name, *overrides):
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        return compose(config_name=f"synthetic/{name}", overrides=list(overrides))


def test_long_servedio_in_process_matches_paper(tmp_path):
    cfg = compose_synthetic("long_servedio", "n_repeat=40", "seed=0", "save_fig=true")
    results = experiments.long_servedio(cfg, tmp_path)
    assert results["phuber"]["test_acc_mean"] > 0.97
    assert results["logistic"]["test_acc_mean"] < 0.65
    assert results["huberised"]["test_acc_mean"] < 0.6
    saved = json.loads((tmp_path / "results.json").read_text())
    for name in ("logistic", "huberised", "phuber"):
        for key in ("train_loss", "test_loss", "train_acc", "test_acc"):
            assert f"{key}_mean" in saved[name] and f"{key}_std" in saved[name]
        assert len(saved[name]["test_acc"]) == 40
        assert saved[name]["test_acc_mean"] == pytest.approx(np.mean(saved[name]["test_acc"]))
    assert (tmp_path / "long_servedio.png").is_file() and (tmp_path / "long_servedio.pdf").is_file()
    (tmp_path / "again").mkdir()
    again = experiments.long_servedio(cfg, tmp_path / "again")
    assert again["phuber"]["test_acc"] == results["phuber"]["test_acc"]  # seed 0 reproduces


def test_lbfgsb_and_no_figures(tmp_path):
    cfg = compose_synthetic(
        "long_servedio", "n_repeat=5", "seed=1", "method=lbfgsb", "save_fig=false"
    )
    results = experiments.long_servedio(cfg, tmp_path)
    assert results["phuber"]["test_acc_mean"] > 0.95
    assert not list(tmp_path.glob("*.png"))


def test_outliers_in_process(tmp_path):
    results = experiments.outliers(compose_synthetic("outliers", "seed=0"), tmp_path)
    assert results["logistic"]["theta_star_inliers"] == pytest.approx(2.0, abs=0.15)  # 2μ/σ²
    assert abs(results["logistic"]["theta_star_all"]) < 0.1  # dragged to 0 by the outliers
    assert abs(results["huberised"]["theta_star_all"]) < 0.1
    assert results["phuber"]["theta_star_all"] > 1  # unmoved
    assert (tmp_path / "outliers.png").is_file() and (tmp_path / "outliers.pdf").is_file()


def test_bad_tau_is_a_config_error(tmp_path):
    cfg = compose_synthetic("long_servedio", "phuber_tau=0.5")
    with pytest.raises(ConfigError, match="phuber_tau must be > 1"):
        experiments.long_servedio(cfg, tmp_path)
    with open_dict(cfg):
        cfg.phuber_tau, cfg.method = 2.0, "newton"
    with pytest.raises(ConfigError, match="method='newton'"):
        experiments.long_servedio(cfg, tmp_path)


def test_scripts_start_as_is(cli, tmp_path):
    """Both scripts' real entry points (in this process): outputs, and a bad value's exit 2."""
    code, output = cli("synthetic_1.py", "n_repeat=3", "seed=0")
    assert code == 0, output
    assert list((tmp_path / "outputs" / "synthetic_1").glob("*/*/results.json"))
    code, output = cli("synthetic_2.py", "seed=0")
    assert code == 0, output
    assert list((tmp_path / "outputs" / "synthetic_2").glob("*/*/outliers.png"))
    code, output = cli("synthetic_1.py", "huber_tau=2")
    assert code == 2 and "huber_tau must be in (0, 1)" in output
    assert "Traceback" not in output
