"""Explicit KV cache pytree, so two models' caches can advance together in one jit program.

Legend: L layers, B batch, S cache slots, K kv heads, H head dim.

All sequences of a batch write at the same slot index (`end_index`); shorter prompts are left-padded
and their pad slots are marked invalid in `key_mask`. Attention is causal in slot order, which equals
causal in token order because every sequence's tokens occupy consecutive slots.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from dlogp_jax.model.config import ModelConfig


@flax.struct.dataclass
class KVCache:
    k: jax.Array  # [L, B, S, K, H]
    v: jax.Array  # [L, B, S, K, H]
    key_mask: jax.Array  # [B, S] bool: slot holds a real (non-pad) token
    end_index: jax.Array  # [] int32: next slot to write

    @property
    def cache_length(self) -> int:
        return self.k.shape[2]

    def is_full(self, num_new: int = 1) -> jax.Array:
        """True when `num_new` more tokens would not fit."""
        return self.end_index + num_new > self.cache_length


LOGICAL_AXES = KVCache(
    k=("layers", "act_batch", "act_cache_len", "act_kv_heads", "head_dim"),
    v=("layers", "act_batch", "act_cache_len", "act_kv_heads", "head_dim"),
    key_mask=("act_batch", "act_cache_len"),
    end_index=(),
)


def init_cache(config: ModelConfig, batch_size: int, cache_length: int, dtype=None) -> KVCache:
    """An empty cache of `cache_length` slots per sequence.

    Args:
      config: the model the cache belongs to.
      batch_size: B.
      cache_length: S, the most tokens (prompt + generated) a sequence can hold.
      dtype: cache dtype; defaults to the model's compute dtype.
    """
    shape = (
        config.num_layers,
        batch_size,
        cache_length,
        config.num_kv_heads,
        config.head_dim,
    )
    dtype = dtype or jnp.dtype(config.dtype)
    return KVCache(
        k=jnp.zeros(shape, dtype),
        v=jnp.zeros(shape, dtype),
        key_mask=jnp.zeros((batch_size, cache_length), bool),
        end_index=jnp.zeros((), jnp.int32),
    )


def write(
    cache_k: jax.Array,
    cache_v: jax.Array,
    k: jax.Array,
    v: jax.Array,
    end_index: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Writes one layer's new keys/values `[B, T, K, H]` at slots end_index..end_index+T-1."""
    start = (0, end_index, 0, 0)
    cache_k = jax.lax.dynamic_update_slice(cache_k, k.astype(cache_k.dtype), start)
    cache_v = jax.lax.dynamic_update_slice(cache_v, v.astype(cache_v.dtype), start)
    return cache_k, cache_v


def advance(cache: KVCache, new_k, new_v, input_mask: jax.Array) -> KVCache:
    """Returns the cache with all layers' new k/v and the mask of the T tokens just written."""
    key_mask = jax.lax.dynamic_update_slice(cache.key_mask, input_mask, (0, cache.end_index))
    return KVCache(
        k=new_k,
        v=new_v,
        key_mask=key_mask,
        end_index=cache.end_index + input_mask.shape[1],
    )
