"""Attention over paged KV caches: write new keys into pages, attend to the live pages only.

Legend: B sequence slots (or prompts in a prefill), T new tokens per row, N query heads, K kv heads,
H head dim, L layers, P pages, Z page size, W page-table columns read (W·Z >= longest live length).

`paged_attention` is the pure-JAX reference: it gathers the W pages of each row's table and masks
keys by cache index, so its cost follows the live length W·Z (bucketed by the caller), not the
longest possible sequence. It runs on CPU, in tests and for prefill chunks. Decode steps on GPU
and TPU run JAX's Pallas kernels on the same page layout (`kernel_decode_attention`:
`pallas.ops.gpu.paged_attention`, `pallas.ops.tpu.paged_attention`), selected by platform
(`kernel_for_platform`), inside `shard_map` under a mesh; the GPU kernel's wiring is tested on CPU
in Pallas interpret mode, on one device and on the 8-device mesh.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from dlogp_jax import sharding
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
    idx = (layer, slice(None), batch.write_page, batch.write_offset)  # -> [B, T, K, H]
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
    # One gather from the whole [L, K, P, Z, H] pool (the layer slice is never materialized);
    # only the W live pages are transposed to [B, W·Z, K, H].
    gather = lambda x: x[layer, :, pages].transpose(0, 1, 3, 2, 4).reshape(b, w * z, *_kh(x))
    mask = jnp.arange(w * z)[None, None, :] <= query_index[:, :, None]
    return layers.attention(q, gather(pool.k), gather(pool.v), mask)


def _kh(x):
    return x.shape[1], x.shape[-1]


def kernel_for_platform() -> str | None:
    """The Pallas decode kernel of this backend: "gpu", "tpu", or None (CPU: the reference)."""
    platform = jax.default_backend()
    return platform if platform in ("gpu", "tpu") else None


def kernel_decode_attention(
    q: Float[Array, "B N H"],
    k_pages,
    v_pages,
    table: Int[Array, "B W"],
    lengths: Int[Array, " B"],
    *,
    kernel: str,
    interpret: bool = False,
) -> Float[Array, "B N H"]:
    """One new token per row against its pages with JAX's Pallas paged-attention kernel.

    Args:
      q: [B, N, H] queries. k_pages, v_pages: [K, P, Z, H] one layer of a pool.
      table: [B, W] pages (-1 read as page 0; beyond `lengths` nothing is attended).
      lengths: [B] int32 keys each row attends (its query's cache index + 1).
      kernel: "gpu" (`pallas.ops.gpu.paged_attention`) or "tpu" (`pallas.ops.tpu.paged_attention`).
      interpret: run the GPU kernel in Pallas interpret mode (CPU tests).
    Returns:
      [B, N, H] in q.dtype.

    Under a mesh the kernel runs in `shard_map`: rows over the batch axes, kv heads (and their
    query heads) over the tensor axis, every page of the pool on each row shard (the pool is
    sharded by kv heads only, `pages.POOL_AXES`). A Pallas call left to the partitioner would
    gather the whole layer's pool onto every device.
    """
    local = functools.partial(_kernel_local, kernel=kernel, interpret=interpret)
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty:
        return local(q, k_pages, v_pages, table, lengths)
    rows = sharding.logical_to_spec(("act_batch",), table.shape[:1], mesh)[0]
    heads = sharding.logical_to_spec(("act_kv_heads",), k_pages.shape[:1], mesh)[0]
    pages = P(heads, None, None, None)
    return jax.shard_map(
        local,
        in_specs=(P(rows, heads, None), pages, pages, P(rows, None), P(rows)),
        out_specs=P(rows, heads, None),
        check_vma=False,
    )(q, k_pages, v_pages, table, lengths)


def _kernel_local(q, k_pages, v_pages, table, lengths, *, kernel: str, interpret: bool):
    """`kernel_decode_attention` on one device's rows and heads."""
    table = jnp.maximum(table, 0)
    w = table.shape[1]  # a power of 2 (the host's width buckets)
    splits = min(16, w)  # the GPU kernel splits each row's pages into k_splits equal parts
    block = min(8, w // splits)  # pages per compute block
    scale = q.shape[-1] ** -0.5  # the kernels do not scale the scores
    q = (q.astype(jnp.float32) * scale).astype(q.dtype)
    if kernel == "gpu":
        from jax.experimental.pallas.ops.gpu import paged_attention as gpu

        return gpu.paged_attention(
            q,
            k_pages,
            v_pages,
            table,
            lengths,
            pages_per_compute_block=block,
            k_splits=splits,
            interpret=interpret,
        )
    from jax.experimental.pallas.ops.tpu import paged_attention as tpu

    return tpu.paged_attention(
        q, k_pages, v_pages, lengths, table, pages_per_compute_block=min(8, w)
    )


def make_attend(batch: PagedBatch, kernel: str | None = None):
    """The `attend` hook of `transformer.hidden_states_with_attention` for one model's pool.

    kernel: None (the reference gather), or "gpu"/"tpu": decode steps (T = 1) run that Pallas
    kernel; prefill chunks (T > 1) always use the reference.
    """

    def attend(q, k, v, pool: Pool, layer):
        pool = write_layer(pool, layer, batch, k, v)
        if kernel is not None and q.shape[1] == 1:
            out = kernel_decode_attention(
                q[:, 0],
                pool.k[layer],
                pool.v[layer],
                batch.table,
                batch.query_index[:, 0] + 1,
                kernel=kernel,
            )
            return out[:, None].astype(q.dtype), pool
        return paged_attention(q, pool, layer, batch.table, batch.query_index), pool

    return attend
