"""GRPO advantages (unbiased std, eps), DAPO overlong shaping, dynamic-sampling group filter."""

import numpy as np
import pytest

from dlogp_jax.rl.advantages import grpo_advantages, keep_groups, overlong_penalty


def test_grpo_advantages_hand_computed():
    rewards = np.array(
        [
            [1.0, -1.0, -1.0, 1.0],  # mean 0, unbiased var 4/3
            [1.0, 1.0, 1.0, 1.0],  # constant group
            [0.5, 0.0, 0.0, 0.0],  # mean 0.125, unbiased var 0.1875/3 = 0.0625, std 0.25
        ]
    )
    got = grpo_advantages(rewards)
    assert got.shape == (3, 4) and got.dtype == np.float32
    s = np.sqrt(4.0 / 3.0) + 1e-6
    np.testing.assert_allclose(got[0], [1 / s, -1 / s, -1 / s, 1 / s], rtol=1e-6)
    assert np.all(got[1] == 0.0)
    d = 0.25 + 1e-6
    np.testing.assert_allclose(got[2], [0.375 / d, -0.125 / d, -0.125 / d, -0.125 / d], rtol=1e-7)
    # The population std (ddof=0, std 0.2165) would give 1.732 instead of 1.5 for the outlier.
    assert abs(float(got[2, 0]) - 1.5) < 1e-4


def test_grpo_advantages_eps_matters_for_tiny_spread():
    # mean 5e-7, unbiased std sqrt(2)·5e-7: A = ±5e-7 / (7.0711e-7 + 1e-6) = ±0.29289.
    got = grpo_advantages(np.array([[0.0, 1e-6]]))
    want = 5e-7 / (np.sqrt(2) * 5e-7 + 1e-6)
    np.testing.assert_allclose(got[0], [-want, want], rtol=1e-5)
    got = grpo_advantages(np.array([[0.0, 1e-6]]), eps=0.0)
    np.testing.assert_allclose(got[0], [-1 / np.sqrt(2), 1 / np.sqrt(2)], rtol=1e-5)


def test_grpo_advantages_single_response_and_dapo_rewards():
    # verl: a group of one gets mean 0, std 1, i.e. the raw score / (1 + eps).
    got = grpo_advantages(np.array([[1.0], [-1.0], [0.3]]))
    np.testing.assert_allclose(got[:, 0], [1 / (1 + 1e-6), -1 / (1 + 1e-6), 0.3 / (1 + 1e-6)])
    # One correct of 16 (+1 / −1 rewards): mean −0.875, unbiased std sqrt(16·0.234375/15).
    r = -np.ones((1, 16))
    r[0, 3] = 1.0
    std = np.sqrt(np.sum((r - r.mean()) ** 2) / 15)
    got = grpo_advantages(r)
    np.testing.assert_allclose(got[0, 3], 1.875 / (std + 1e-6), rtol=1e-6)
    np.testing.assert_allclose(got[0, 0], -0.125 / (std + 1e-6), rtol=1e-6)
    np.testing.assert_allclose(got.sum(), 0.0, atol=1e-5)


@pytest.mark.parametrize(
    "length, want",
    [(0, 0.0), (8, 0.0), (12, 0.0), (13, -0.25), (14, -0.5), (15, -0.75), (16, -1.0)],
)
def test_overlong_penalty_values(length, want):
    got = overlong_penalty(np.array([length]), max_len=16, buffer=4)
    np.testing.assert_allclose(got, [want], atol=1e-12)


def test_overlong_penalty_shapes_factor_and_disable():
    lengths = np.array([[4096, 6144], [8192, 100]])  # Qwen2.5-Math-7B budget (docs/method.md §4)
    got = overlong_penalty(lengths, max_len=8192, buffer=4096)
    np.testing.assert_allclose(got, [[0.0, -0.5], [-1.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(
        overlong_penalty(lengths, max_len=8192, buffer=4096, factor=0.5), 0.5 * got, atol=1e-12
    )
    assert np.all(overlong_penalty(lengths, max_len=8192, buffer=0) == 0.0)
    assert overlong_penalty(lengths, max_len=8192, buffer=0).shape == (2, 2)


def test_keep_groups_drops_uniform_accuracy():
    acc = np.array(
        [
            [1, 1, 1, 1],  # all correct: dropped
            [0, 0, 0, 0],  # all wrong: dropped
            [1, 0, 0, 0],
            [0, 1, 1, 1],
        ]
    )
    np.testing.assert_array_equal(keep_groups(acc), [False, False, True, True])
    assert keep_groups(acc).dtype == bool
    np.testing.assert_array_equal(keep_groups(np.array([[1.0], [0.0]])), [False, False])
