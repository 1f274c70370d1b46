"""Stateless building blocks: RMSNorm, rotary embeddings, grouped-query attention, SiLU MLP.

Legend: B batch, T query positions, S key positions, D width, F MLP width, N query heads,
K kv heads, G = N // K query heads per kv head, H head dim.

All match the Hugging Face PyTorch implementations of Qwen2/Qwen3/Llama: RMSNorm computes in fp32 and
casts back; RoPE uses the "rotate half" layout (not interleaved); attention softmax runs in fp32.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from dlogp_jax.model import splash
from dlogp_jax.model.config import RopeConfig

NEG_INF = -0.7 * float(np.finfo(np.float32).max)  # finite: fully masked rows stay NaN-free


def rms_norm(x: jax.Array, weight: jax.Array, eps: float) -> jax.Array:
    """RMSNorm over the last axis, in fp32 (as HF), result in x.dtype."""
    x32 = x.astype(jnp.float32)
    x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + eps)
    return weight.astype(x.dtype) * x32.astype(x.dtype)


def rope_inv_freq(rope: RopeConfig, head_dim: int) -> np.ndarray:
    """Inverse frequencies `[H/2]` in float64, including linear and llama3 scaling."""
    inv = 1.0 / (rope.theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    if rope.rope_type == "linear":
        return inv / rope.factor
    if rope.rope_type != "llama3":
        return inv
    old = rope.original_max_position_embeddings
    low_wavelen = old / rope.low_freq_factor
    high_wavelen = old / rope.high_freq_factor
    wavelen = 2 * math.pi / inv
    scaled = np.where(wavelen > low_wavelen, inv / rope.factor, inv)
    smooth = (old / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor)
    smoothed = (1 - smooth) * scaled / rope.factor + smooth * scaled
    medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
    return np.where(medium, smoothed, scaled)


def apply_rope(x: jax.Array, positions: jax.Array, rope: RopeConfig) -> jax.Array:
    """Rotates `x [B, T, heads, H]` by `positions [B, T]` (HF rotate-half convention)."""
    head_dim = x.shape[-1]
    inv = jnp.asarray(rope_inv_freq(rope, head_dim), jnp.float32)
    angles = positions.astype(jnp.float32)[..., None] * inv  # [B, T, H/2]
    angles = jnp.concatenate([angles, angles], axis=-1)[:, :, None, :]
    cos, sin = jnp.cos(angles), jnp.sin(angles)
    x32 = x.astype(jnp.float32)
    x1, x2 = jnp.split(x32, 2, axis=-1)
    rotated = jnp.concatenate([-x2, x1], axis=-1)
    return (x32 * cos + rotated * sin).astype(x.dtype)


def attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    mask: jax.Array,
    q_block: int = 512,
    *,
    causal: bool = False,
) -> jax.Array:
    """Grouped-query attention, computed `q_block` queries at a time.

    Blocking bounds the live fp32 scores at [B, K, G, q_block, S] instead of [B, K, G, T, S] (at
    T = 4096 the unblocked scores of a 7B-width model are 7 GiB per layer). The softmax is exact,
    not an online approximation: each block sees every key it may attend to.

    `causal` says the keys are the queries' own tokens (S = T, `mask` lower-triangular: scoring,
    training). Then query block i reads only keys [0, (i + 1)·q_block): the blocks above the
    diagonal, which `mask` hides anyway, are never computed (about half the score FLOPs at long
    T; a masked key adds exactly 0 to the softmax, so the result is the same up to summation
    order). On GPU the causal case runs JAX's fused `jax.nn.dot_product_attention` (cuDNN
    flash attention), falling back to this XLA path where cuDNN refuses the inputs (fp32); on
    TPU it runs the splash-attention kernel (`model.splash`), which takes the key padding from
    the causal mask's last row (the mask `transformer` builds: causal and onto real tokens).

    Args:
      q: [B, T, N, H] queries (RoPE applied).
      k, v: [B, S, K, H] keys and values.
      mask: [B, T, S] bool, True where query t may attend key s.
      q_block: queries per block; T <= q_block runs unblocked.
      causal: the keys are the queries' tokens and `mask` is causal (static).
    Returns:
      [B, T, N, H] in q.dtype.
    """
    b, t, n, h = q.shape
    causal = causal and k.shape[1] == t
    kernel = dense_kernel() if causal else None
    if kernel == "cudnn":
        fused = fused_attention(q, k, v, mask)
        if fused is not None:
            return fused
    elif kernel == "splash":
        # the causal mask's last row is the key padding (`transformer._attention_mask`)
        interpret = jax.default_backend() != "tpu"
        return splash.causal_attention(q, k, v, mask[:, -1, :], interpret=interpret)
    if t <= q_block:
        return _attention_block(q, k, v, mask)
    # Checkpointed: the backward pass recomputes each block's probabilities instead of storing all.
    if causal:
        block = jax.checkpoint(_attention_block)
        outs = []
        for lo in range(0, t, q_block):
            hi = min(lo + q_block, t)
            outs.append(block(q[:, lo:hi], k[:, :hi], v[:, :hi], mask[:, lo:hi, :hi]))
        return jnp.concatenate(outs, axis=1)
    pad = -t % q_block
    qp = jnp.pad(q, ((0, 0), (0, pad), (0, 0), (0, 0)))
    mp = jnp.pad(mask, ((0, 0), (0, pad), (0, 0)))
    nb = (t + pad) // q_block
    qb = qp.reshape(b, nb, q_block, n, h).swapaxes(0, 1)
    mb = mp.reshape(b, nb, q_block, -1).swapaxes(0, 1)
    block = jax.checkpoint(lambda q_, m_: _attention_block(q_, k, v, m_))
    out = jax.lax.map(lambda a: block(a[0], a[1]), (qb, mb))
    return out.swapaxes(0, 1).reshape(b, t + pad, n, h)[:, :t]


def dense_kernel() -> str | None:
    """The fused kernel of causal self-attention on this backend: "cudnn" (GPU), "splash" (TPU)
    or None (CPU: the blocked XLA path). Tests patch it to run splash in interpret mode."""
    return {"gpu": "cudnn", "tpu": "splash"}.get(jax.default_backend())


def fused_attention(q, k, v, mask, implementation: str | None = None) -> jax.Array | None:
    """`jax.nn.dot_product_attention` with `mask` [B, T, S]; None where it refuses the inputs.

    implementation: "cudnn", "xla" or None = by platform (cuDNN on GPU, XLA elsewhere).
    Returns:
      [B, T, N, H] in q.dtype, or None (the caller falls back to `attention`'s XLA path).
    """
    if implementation is None:
        implementation = "cudnn" if jax.default_backend() == "gpu" else "xla"
    try:
        out = jax.nn.dot_product_attention(
            q, k, v, mask=mask[:, None], implementation=implementation
        )
    except (ValueError, NotImplementedError, TypeError, RuntimeError):
        return None  # e.g. cuDNN: fp32 inputs, head dims it has no kernel for
    return out.astype(q.dtype)


def _attention_block(q, k, v, mask):
    b, t, n, h = q.shape
    kv = k.shape[2]
    q = q.reshape(b, t, kv, n // kv, h)
    scores = jnp.einsum("btkgh,bskh->bkgts", q, k, preferred_element_type=jnp.float32)
    scores = jnp.where(mask[:, None, None], scores / math.sqrt(h), NEG_INF)
    probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
    out = jnp.einsum("bkgts,bskh->btkgh", probs, v)
    return out.reshape(b, t, n, h)


def mlp(x: jax.Array, gate_df: jax.Array, up_df: jax.Array, down_fd: jax.Array) -> jax.Array:
    """SiLU-gated MLP: down(silu(x @ gate) * (x @ up)); x is [B, T, D]."""
    gate = jnp.einsum("btd,df->btf", x, gate_df)
    up = jnp.einsum("btd,df->btf", x, up_df)
    return jnp.einsum("btf,fd->btd", jax.nn.silu(gate) * up, down_fd)
