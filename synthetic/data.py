"""Synthetic data sets, drawn for all repeats at once from one ``numpy.random.Generator``."""

import numpy as np

# Long & Servedio (2010): a large-margin pair, a "puller" pair and a "penalizer" pair of atoms,
# with weights 1:1:1:1:2:2; the label is the sign of the first coordinate.
_ATOM_WEIGHTS = np.array([1.0, 1.0, 1.0, 1.0, 2.0, 2.0]) / 8.0


def long_servedio_atoms(gamma: float) -> np.ndarray:
    """The six atoms (6, 2): (±1, 0), ±(γ, 5γ), ±(γ, −γ)."""
    return np.array(
        [
            [1, 0],
            [-1, 0],
            [gamma, 5 * gamma],
            [-gamma, -5 * gamma],
            [gamma, -gamma],
            [-gamma, gamma],
        ]
    )


def long_servedio(
    rng: np.random.Generator,
    n_repeat: int,
    n: int,
    gamma: float,
    var: float,
    corrupt_prob: float,
    mixture: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """``n_repeat`` data sets of ``n`` points: features ``(R, n, 2)`` and ±1 labels ``(R, n)``.

    With ``mixture`` each point is drawn from an isotropic Gaussian of variance ``var`` around its
    atom (a 6-component mixture), else it sits on the atom. Labels are flipped with probability
    ``corrupt_prob``.
    """
    atoms = long_servedio_atoms(gamma)
    x = atoms[rng.choice(len(atoms), size=(n_repeat, n), p=_ATOM_WEIGHTS)]
    if mixture:
        x = x + np.sqrt(var) * rng.standard_normal(x.shape)
    y = np.where(x[..., 0] >= 0, 1.0, -1.0)
    flip = rng.random(y.shape) < corrupt_prob
    return x, np.where(flip, -y, y)


def outliers(
    rng: np.random.Generator, n_inliers: int = 10000, n_outliers: int = 50, distance: float = 200.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1-D data: inliers from N(+1, 1) with label +1 and N(−1, 1) with label −1 (half each), and
    outliers on the wrong side, near ∓``distance``. Returns features, labels and an outlier mask."""
    half, half_out = n_inliers // 2, n_outliers // 2
    x = np.concatenate(
        [
            rng.normal(1, 1, half),
            rng.normal(-1, 1, half),
            rng.normal(-distance, 1, half_out),
            rng.normal(distance, 1, half_out),
        ]
    )
    y = np.concatenate([np.ones(half), -np.ones(half), np.ones(half_out), -np.ones(half_out)])
    is_outlier = np.arange(len(x)) >= 2 * half
    return x, y, is_outlier
