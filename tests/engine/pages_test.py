"""Page accounting and the reference paged attention, on small arrays (no model)."""

import jax
import jax.numpy as jnp
import numpy as np

from dlogp_jax import sharding
from dlogp_jax.engine import PagedBatch, allocate, init_pages, paged_attention, release_rows
from dlogp_jax.engine.attention import kernel_decode_attention, write_layer
from dlogp_jax.engine.pages import Pool, add_refs, copy_pages
from dlogp_jax.model import layers


def test_allocate_lowest_free_first_until_exhausted():
    refcount = jnp.asarray([1, 0, 2, 0, 0], jnp.int32)
    want = jnp.asarray([True, False, True, True, True])
    page, refcount = allocate(refcount, want)
    # rows 0, 2, 3 get pages 1, 3, 4; row 1 did not ask; row 4 finds none left (P = 5)
    np.testing.assert_array_equal(page, [1, 5, 3, 4, 5])
    np.testing.assert_array_equal(refcount, [1, 1, 2, 1, 1])


def test_shared_pages_are_freed_exactly_once():
    """Three sequences share prompt page 0; each release drops one reference, the last frees it."""
    pages = init_pages(num_pages=6, num_slots=3, table_width=3)
    table = jnp.asarray([[0, 1, -1], [0, 2, 3], [0, 4, -1]], jnp.int32)
    refcount = add_refs(pages.refcount, jnp.asarray([0, 0, 0, 1, 2, 3, 4, 6]))  # 6: padding
    pages = pages.replace(table=table, refcount=refcount)
    np.testing.assert_array_equal(pages.refcount, [3, 1, 1, 1, 1, 0])
    pages = release_rows(pages, jnp.asarray([False, True, False]))
    np.testing.assert_array_equal(pages.refcount, [2, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(pages.table[1], [-1, -1, -1])
    pages = release_rows(pages, jnp.asarray([True, True, True]))  # row 1 is already empty
    np.testing.assert_array_equal(pages.refcount, [0, 0, 0, 0, 0, 0])


def _pool(rng, num_pages=7, page_size=4, layers_=2, k=2, h=8):
    shape = (layers_, k, num_pages, page_size, h)
    normal = lambda: jnp.asarray(rng.normal(size=shape), jnp.float32)
    return Pool(k=normal(), v=normal())


def test_copy_pages_clones_every_layer():
    pool = _pool(np.random.default_rng(0))
    out = copy_pages(pool, jnp.asarray([2, 0]), jnp.asarray([5, 7]))  # 7 = P: skipped
    np.testing.assert_array_equal(out.k[:, :, 5], pool.k[:, :, 2])
    np.testing.assert_array_equal(out.v[:, :, 5], pool.v[:, :, 2])
    np.testing.assert_array_equal(np.delete(np.asarray(out.k), 5, 2), np.delete(pool.k, 5, 2))


def test_paged_attention_equals_dense_attention():
    """Keys scattered over pages in table order = the same keys in one dense array (GQA, causal)."""
    rng = np.random.default_rng(1)
    pool = _pool(rng)
    z, layer = 4, 1
    table = jnp.asarray([[3, 0, 6], [5, 1, -1]], jnp.int32)
    lengths = np.asarray([11, 6])
    t, n = 2, 4
    q = jnp.asarray(rng.normal(size=(2, t, n, 8)), jnp.float32)
    query_index = jnp.asarray(lengths[:, None] - t + np.arange(t), jnp.int32)
    new_k = jnp.asarray(rng.normal(size=(2, t, 2, 8)), jnp.float32)
    new_v = jnp.asarray(rng.normal(size=(2, t, 2, 8)), jnp.float32)
    write_page = jnp.take_along_axis(table, query_index // z, axis=1)
    batch = PagedBatch(table, query_index, write_page, query_index % z)
    pool = write_layer(pool, layer, batch, new_k, new_v)
    got = paged_attention(q, pool, layer, table, query_index)
    for b, length in enumerate(lengths):
        pages = [int(p) for p in table[b] if p >= 0]
        dense = lambda x: jnp.concatenate([x[layer, :, p].swapaxes(0, 1) for p in pages])
        keys, values = dense(pool.k)[:length], dense(pool.v)[:length]
        np.testing.assert_array_equal(keys[query_index[b]], new_k[b])
        mask = jnp.arange(length)[None, :] <= query_index[b][:, None]
        want = layers.attention(q[b : b + 1], keys[None], values[None], mask[None])
        np.testing.assert_allclose(got[b], want[0], atol=1e-5)
    assert jax.numpy.isfinite(got).all()


def test_pallas_gpu_decode_kernel_wiring_in_interpret_mode():
    """JAX's Pallas GPU paged-attention kernel (run in interpret mode on CPU) on the engine's
    pool layout equals the reference gather, for one new token per row (GQA, partial pages).
    The TPU kernels (`pallas.ops.tpu.paged_attention`, `ragged_paged_attention`) have no
    interpret mode in jax 0.10.2, so their wiring runs only on a TPU."""
    rng = np.random.default_rng(2)
    pool = _pool(rng, num_pages=9, page_size=4, h=16)
    table = jnp.asarray([[3, 0, 6, -1], [5, 1, 2, 8]], jnp.int32)
    query_index = jnp.asarray([[9], [14]], jnp.int32)
    q = jnp.asarray(rng.normal(size=(2, 1, 4, 16)), jnp.float32)
    layer = 1
    want = paged_attention(q, pool, layer, table, query_index)
    got = kernel_decode_attention(
        q[:, 0],
        pool.k[layer],
        pool.v[layer],
        table,
        query_index[:, 0] + 1,
        kernel="gpu",
        interpret=True,
    )
    np.testing.assert_allclose(got, want[:, 0], atol=1e-5)


def test_pallas_decode_kernel_in_shard_map_on_the_mesh():
    """The kernel inside `shard_map` (rows over data x fsdp, kv heads over tensor) equals the
    reference gather: each device attends its rows' pages of its kv heads."""
    rng = np.random.default_rng(3)
    pool = _pool(rng, num_pages=11, page_size=4, h=16)
    table = jnp.asarray([[3, 0, 6, -1], [5, 1, 2, 8], [10, -1, -1, -1], [7, 4, 9, 0]], jnp.int32)
    query_index = jnp.asarray([[9], [14], [2], [15]], jnp.int32)
    q = jnp.asarray(rng.normal(size=(4, 1, 4, 16)), jnp.float32)
    want = paged_attention(q, pool, 0, table, query_index)
    mesh = sharding.make_mesh("data:2,fsdp:2,tensor:2")

    def kernel(q, k, v, table, lengths):
        return kernel_decode_attention(q, k, v, table, lengths, kernel="gpu", interpret=True)

    with jax.set_mesh(mesh):
        args = (q[:, 0], pool.k[0], pool.v[0], table, query_index[:, 0] + 1)
        lowered = jax.jit(kernel).lower(*args).as_text()
        got = jax.jit(kernel)(*args)
    assert "sdy.manual_computation" in lowered or "shard_map" in lowered
    np.testing.assert_allclose(got, want[:, 0], atol=1e-5)
