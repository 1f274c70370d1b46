"""The TPU splash-attention path (`model.splash`) in Pallas interpret mode on CPU, against the
blocked XLA attention: forward and gradients with left and right padding, GQA, a length that is
not a multiple of the kernel block, inside `shard_map` on the 8-device mesh, and wired through
the whole transformer (`layers.dense_kernel` patched to "splash")."""

import jax
import jax.numpy as jnp
import numpy as np

from dlogp_jax import sharding
from dlogp_jax.model import layers, splash, transformer
from dlogp_jax.model.config import ModelConfig

T = 150  # padded to 256 inside: two kernel blocks, the second partly padding


def _inputs(b=2, t=T, heads=4, kv_heads=2, h=16):
    kq, kk, kv = jax.random.split(jax.random.key(0), 3)
    q = jax.random.normal(kq, (b, t, heads, h))
    k = jax.random.normal(kk, (b, t, kv_heads, h))
    v = jax.random.normal(kv, (b, t, kv_heads, h))
    valid = np.ones((b, t), bool)
    valid[0, :7] = False  # left padding
    valid[1, t - 20 :] = False  # right padding
    if b > 2:
        valid[2:, :3] = False
    return q, k, v, jnp.asarray(valid)


def _causal_mask(valid):
    """The mask `transformer` builds without a cache: causal, onto real keys only."""
    t = valid.shape[1]
    return jnp.tril(jnp.ones((t, t), bool))[None] & valid[:, None, :]


def _loss(fn, valid):
    weight = valid[:, :, None, None]  # only real queries: pad rows are unspecified
    return lambda *a: jnp.sum(jnp.where(weight, jnp.sin(fn(*a)), 0.0))


def test_forward_and_gradients_match_xla_attention():
    q, k, v, valid = _inputs()
    mask = _causal_mask(valid)
    want_fn = lambda q, k, v: layers.attention(q, k, v, mask, q_block=64, causal=True)
    got_fn = lambda q, k, v: splash.causal_attention(q, k, v, valid, interpret=True)
    want, got = want_fn(q, k, v), got_fn(q, k, v)
    assert got.shape == want.shape and got.dtype == want.dtype
    real = np.asarray(valid)
    np.testing.assert_allclose(np.asarray(got)[real], np.asarray(want)[real], atol=2e-5)
    grads_want = jax.grad(_loss(want_fn, valid), argnums=(0, 1, 2))(q, k, v)
    grads_got = jax.grad(_loss(got_fn, valid), argnums=(0, 1, 2))(q, k, v)
    for g, w, name in zip(grads_got, grads_want, "qkv"):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=5e-5, err_msg=name)


def test_shard_map_on_the_mesh_matches():
    """Batch over data x fsdp, kv heads over tensor: each device runs the kernel on its part."""
    q, k, v, valid = _inputs(b=4, kv_heads=2, heads=4)
    want = splash.causal_attention(q, k, v, valid, interpret=True)
    mesh = sharding.make_mesh("data:2,fsdp:2,tensor:2")
    fn = jax.jit(lambda *a: splash.causal_attention(*a, interpret=True))
    with jax.set_mesh(mesh):
        args = [
            sharding.place(np.asarray(x), mesh, ("act_batch", None, "act_kv_heads", None))
            for x in (q, k, v)
        ]
        got = fn(*args, sharding.place(np.asarray(valid), mesh))
        hlo = fn.lower(*args, valid).as_text()
    assert "shard_map" in hlo or "sdy.manual_computation" in hlo
    real = np.asarray(valid)
    np.testing.assert_allclose(np.asarray(got)[real], np.asarray(want)[real], atol=1e-6)


def test_transformer_logits_and_gradients_with_splash(monkeypatch):
    config = ModelConfig(model_type="qwen2", vocab_size=40, num_kv_heads=2, qkv_bias=True)
    rng = np.random.default_rng(1)
    params = jax.tree.map(
        lambda i: rng.normal(1.0 if i.init == "ones" else 0.0, 0.2, i.shape).astype(np.float32),
        transformer.param_table(config),
        is_leaf=lambda x: isinstance(x, transformer.ParamInfo),
    )
    _, _, _, valid = _inputs()
    tokens = jnp.asarray(rng.integers(0, config.vocab_size, valid.shape), jnp.int32)
    positions = jnp.maximum(jnp.cumsum(valid, axis=1) - 1, 0).astype(jnp.int32)

    def logits(p):
        return transformer.apply(p, tokens, positions, None, valid, config=config)[0]

    def loss(p):
        return jnp.sum(jnp.where(valid[..., None], jax.nn.log_softmax(logits(p)), 0.0))

    want, want_grad = logits(params), jax.grad(loss)(params)
    monkeypatch.setattr(layers, "dense_kernel", lambda: "splash")
    got, got_grad = logits(params), jax.grad(loss)(params)
    real = np.asarray(valid)
    np.testing.assert_allclose(np.asarray(got)[real], np.asarray(want)[real], atol=1e-4)
    for g, w in zip(jax.tree.leaves(got_grad), jax.tree.leaves(want_grad)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=1e-3, rtol=1e-3)
    jaxpr = str(jax.make_jaxpr(logits)(params))
    assert "pallas_call" in jaxpr  # the kernel, not the XLA fallback


def test_dense_kernel_by_platform(monkeypatch):
    monkeypatch.setattr(jax, "default_backend", lambda: "tpu")
    assert layers.dense_kernel() == "splash"
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert layers.dense_kernel() == "cudnn"
    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
    assert layers.dense_kernel() is None
