"""Blocked attention equals unblocked attention; RoPE scaling by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlogp_jax.model import layers
from dlogp_jax.model.config import RopeConfig


@pytest.mark.parametrize("t, q_block", [(37, 8), (32, 8), (5, 8)])
def test_blocked_attention_matches_unblocked(t, q_block):
    kq, kk, kv, km = jax.random.split(jax.random.key(0), 4)
    q = jax.random.normal(kq, (2, t, 4, 8))
    k = jax.random.normal(kk, (2, t, 2, 8))
    v = jax.random.normal(kv, (2, t, 2, 8))
    mask = jnp.tril(jnp.ones((t, t), bool))[None] & jax.random.bernoulli(km, 0.8, (2, 1, t))
    full = layers.attention(q, k, v, mask, q_block=10_000)
    blocked = layers.attention(q, k, v, mask, q_block=q_block)
    np.testing.assert_allclose(blocked, full, atol=1e-6)


def test_llama3_rope_scaling_by_hand():
    rope = RopeConfig(
        theta=10000.0,
        rope_type="llama3",
        factor=8.0,
        low_freq_factor=1.0,
        high_freq_factor=4.0,
        original_max_position_embeddings=64,
    )
    inv = 1.0 / 10000.0 ** (np.arange(0, 16, 2) / 16)
    got = layers.rope_inv_freq(rope, 16)
    wavelen = 2 * np.pi / inv
    for g, i, w in zip(got, inv, wavelen, strict=True):
        if w < 64 / 4:  # high frequencies unchanged
            assert g == pytest.approx(i)
        elif w > 64:  # low frequencies divided by the factor
            assert g == pytest.approx(i / 8)
        else:  # smooth interpolation in between
            s = (64 / w - 1) / 3
            assert g == pytest.approx((1 - s) * i / 8 + s * i)
