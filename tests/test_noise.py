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
