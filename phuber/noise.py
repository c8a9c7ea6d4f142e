"""Symmetric label noise, vectorised, with its own random generator."""

import numpy as np


def symmetric_noise(
    labels: np.ndarray,
    num_classes: int,
    corrupt_prob: float,
    seed: int | None = None,
    exact: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt ``labels`` with symmetric noise of rate ρ = ``corrupt_prob``.

    Each label is kept with probability 1 − ρ and otherwise replaced by a class drawn uniformly
    from the K − 1 *other* classes, so ρ is exactly the probability that a label is wrong. With
    ``exact=True`` exactly round(ρ·N) labels, chosen uniformly at random, are corrupted.

    Uses its own ``numpy.random.Generator(seed)``: NumPy's and torch's global RNGs are untouched.
    Returns ``(noisy_labels, is_noisy)``, an int64 array and a boolean mask.
    """
    if not 0.0 <= corrupt_prob <= 1.0:
        raise ValueError(f"corrupt_prob must be in [0, 1], got corrupt_prob={corrupt_prob}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 for label noise, got num_classes={num_classes}")
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    n = labels.shape[0]
    if exact:
        is_noisy = np.zeros(n, dtype=bool)
        is_noisy[rng.choice(n, size=round(corrupt_prob * n), replace=False)] = True
    else:
        is_noisy = rng.random(n) < corrupt_prob
    # An offset in 1..K-1 moves a label uniformly onto one of the other classes.
    offsets = rng.integers(1, num_classes, size=int(is_noisy.sum()))
    noisy = labels.copy()
    noisy[is_noisy] = (labels[is_noisy] + offsets) % num_classes
    return noisy, is_noisy
