"""Label noise as a row-stochastic transition matrix T (T[i, j] = P(noisy label j | true label i)),
sampled vectorised with its own random generator: symmetric, asymmetric (class-conditional flips
common in the literature) and pair-flip noise are one mechanism. Instance-dependent noise gives
each example its own row, drawn from its image (``instance_noise``)."""

from dataclasses import dataclass

import numpy as np

from phuber.core.domains import Choice, Real
from phuber.core.errors import InvalidValue

NOISE_TYPES = (
    "symmetric",
    "asymmetric",
    "asymmetric_block",
    "pairflip",
    "instance",
    "instance_normalized",
)
# dataset.train.corrupt_prob and noise_type, as the noise models take them
CORRUPT_PROB = Real(0, 1, float32=False)  # ρ, the probability that a label is corrupted
NOISE_TYPE = Choice(NOISE_TYPES)
# Noise types whose transition depends on each example, known only with the data.
DATA_DEPENDENT = ("instance", "instance_normalized")

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
    try:
        CORRUPT_PROB.check(corrupt_prob)
    except ValueError as err:
        raise InvalidValue("corrupt_prob", corrupt_prob, str(err)) from None


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
    raise InvalidValue("noise_type", noise_type, NOISE_TYPE.allowed())


def check_noise(noise_type: str, corrupt_prob: float) -> None:
    """Raise ``InvalidValue`` for a noise type or rate no noise model takes (for the types
    ``transition_matrix`` cannot build alone)."""
    if noise_type not in NOISE_TYPES:
        raise InvalidValue("noise_type", noise_type, NOISE_TYPE.allowed())
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
    seed: int | None = None,
    normalize: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
) -> InstanceNoise:
    """Part/instance-dependent noise of Xia et al. (NeurIPS 2020), made as their code makes it
    (``get_instance_noisy_label`` in xiaoboxia/Part-dependent-label-noise, ``tools.py``; the copy
    CDR and later papers use).

    One ``numpy.random.RandomState(seed)`` draws, in the reference's order: the flip rates
    q_i ~ N(ρ, 0.1²) truncated to [0, 1] (``scipy.stats.truncnorm``), a projection W ~ N(0, 1)
    of shape K × d × K, then one uniform per example for its label. Features are the raw pixel
    values 0–255 of the flattened image (channels first, as CIFAR's files store them), in
    float32 as theirs; scores s = x_i·W[y_i] with s[y_i] = −∞; example i keeps its label with
    probability 1 − q_i and takes class j with probability q_i·softmax(s)_j, drawn as
    ``np.random.choice`` draws. ρ = 0 flips nothing (the reference, never run there, would draw
    q_i around 0 and flip about 8%). ``normalize=(mean, std)`` normalises the features per
    channel first (``noise_type=instance_normalized``: the same flip rates, other flip targets;
    not the reference's).
    """
    _check_rate(rate)
    labels = np.asarray(labels, dtype=np.int64)
    n, k = labels.shape[0], num_classes
    if rate == 0:
        probs = np.eye(k, dtype=np.float32)[labels]
        return InstanceNoise(labels.copy(), np.zeros(n, dtype=bool), probs, np.eye(k))
    from scipy import stats

    rng = np.random.RandomState(_mt_seed(seed))
    std = 0.1
    q = stats.truncnorm((0 - rate) / std, (1 - rate) / std, loc=rate, scale=std).rvs(
        n, random_state=rng
    )
    d = int(np.prod(images.shape[1:]))
    w = rng.randn(k, d, k).astype(np.float32)
    scores = np.empty((n, k), dtype=np.float32)
    for c in range(k):
        members = np.flatnonzero(labels == c)
        x = images[members].astype(np.float32)
        if normalize is not None:
            mean, scale = (np.asarray(v, np.float32).reshape(-1, 1, 1) for v in normalize)
            x = (x / 255 - mean) / scale
        scores[members] = x.reshape(len(members), d) @ w[c]
    rows = np.arange(n)
    scores[rows, labels] = -np.inf
    scores -= scores.max(1, keepdims=True)
    others = np.exp(scores)
    probs = (q[:, None] * (others / others.sum(1, keepdims=True))).astype(np.float32)
    probs[rows, labels] += (1 - q).astype(np.float32)
    noisy = draw_rows(probs, rng.random_sample(n), normalize=True)
    transition = np.zeros((k, k))
    np.add.at(transition, labels, probs)
    counts = np.bincount(labels, minlength=k)[:, None]
    transition = np.divide(transition, counts, out=np.eye(k), where=counts > 0)
    return InstanceNoise(noisy, noisy != labels, probs, transition)


def _mt_seed(seed: int | None) -> int | list[int] | None:
    """A seed for ``RandomState``: the seed itself below 2³² (as the reference's
    ``np.random.seed``), else its 32-bit words."""
    if seed is None or seed < 2**32:
        return seed
    return [(seed >> shift) & 0xFFFFFFFF for shift in (0, 32)]


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


def draw_rows(rows: np.ndarray, u: np.ndarray, normalize: bool = False) -> np.ndarray:
    """One class per row of probabilities ``rows`` (N × K), from uniforms ``u`` (N,) against the
    rows' cumulative sums (``normalize``: divided by their last, as ``np.random.choice`` does;
    else the last is set to 1)."""
    cdf = np.cumsum(rows, axis=1, dtype=np.float64)
    if normalize:
        cdf /= cdf[:, -1:]
    else:
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
