import numpy as np
import pytest
import torch

from phuber.noise import symmetric_noise


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


from phuber.noise import (  # noqa: E402
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
    with pytest.raises(ValueError, match="no class mapping for dataset 'fashion_mnist'"):
        transition_matrix("asymmetric", 10, 0.2, "fashion_mnist")
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
