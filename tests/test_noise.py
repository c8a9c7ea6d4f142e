import json
import math

import numpy as np
import pytest
import torch

from phuber.datasets.noise import symmetric_noise


def test_rate_and_uniform_over_other_classes():
    labels = np.repeat(np.arange(10), 20000)
    noisy, is_noisy = symmetric_noise(labels, 10, 0.4, seed=0)
    assert noisy.dtype == np.int64 and is_noisy.dtype == bool
    np.testing.assert_array_equal(is_noisy, noisy != labels)  # corrupted = changed
    n = len(labels)
    assert abs(is_noisy.mean() - 0.4) < 4 * np.sqrt(0.4 * 0.6 / n)
    # Corrupted labels of class 3 land on each of the 9 other classes with probability 1/9.
    landed = np.bincount(noisy[(labels == 3) & is_noisy], minlength=10)
    assert landed[3] == 0
    share = landed[np.arange(10) != 3] / landed.sum()
    assert np.abs(share - 1 / 9).max() < 0.02


@pytest.mark.parametrize("rho", [0.0, 0.2, 0.6, 1.0])
def test_exact_corrupts_round_rho_n(rho):
    labels = np.random.default_rng(1).integers(0, 10, 1001)
    noisy, is_noisy = symmetric_noise(labels, 10, rho, seed=3, exact=True)
    assert is_noisy.sum() == round(rho * 1001)
    assert (noisy[is_noisy] != labels[is_noisy]).all()
    assert (noisy[~is_noisy] == labels[~is_noisy]).all()


def test_seeded_and_leaves_global_rngs_alone():
    labels = np.arange(1000) % 10
    np.random.seed(123)
    torch.manual_seed(123)
    expected_np, expected_torch = np.random.rand(), torch.rand(1)
    np.random.seed(123)
    torch.manual_seed(123)
    a = symmetric_noise(labels, 10, 0.5, seed=7)
    b = symmetric_noise(labels, 10, 0.5, seed=7)
    assert np.random.rand() == expected_np and torch.rand(1) == expected_torch
    np.testing.assert_array_equal(a[0], b[0])
    c = symmetric_noise(labels, 10, 0.5, seed=8)
    assert (a[0] != c[0]).any()


@pytest.mark.parametrize("rho", [-0.1, 1.01, 2])
def test_invalid_rate(rho):
    with pytest.raises(ValueError, match=r"corrupt_prob must be in \[0, 1\]"):
        symmetric_noise(np.zeros(5, dtype=int), 10, rho)


from phuber.datasets.noise import (  # noqa: E402
    CIFAR100_COARSE,
    apply_transition,
    realized_transition,
    transition_matrix,
)


@pytest.mark.parametrize(
    "noise_type,k,dataset",
    [
        ("symmetric", 10, None),
        ("pairflip", 10, None),
        ("asymmetric", 10, "mnist"),
        ("asymmetric", 10, "cifar10"),
        ("asymmetric", 100, "cifar100"),
        ("symmetric", 100, None),
    ],
)
def test_transition_matrices_are_row_stochastic(noise_type, k, dataset):
    matrix = transition_matrix(noise_type, k, 0.3, dataset)
    assert matrix.shape == (k, k) and (matrix >= 0).all()
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)


def test_listed_entries():
    sym = transition_matrix("symmetric", 10, 0.4)
    assert sym[3, 3] == pytest.approx(0.6) and sym[3, 7] == pytest.approx(0.4 / 9)
    pair = transition_matrix("pairflip", 10, 0.4)
    assert pair[9, 0] == pytest.approx(0.4) and pair[4, 5] == pytest.approx(0.4)
    mnist = transition_matrix("asymmetric", 10, 0.4, "mnist")
    for src, dst in {2: 7, 3: 8, 5: 6, 6: 5, 7: 1}.items():
        assert mnist[src, src] == pytest.approx(0.6) and mnist[src, dst] == pytest.approx(0.4)
    for kept in (0, 1, 4, 8, 9):
        assert mnist[kept, kept] == 1.0
    cifar = transition_matrix("asymmetric", 10, 0.4, "cifar10")
    # truck→automobile, bird→airplane, deer→horse, cat↔dog
    for src, dst in {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}.items():
        assert cifar[src, dst] == pytest.approx(0.4)
    c100 = transition_matrix("asymmetric", 100, 0.4, "cifar100")
    off = c100 - np.diag(np.diag(c100))
    targets = off.argmax(axis=1)
    assert (CIFAR100_COARSE[targets] == CIFAR100_COARSE).all()  # within the super-class
    assert sorted(targets) == list(range(100))  # a permutation: each class is hit once


def test_unknown_inputs():
    with pytest.raises(ValueError, match="no class mapping for dataset 'toy'"):
        transition_matrix("asymmetric", 10, 0.2, "toy")
    fashion = transition_matrix("asymmetric", 10, 0.2, "fashion_mnist")
    assert fashion[9, 7] == fashion[3, 4] == fashion[4, 3] == 0.2 and fashion[0, 0] == 1.0
    with pytest.raises(ValueError, match="noise_type must be one of"):
        transition_matrix("uniform", 10, 0.2)


@pytest.mark.parametrize("noise_type,dataset", [("asymmetric", "cifar10"), ("pairflip", None)])
def test_realized_flips_match_matrix(noise_type, dataset):
    matrix = transition_matrix(noise_type, 10, 0.35, dataset)
    labels = np.repeat(np.arange(10), 20000)
    noisy, is_noisy = apply_transition(labels, matrix, seed=0)
    np.testing.assert_array_equal(is_noisy, noisy != labels)
    realized = realized_transition(labels, noisy, 10)
    # binomial standard error with n = 20000 per row is at most 0.0035: allow 4 of them
    np.testing.assert_allclose(realized, matrix, atol=0.014)
    assert realized[matrix == 0].max() == 0  # never a flip the matrix forbids


def test_cifar100_block_asymmetric_noise_is_patrinis():
    """Written from Patrini et al.'s construction: (1 − ρ)·I within each block of 5 consecutive
    classes, ρ on i → i + 1, and the block's last class → its first."""
    rho = 0.4
    expected = np.eye(100) * (1 - rho)
    for start in range(0, 100, 5):
        for i in range(start, start + 4):
            expected[i, i + 1] = rho
        expected[start + 4, start] = rho
    np.testing.assert_allclose(
        transition_matrix("asymmetric_block", 100, rho, "cifar100"), expected
    )
    with pytest.raises(ValueError, match="used with cifar100"):
        transition_matrix("asymmetric_block", 10, rho, "cifar10")
    # Not the super-class variant: class 0 (apple, super-class 4) goes to 1 here, elsewhere there.
    assert transition_matrix("asymmetric", 100, rho, "cifar100")[0, 1] == 0


# -- instance-dependent noise (Xia et al., 2020) ------------------------------------------------

from phuber.datasets.noise import instance_noise  # noqa: E402

MNIST_LIKE = ((0.13,), (0.31,))


def instance_data(n=20000, k=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 1, 28, 28), dtype=np.uint8), rng.integers(0, k, n)


@pytest.mark.parametrize("rate", [0.2, 0.4, 0.6])
def test_instance_noise_rate_and_rows(rate):
    images, labels = instance_data()
    drawn = instance_noise(images, labels, 10, rate, seed=3)
    n = len(labels)
    standard_error = math.sqrt(rate * (1 - rate) / n + 0.1**2 / n)
    assert abs(drawn.is_noisy.mean() - rate) < 4 * standard_error
    np.testing.assert_allclose(drawn.probs.sum(1), 1, rtol=1e-6)  # float32, as the reference
    np.testing.assert_allclose(drawn.transition.sum(1), 1)
    assert (drawn.labels == labels).sum() == (~drawn.is_noisy).sum()
    realized = realized_transition(labels, drawn.labels, 10)
    assert np.abs(realized - drawn.transition).max() < 0.05  # the draws follow the rows


def test_instance_noise_depends_on_the_image():
    """Two images of one class get different flip rates, and different classes to flip to."""
    images, labels = instance_data(2000)
    drawn = instance_noise(images, labels, 10, 0.4, seed=0)
    a, b = np.flatnonzero(labels == 3)[:2]
    keep = drawn.probs[[a, b], 3]
    assert keep[0] != keep[1]
    others = np.delete(drawn.probs[[a, b]], 3, axis=1) / (1 - keep[:, None])
    assert np.abs(others[0] - others[1]).max() > 0.1
    assert abs(drawn.probs[labels == 3, 3].mean() - 0.6) < 0.03  # kept with 1 − q, E[q] = ρ


def test_instance_noise_is_reproducible_and_seeded_by_its_seed_only():
    images, labels = instance_data(3000)
    np.random.seed(1)
    torch.manual_seed(1)
    first = instance_noise(images, labels, 10, 0.4, seed=5)
    np.random.seed(2)
    torch.manual_seed(2)
    again = instance_noise(images, labels, 10, 0.4, seed=5)
    other = instance_noise(images, labels, 10, 0.4, seed=6)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert (first.labels != other.labels).any()


def reference_instance_labels(images, labels, num_classes, rate, seed):
    """Written from ``get_instance_noisy_label`` (xiaoboxia/Part-dependent-label-noise,
    tools.py at b682527), on the CPU: NumPy's global generator seeded with ``seed``; flip rates
    from scipy's truncnorm on [0, 1] around ρ with σ = 0.1; W = randn(K, d, K) as a float32
    tensor; per example, raw pixels (float32) @ W[y], own class -inf, q·softmax, + (1 − q) on
    y; then one np.random.choice per example."""
    from scipy import stats

    np.random.seed(seed)
    std = 0.1
    flip_rate = stats.truncnorm((0 - rate) / std, (1 - rate) / std, loc=rate, scale=std).rvs(
        labels.shape[0]
    )
    w = torch.FloatTensor(np.random.randn(num_classes, images[0].size, num_classes))
    rows = []
    for i, (x, y) in enumerate(zip(torch.from_numpy(images).float(), labels, strict=True)):
        a = x.view(1, -1).mm(w[y]).squeeze(0)
        a[y] = -math.inf
        a = flip_rate[i] * torch.softmax(a, dim=0)
        a[y] += 1 - flip_rate[i]
        rows.append(a)
    probs = torch.stack(rows).numpy()
    new = [np.random.choice(range(num_classes), p=probs[i]) for i in range(labels.shape[0])]
    return np.array(new), probs, flip_rate


def test_instance_noise_is_the_reference_codes():
    """Same seed, same draws: the flip rates equal, the per-example probabilities equal to
    float32 rounding (their per-example product against our per-class one), the labels equal."""
    from phuber.datasets.load import load_arrays

    images, labels = load_arrays("mnist_5k", "", train=True)
    images, labels = images[:600].numpy(), labels[:600].numpy()
    want, want_probs, flip_rate = reference_instance_labels(images, labels, 10, 0.4, seed=3)
    drawn = instance_noise(images, labels, 10, 0.4, seed=3)
    np.testing.assert_allclose(1 - drawn.probs[np.arange(600), labels], flip_rate, rtol=1e-5)
    np.testing.assert_allclose(drawn.probs, want_probs, atol=1e-4)
    np.testing.assert_array_equal(drawn.labels, want)


def test_instance_noise_at_rate_0_flips_nothing():
    images, labels = instance_data(500)
    drawn = instance_noise(images, labels, 10, 0.0, seed=1)
    assert not drawn.is_noisy.any() and np.array_equal(drawn.transition, np.eye(10))


def test_raw_features_concentrate_each_examples_flips():
    """On real digits, the reference's raw pixels (scores in the thousands) give each example
    one flip target (99.9% of its flip probability); the normalised variant
    (noise_type=instance_normalized) spreads more of it: other noise, the same rates."""
    from phuber.datasets.load import load_arrays

    images, labels = (t.numpy() for t in load_arrays("mnist_5k", "", train=True))
    peaks = {}
    for name, normalize in (("raw", None), ("normalized", MNIST_LIKE)):
        drawn = instance_noise(images, labels, 10, 0.4, seed=0, normalize=normalize)
        others = drawn.probs.copy()
        others[np.arange(len(labels)), labels] = 0
        peaks[name] = float((others.max(1) / others.sum(1)).mean())
        assert abs(drawn.is_noisy.mean() - 0.4) < 0.03
    assert peaks["raw"] > 0.99 and peaks["normalized"] < 0.97, peaks


def test_instance_noise_trains_with_forward_correction(tiny_cfg, tmp_path):
    """The same override path as the other noise types; the forward correction gets the data's
    class-level matrix; the realized rate and matrix are recorded."""
    from phuber.training import run as train

    overrides = ("dataset.train.noise_type=instance", "dataset.train.corrupt_prob=0.4")
    train.run(tiny_cfg("loss=forward", *overrides), tmp_path)
    data = json.loads((tmp_path / "metrics.json").read_text())["data"]
    assert abs(data["realized_noise_rate"] - 0.4) < 0.04
    assert np.allclose(np.sum(data["transition_matrix"], 1), 1, atol=1e-5)
