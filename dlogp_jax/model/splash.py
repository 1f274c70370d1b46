"""Causal self-attention with JAX's TPU splash-attention kernel, inside `shard_map`.

`layers.attention` routes dense causal attention (scoring, training, the static decoder's prefill)
here on TPU. The kernel is `jax.experimental.pallas.ops.tpu.splash_attention`: a block-sparse
flash attention that skips the key blocks above the causal diagonal and never materializes the
[T, S] scores, forward and backward.

Padding is expressed as segment ids, not a dense mask: a token is segment 1 when real and 0 when
padding, so a real query attends the real keys at or before it, exactly `transformer`'s causal
mask (causal in slot order, only onto real tokens). Pad queries attend pad keys instead of
nothing; their outputs are garbage either way and never reach a real position (docs/method.md
§6.30).

GQA runs as one multi-query kernel per kv head (the G query heads of a group share its k and v),
vmapped over batch and kv heads. Under a mesh (`jax.set_mesh`) the kernel runs in `shard_map`:
each device gets its batch rows and kv heads (the logical rules `act_batch`, `act_kv_heads`), so
XLA never gathers whole activations around the custom call. On CPU the same code runs in Pallas
interpret mode, which is how tests check it against the XLA path.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as kernel_lib
from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_mask as mask_lib
from jax.sharding import PartitionSpec as P

from dlogp_jax import sharding

BLOCK = 128  # the kernel's block (TPU lanes); T is padded to a multiple of it


def causal_attention(
    q: jax.Array, k: jax.Array, v: jax.Array, key_valid: jax.Array, *, interpret: bool = False
) -> jax.Array:
    """Causal grouped-query self-attention over real tokens with the splash kernel.

    Args:
      q: [B, T, N, H] queries (RoPE applied). k, v: [B, T, K, H], N a multiple of K.
      key_valid: [B, T] bool, False at padding.
      interpret: run the Pallas kernel in interpret mode (CPU tests).
    Returns:
      [B, T, N, H] in q.dtype; rows at padding are unspecified.
    """
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty:
        return _local(q, k, v, key_valid, interpret=interpret)
    kv_spec = sharding.logical_to_spec(("act_batch", None, "act_kv_heads", None), k.shape, mesh)
    # q heads follow the kv heads' split so every device holds whole GQA groups.
    q_spec = P(*kv_spec)
    fn = functools.partial(_local, interpret=interpret)
    return jax.shard_map(
        fn,
        in_specs=(q_spec, kv_spec, kv_spec, P(kv_spec[0], None)),
        out_specs=q_spec,
        check_vma=False,
    )(q, k, v, key_valid)


def _local(q, k, v, key_valid, *, interpret: bool):
    """`causal_attention` on one device's rows and heads."""
    b, t, n, h = q.shape
    kv = k.shape[2]
    pad = -t % BLOCK
    if pad:  # padded positions are segment 0 (padding): no real query sees them
        q, k, v = (jnp.pad(x, ((0, 0), (0, pad), (0, 0), (0, 0))) for x in (q, k, v))
        key_valid = jnp.pad(key_valid, ((0, 0), (0, pad)))
    length = t + pad
    scale = (1.0 / math.sqrt(h)) * jnp.ones((), jnp.float32)  # the kernel does not scale scores
    qg = (q.astype(jnp.float32) * scale).astype(q.dtype)
    qg = qg.reshape(b, length, kv, n // kv, h).transpose(0, 2, 3, 1, 4)  # [B, K, G, T, H]
    kg, vg = (x.transpose(0, 2, 1, 3) for x in (k, v))  # [B, K, T, H]
    segments = key_valid.astype(jnp.int32)
    kernel = _kernel(n // kv, length, interpret)

    def one_row(q_r, k_r, v_r, seg):  # [K, G, T, H], [K, T, H], [K, T, H], [T]
        ids = kernel_lib.SegmentIds(q=seg, kv=seg)
        return jax.vmap(lambda a, b_, c: kernel(a, b_, c, segment_ids=ids))(q_r, k_r, v_r)

    out = jax.vmap(one_row)(qg, kg, vg, segments)  # [B, K, G, T, H]
    out = out.transpose(0, 3, 1, 2, 4).reshape(b, length, n, h)
    return out[:, :t].astype(q.dtype)


@functools.lru_cache(maxsize=64)
def _kernel(groups: int, length: int, interpret: bool):
    """The multi-query splash kernel of `groups` query heads over `length` causal tokens."""
    causal = mask_lib.MultiHeadMask([mask_lib.CausalMask((length, length))] * groups)
    block = min(512, length) if length % 512 == 0 else BLOCK
    sizes = kernel_lib.BlockSizes(
        block_q=block,
        block_kv=block,
        block_kv_compute=block,
        block_q_dkv=block,
        block_kv_dkv=block,
        block_kv_dkv_compute=block,
        block_q_dq=block,
        block_kv_dq=block,
    )
    return kernel_lib.make_splash_mqa_single_device(causal, block_sizes=sizes, interpret=interpret)
