"""Blocked attention (all keys, or causal skipping the keys above the diagonal) and JAX's fused
attention equal unblocked attention, values and gradients; RoPE scaling by hand."""

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


def _qkv_mask(t, key=1):
    """GQA inputs and a causal mask with left padding and random dropped keys (B = 2)."""
    kq, kk, kv, km = jax.random.split(jax.random.key(key), 4)
    q = jax.random.normal(kq, (2, t, 4, 8))
    k = jax.random.normal(kk, (2, t, 2, 8))
    v = jax.random.normal(kv, (2, t, 2, 8))
    keep = jax.random.bernoulli(km, 0.8, (2, 1, t)).at[1, :, :5].set(False)  # row 1: 5 pads
    return q, k, v, jnp.tril(jnp.ones((t, t), bool))[None] & keep


@pytest.mark.parametrize("t", [37, 32])
def test_causal_blocks_skip_keys_above_the_diagonal_exactly(t):
    q, k, v, mask = _qkv_mask(t)
    full = lambda q, k, v: layers.attention(q, k, v, mask, q_block=10_000)
    causal = lambda q, k, v: layers.attention(q, k, v, mask, q_block=8, causal=True)
    # fully masked (padding) queries: any finite output, never read by a real token
    real = mask.any(-1)
    np.testing.assert_allclose(
        np.asarray(causal(q, k, v))[real], np.asarray(full(q, k, v))[real], atol=1e-6
    )
    # training differentiates through the blocks (checkpointed): same gradients
    weight = real[:, :, None, None]
    loss = lambda f: lambda *a: jnp.sum(jnp.where(weight, jnp.sin(f(*a)), 0.0))
    want = jax.grad(loss(full), argnums=(0, 1, 2))(q, k, v)
    got = jax.grad(loss(causal), argnums=(0, 1, 2))(q, k, v)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-5)
    # the first query block scores its 8 keys only, not all T
    assert "tensor<2x2x2x8x8xf32>" in jax.jit(causal).lower(q, k, v).as_text()


def test_fused_attention_argument_layout_matches():
    """The accelerator path's arguments (mask broadcast over heads, GQA, fp32 scores), run
    here with JAX's XLA implementation (cuDNN needs a GPU and bf16)."""
    q, k, v, mask = _qkv_mask(19, key=2)
    want = layers.attention(q, k, v, mask)
    got = layers.fused_attention(q, k, v, mask, implementation="xla")
    real = mask.any(-1)  # fully masked (padding) queries: any finite output is fine
    np.testing.assert_allclose(np.asarray(got)[real], np.asarray(want)[real], atol=1e-5)
    assert layers.fused_attention(q, k, v, mask, implementation="cudnn") is None  # CPU refuses


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
