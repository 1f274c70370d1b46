"""Attention over paged KV caches: write new keys into pages, attend to the live pages only.

Legend: B sequence slots (or prompts in a prefill), T new tokens per row, N query heads, K kv heads,
H head dim, L layers, P pages, Z page size, W page-table columns read (W·Z >= longest live length).

`paged_attention` is the pure-JAX reference: it gathers the W pages of each row's table and masks
keys by cache index, so its cost follows the live length W·Z (bucketed by the caller), not the
longest possible sequence. It is what runs on CPU and in tests; a Pallas kernel (JAX's
`pallas.ops.gpu.paged_attention`, `pallas.ops.tpu.ragged_paged_attention`) reads the same layout.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from dlogp_jax.engine.pages import Pool
from dlogp_jax.model import layers
from dlogp_jax.types import Array, Float, Int


@dataclasses.dataclass(frozen=True)
class PagedBatch:
    """Where the T new tokens of each row go and what each query may read (a pytree of arrays).

    Attributes:
      table: [B, W] int32 pages each row reads (entries past the row's length are never attended:
        -1 is read as page 0 and masked).
      query_index: [B, T] int32 cache index of each new token; a query attends keys at indices
        <= its own, so it sees the prompt, the earlier tokens and itself, never stale page data.
      write_page: [B, T] int32 page receiving each new token's k/v; P (out of range) drops it
        (padding, finished rows).
      write_offset: [B, T] int32 offset inside that page.
    """

    table: jax.Array
    query_index: jax.Array
    write_page: jax.Array
    write_offset: jax.Array


jax.tree_util.register_dataclass(
    PagedBatch,
    data_fields=["table", "query_index", "write_page", "write_offset"],
    meta_fields=[],
)


def write_layer(pool: Pool, layer, batch: PagedBatch, k, v) -> Pool:
    """Stores one layer's new k, v [B, T, K, H] at (layer, write_page, write_offset), in place."""
    idx = (layer, batch.write_page, batch.write_offset)
    return Pool(
        k=pool.k.at[idx].set(k.astype(pool.k.dtype), mode="drop"),
        v=pool.v.at[idx].set(v.astype(pool.v.dtype), mode="drop"),
    )


def paged_attention(
    q: Float[Array, "B T N H"],
    pool: Pool,
    layer,
    table: Int[Array, "B W"],
    query_index: Int[Array, "B T"],
) -> Float[Array, "B T N H"]:
    """Reference paged attention: gathers each row's W pages of `layer`, causal by cache index.

    Returns:
      [B, T, N, H] in q.dtype (fp32 softmax, as `layers.attention`).
    """
    b, w = table.shape
    z = pool.page_size
    pages = jnp.maximum(table, 0)
    # One gather from the whole [L, P, Z, K, H] pool: the layer slice is never materialized.
    keys = pool.k[layer, pages].reshape(b, w * z, *pool.k.shape[-2:])
    values = pool.v[layer, pages].reshape(b, w * z, *pool.v.shape[-2:])
    mask = jnp.arange(w * z)[None, None, :] <= query_index[:, :, None]
    return layers.attention(q, keys, values, mask)


def make_attend(batch: PagedBatch):
    """The `attend` hook of `transformer.hidden_states_with_attention` for one model's pool."""

    def attend(q, k, v, pool: Pool, layer):
        pool = write_layer(pool, layer, batch, k, v)
        return paged_attention(q, pool, layer, batch.table, batch.query_index), pool

    return attend
