"""Label noise as a row-stochastic transition matrix T (T[i, j] = P(noisy label j | true label i)),
sampled vectorised with its own random generator: symmetric, asymmetric (class-conditional flips
common in the literature) and pair-flip noise are one mechanism. Instance-dependent noise gives
each example its own row, drawn from its image (``instance_noise``)."""

import math
from dataclasses import dataclass

import numpy as np

from phuber.errors import InvalidValue

NOISE_TYPES = ("symmetric", "asymmetric", "asymmetric_block", "pairflip", "instance")
# Noise types whose transition depends on each example, known only with the data.
DATA_DEPENDENT = ("instance",)

# Asymmetric flips as in Patrini et al. (2017) and later work: true class → noisy class.
_MNIST_FLIPS = {2: 7, 3: 8, 5: 6, 6: 5, 7: 1}
# CIFAR-10: truck → automobile, bird → airplane, deer → horse, cat ↔ dog.
_CIFAR10_FLIPS = {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}
# Fashion-MNIST, as Zhang & Sabuncu (2018): boot → sneaker, sneaker → sandal, pullover → shirt,
# coat ↔ dress.
_FASHION_FLIPS = {9: 7, 7: 5, 2: 6, 4: 3, 3: 4}
# CIFAR-100: the super-class (coarse label) of each of the 100 fine classes.
# fmt: off
CIFAR100_COARSE = np.array([
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
    6, 11, 5, 10, 7, 6, 13, 15, 3, 15, 0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
    5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
    10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
    16, 19, 2, 4, 6, 19, 5, 5, 8, 19, 18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
])
# fmt: on


def _cifar100_flips() -> dict[int, int]:
    """Each fine class → the next fine class (cyclically) of its super-class."""
    flips = {}
    for coarse in range(20):
        members = np.flatnonzero(coarse == CIFAR100_COARSE)
        flips.update({int(a): int(b) for a, b in zip(members, np.roll(members, -1), strict=True)})
    return flips


ASYMMETRIC_FLIPS = {
    "mnist": _MNIST_FLIPS,
    "mnist_5k": _MNIST_FLIPS,
    "fashion_mnist": _FASHION_FLIPS,
    "cifar10": _CIFAR10_FLIPS,
    "cifar100": _cifar100_flips(),
}


def _check_rate(corrupt_prob: float) -> None:
    number = isinstance(corrupt_prob, int | float) and not isinstance(corrupt_prob, bool)
    if not (number and math.isfinite(corrupt_prob) and 0.0 <= corrupt_prob <= 1.0):
        raise InvalidValue("corrupt_prob", corrupt_prob, "in [0, 1]")


def transition_matrix(
    noise_type: str, num_classes: int, corrupt_prob: float, dataset_name: str | None = None
) -> np.ndarray:
    """The K×K row-stochastic matrix of a noise model with rate ρ = ``corrupt_prob``.

    - ``symmetric``: T = (1 − ρ)·I + ρ/(K − 1) off the diagonal.
    - ``asymmetric``: each class listed for ``dataset_name`` in ``ASYMMETRIC_FLIPS`` goes to its
      partner with probability ρ; the other classes are kept.
    - ``asymmetric_block`` (CIFAR-100 only): class c goes to the next class of its block of 5
      consecutive indices (cyclically: 4 → 0, 9 → 5, …) with probability ρ, as Patrini et al.'s
      ``noisify_cifar100_asymmetric`` (and the code of GCE, SCE and Active-Passive Losses) does.
      The blocks are not CIFAR-100's super-classes, which ``asymmetric`` follows.
    - ``pairflip``: class c goes to c + 1 (mod K) with probability ρ.
    """
    _check_rate(corrupt_prob)
    k = num_classes
    if noise_type == "symmetric":
        if k < 2:
            raise InvalidValue("num_classes", k, ">= 2 for label noise")
        return np.full((k, k), corrupt_prob / (k - 1)) + np.eye(k) * (
            1 - corrupt_prob * k / (k - 1)
        )
    if noise_type == "asymmetric_block":
        if dataset_name != "cifar100":
            raise InvalidValue(
                "noise_type", noise_type, f"used with cifar100, not {dataset_name!r}"
            )
        block = (1 - corrupt_prob) * np.eye(5) + corrupt_prob * np.roll(np.eye(5), 1, axis=1)
        return np.kron(np.eye(k // 5), block)
    if noise_type == "pairflip":
        return (1 - corrupt_prob) * np.eye(k) + corrupt_prob * np.roll(np.eye(k), 1, axis=1)
    if noise_type == "asymmetric":
        if dataset_name not in ASYMMETRIC_FLIPS:
            raise InvalidValue(
                "noise_type",
                noise_type,
                f"used with one of {sorted(ASYMMETRIC_FLIPS)}: there "
                f"is no class mapping for dataset {dataset_name!r}",
            )
        matrix = np.eye(k)
        for source, target in ASYMMETRIC_FLIPS[dataset_name].items():
            matrix[source, source] = 1 - corrupt_prob
            matrix[source, target] = corrupt_prob
        return matrix
    if noise_type in DATA_DEPENDENT:
        raise InvalidValue("noise_type", noise_type, "class-conditional (use instance_noise)")
    raise InvalidValue("noise_type", noise_type, f"one of {list(NOISE_TYPES)}")


def check_noise(noise_type: str, corrupt_prob: float) -> None:
    """Raise ``InvalidValue`` for a noise type or rate no noise model takes (for the types
    ``transition_matrix`` cannot build alone)."""
    if noise_type not in NOISE_TYPES:
        raise InvalidValue("noise_type", noise_type, f"one of {list(NOISE_TYPES)}")
    _check_rate(corrupt_prob)


@dataclass
class InstanceNoise:
    """Instance-dependent labels: ``probs[i]`` is example i's distribution of noisy labels, and
    ``transition`` its mean over each true class (the class-level T a loss correction can use)."""

    labels: np.ndarray
    is_noisy: np.ndarray
    probs: np.ndarray
    transition: np.ndarray


def instance_noise(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    rate: float,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    seed: int | None = None,
) -> InstanceNoise:
    """Part/instance-dependent noise of Xia et al. (NeurIPS 2020), as the literature generates it.

    Each example's flip rate q_i ~ N(ρ, 0.1²) truncated to [0, 1]; a projection W ~ N(0, 1) of
    shape K × d × K (d: pixels of the flattened image, normalised with ``mean`` and ``std``);
    scores s = x_i·W[y_i] with s[y_i] = −∞; example i keeps its label with probability 1 − q_i
    and otherwise takes class j with probability q_i·softmax(s)_j. One ``numpy`` generator seeded
    with ``seed`` draws everything, in this order; the work is a matrix product per class.
    """
    _check_rate(rate)
    labels = np.asarray(labels, dtype=np.int64)
    n, k = labels.shape[0], num_classes
    rng = np.random.default_rng(seed)
    q = _truncated_normal(rng, rate, 0.1, n)
    d = int(np.prod(images.shape[1:]))
    w = rng.standard_normal((k, d, k), dtype=np.float32)
    channels = images.shape[1]
    shift = np.asarray(mean, np.float32).reshape(channels, 1, 1)
    scale = np.asarray(std, np.float32).reshape(channels, 1, 1)
    scores = np.empty((n, k), dtype=np.float64)
    for c in range(k):
        members = np.flatnonzero(labels == c)
        x = (images[members].astype(np.float32) / 255 - shift) / scale
        scores[members] = x.reshape(len(members), d) @ w[c]
    rows = np.arange(n)
    scores[rows, labels] = -np.inf
    scores -= scores.max(1, keepdims=True)
    others = np.exp(scores)
    probs = q[:, None] * others / others.sum(1, keepdims=True)
    probs[rows, labels] = 1 - q
    noisy = draw_rows(probs, rng.random(n))
    transition = np.zeros((k, k))
    np.add.at(transition, labels, probs)
    counts = np.bincount(labels, minlength=k)[:, None]
    transition = np.divide(transition, counts, out=np.eye(k), where=counts > 0)
    return InstanceNoise(noisy, noisy != labels, probs, transition)


def _truncated_normal(
    rng: np.random.Generator, mean: float, std: float, n: int, low: float = 0.0, high: float = 1.0
) -> np.ndarray:
    """``n`` draws of N(mean, std²) conditioned on [low, high], by redrawing those outside."""
    out = rng.normal(mean, std, n)
    outside = (out < low) | (out > high)
    while outside.any():
        out[outside] = rng.normal(mean, std, int(outside.sum()))
        outside = (out < low) | (out > high)
    return out


def apply_transition(
    labels: np.ndarray, matrix: np.ndarray, seed: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Draw each noisy label from row ``matrix[label]``: returns ``(noisy_labels, is_noisy)``.

    Vectorised (one uniform draw per label against the rows' cumulative sums) with its own
    ``numpy.random.Generator(seed)``: NumPy's and torch's global RNGs are untouched.
    """
    labels = np.asarray(labels, dtype=np.int64)
    noisy = draw_rows(matrix[labels], np.random.default_rng(seed).random(labels.shape[0]))
    return noisy, noisy != labels


def draw_rows(rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One class per row of probabilities ``rows`` (N × K), from uniforms ``u`` (N,) against the
    rows' cumulative sums."""
    cdf = np.cumsum(rows, axis=1)
    cdf[:, -1] = 1.0  # guard against rounding
    return (u[:, None] >= cdf).sum(axis=1).astype(np.int64)


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
    matrix = transition_matrix("symmetric", num_classes, corrupt_prob)
    if not exact:
        return apply_transition(labels, matrix, seed)
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    n = labels.shape[0]
    is_noisy = np.zeros(n, dtype=bool)
    is_noisy[rng.choice(n, size=round(corrupt_prob * n), replace=False)] = True
    # An offset in 1..K-1 moves a label uniformly onto one of the other classes.
    noisy = labels.copy()
    noisy[is_noisy] = (
        labels[is_noisy] + rng.integers(1, num_classes, int(is_noisy.sum()))
    ) % num_classes
    return noisy, is_noisy


def realized_transition(clean: np.ndarray, noisy: np.ndarray, num_classes: int) -> np.ndarray:
    """The empirical transition matrix: row i is the distribution of noisy labels of class i."""
    counts = np.zeros((num_classes, num_classes))
    np.add.at(counts, (clean, noisy), 1)
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
