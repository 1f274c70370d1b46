"""Page pools, the shared page table and per-page reference counts (all device arrays).

Legend: L layers, P pages in a pool, Z page size (tokens per page), K kv heads, H head dim,
B sequence slots, W page-table columns (pages one sequence can hold).

Memory is a budget of P pages per model, not batch × max length. Each model has its own pool
`[L, K, P, Z, H]` (base and RL may differ in L, K, H; kv-head-major: one layer is the
`[K, P, Z, H]` page layout of JAX's Pallas paged-attention kernels), but one page table drives
both: base and RL read the same token stream, so token i of slot b sits at page `table[b, i // Z]`, offset `i % Z`,
in every model's pool (the layout of speculative decoding's draft/target pools).

A page's reference count is the number of holders: sequences whose table lists it, plus the prompt
holder of a prefilled prompt whose samples are not all admitted yet. The free list is the set of
pages with count 0 (taken in index order), so it can never disagree with the counts. Table entries
of unused columns are -1; writes and count updates that must not happen use the out-of-range
index P with `mode="drop"` (a -1 would wrap around to the last page).
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from dlogp_jax.model.config import ModelConfig
from dlogp_jax.sharding import constrain
from dlogp_jax.types import Array, Bool, Int

POOL_AXES = ("layers", "act_kv_heads", None, None, "head_dim")


@flax.struct.dataclass
class Pool:
    """One model's KV pages."""

    k: jax.Array  # [L, K, P, Z, H]
    v: jax.Array  # [L, K, P, Z, H]

    @property
    def num_pages(self) -> int:
        return self.k.shape[2]

    @property
    def page_size(self) -> int:
        return self.k.shape[3]


@flax.struct.dataclass
class PageState:
    """Allocation state shared by every model's pool."""

    refcount: jax.Array  # [P] int32: holders of each page (0 = free)
    table: jax.Array  # [B, W] int32: page of each sequence's block of Z tokens, -1 unused
    seq_len: jax.Array  # [B] int32: tokens of each slot held in its pages

    @property
    def num_pages(self) -> int:
        return self.refcount.shape[0]


def init_pool(config: ModelConfig, num_pages: int, page_size: int, dtype=None) -> Pool:
    """An empty (zero) pool of `num_pages` pages of `page_size` tokens for one model."""
    shape = (config.num_layers, config.num_kv_heads, num_pages, page_size, config.head_dim)
    dtype = dtype or jnp.dtype(config.dtype)
    zeros = lambda: constrain(jnp.zeros(shape, dtype), POOL_AXES)
    return Pool(k=zeros(), v=zeros())


def init_pages(num_pages: int, num_slots: int, table_width: int) -> PageState:
    """Every page free, every slot empty."""
    return PageState(
        refcount=jnp.zeros((num_pages,), jnp.int32),
        table=constrain(jnp.full((num_slots, table_width), -1, jnp.int32), ("act_batch", None)),
        seq_len=constrain(jnp.zeros((num_slots,), jnp.int32), ("act_batch",)),
    )


def num_free(pages: PageState) -> jax.Array:
    """[] int32 pages with reference count 0."""
    return jnp.sum(pages.refcount == 0, dtype=jnp.int32)


def allocate(
    refcount: Int[Array, " P"], want: Bool[Array, " B"], priority: Int[Array, " B"] | None = None
) -> tuple[Int[Array, " B"], Int[Array, " P"]]:
    """One fresh page for each row of `want`, lowest free page first, while pages last.

    Args:
      refcount: [P] int32 counts. want: [B] bool rows asking for a page.
      priority: [B] int32, smaller served first (default: row order).
    Returns:
      (page [B] int32: the page granted, or P where not wanted or none was left;
       refcount with each granted page at 1).
    """
    p, b = refcount.shape[0], want.shape[0]
    free_ids = jnp.nonzero(refcount == 0, size=b, fill_value=p)[0]  # [B] first free pages
    key = jnp.arange(b) if priority is None else priority
    order = jnp.argsort(jnp.where(want, key, jnp.iinfo(jnp.int32).max), stable=True)
    rank = jnp.zeros((b,), jnp.int32).at[order].set(jnp.arange(b, dtype=jnp.int32))
    page = jnp.where(want, free_ids[rank], p)
    return page, refcount.at[page].add(1, mode="drop")


def release_rows(pages: PageState, rows: Bool[Array, " B"]) -> PageState:
    """Drops one reference to every page of the `rows` slots and clears their table rows.

    A page shared by several sequences (a prompt page) returns to the free list when its last
    holder lets go: each holder decrements once, so it is freed exactly once.
    """
    p = pages.num_pages
    ids = jnp.where(rows[:, None] & (pages.table >= 0), pages.table, p)
    refcount = pages.refcount.at[ids.ravel()].add(-1, mode="drop")
    table = jnp.where(rows[:, None], -1, pages.table)
    return pages.replace(refcount=refcount, table=table)


def add_refs(refcount: Int[Array, " P"], ids: Int[Array, " I"], delta: int = 1) -> jax.Array:
    """refcount[ids] += delta; ids equal to P (padding) are ignored; repeated ids add up."""
    return refcount.at[ids].add(delta, mode="drop")


def copy_pages(pool: Pool, src: Int[Array, " C"], dst: Int[Array, " C"]) -> Pool:
    """Copies pages src[c] -> dst[c] in every layer (clone-on-fork); dst = P entries are skipped."""
    return Pool(
        k=pool.k.at[:, :, dst].set(pool.k[:, :, src], mode="drop"),
        v=pool.v.at[:, :, dst].set(pool.v[:, :, src], mode="drop"),
    )
