"""Incremental decoding through the KV cache equals a full teacher-forced forward."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlogp_jax.model import transformer
from dlogp_jax.model.config import ModelConfig
from dlogp_jax.model.kv_cache import init_cache

CONFIG = ModelConfig(model_type="qwen3", vocab_size=64, num_heads=4, num_kv_heads=2, qk_norm=True)
PROMPT, NEW = 5, 4

_apply = jax.jit(transformer.apply, static_argnames="config")


@pytest.fixture(scope="module")
def params():
    # numpy init: jax.random compiles slowly on this CPU, and the values only need to be non-trivial.
    rng = np.random.default_rng(0)
    return jax.tree.map(
        lambda i: rng.normal(1.0 if i.init == "ones" else 0.0, 0.3, i.shape).astype(np.float32),
        transformer.param_table(CONFIG),
        is_leaf=lambda x: isinstance(x, transformer.ParamInfo),
    )


def _full(params, tokens):
    """Per-sequence teacher-forced logits [T, V] of one unpadded sequence."""
    t = len(tokens)
    logits, _ = _apply(
        params,
        tokens[None],
        np.arange(t, dtype=np.int32)[None],
        None,
        np.ones((1, t), bool),
        config=CONFIG,
    )
    return np.asarray(logits[0])


def _decode(params, cache, tokens, positions):
    """Feeds [B, n] tokens one at a time; returns [B, n, V] logits and the cache."""
    out = []
    for j in range(tokens.shape[1]):
        assert not bool(cache.is_full())
        logits, cache = _apply(
            params,
            tokens[:, j : j + 1],
            positions[:, j : j + 1],
            cache,
            np.ones((2, 1), bool),
            config=CONFIG,
        )
        out.append(np.asarray(logits[:, 0]))
    return np.stack(out, axis=1), cache


def test_init_cache_shapes_and_dtypes():
    cache = init_cache(CONFIG, batch_size=3, cache_length=7)
    assert cache.k.shape == cache.v.shape == (2, 3, 7, 2, 16)
    assert cache.k.dtype == jnp.float32 and cache.key_mask.dtype == jnp.bool_
    assert cache.cache_length == 7 and int(cache.end_index) == 0
    assert not bool(cache.key_mask.any())
    assert init_cache(CONFIG.replace(dtype="bfloat16"), 1, 4).k.dtype == jnp.bfloat16
    assert init_cache(CONFIG, 1, 4, dtype=jnp.float16).v.dtype == jnp.float16
    assert not bool(cache.is_full(7)) and bool(cache.is_full(8))


def test_prefill_then_one_token_at_a_time_equals_full_forward(params):
    rng = np.random.default_rng(1)
    tokens = rng.integers(0, CONFIG.vocab_size, (2, PROMPT + NEW)).astype(np.int32)
    positions = np.broadcast_to(np.arange(PROMPT + NEW, dtype=np.int32), tokens.shape)
    cache = init_cache(CONFIG, 2, PROMPT + NEW)
    prefill, cache = _apply(
        params,
        tokens[:, :PROMPT],
        positions[:, :PROMPT],
        cache,
        np.ones((2, PROMPT), bool),
        config=CONFIG,
    )
    assert int(cache.end_index) == PROMPT
    np.testing.assert_array_equal(np.asarray(cache.key_mask[:, :PROMPT]), True)
    np.testing.assert_array_equal(np.asarray(cache.key_mask[:, PROMPT:]), False)
    steps, cache = _decode(params, cache, tokens[:, PROMPT:], positions[:, PROMPT:])
    assert int(cache.end_index) == PROMPT + NEW and bool(cache.is_full())
    got = np.concatenate([np.asarray(prefill), steps], axis=1)
    for i in range(2):
        np.testing.assert_allclose(got[i], _full(params, tokens[i]), rtol=1e-5, atol=1e-5)


def test_left_padded_prompts_equal_unpadded_forward(params):
    rng = np.random.default_rng(2)
    lengths = [PROMPT, 3]  # prompt lengths; row 1 is left-padded by 2 slots
    seqs = [rng.integers(0, CONFIG.vocab_size, n + NEW).astype(np.int32) for n in lengths]
    pads = [PROMPT - n for n in lengths]
    # Pad slots hold arbitrary ids: their values must not matter.
    prompt = np.stack(
        [
            np.concatenate([rng.integers(0, CONFIG.vocab_size, p), s[:n]])
            for s, n, p in zip(seqs, lengths, pads)
        ]
    ).astype(np.int32)
    mask = np.arange(PROMPT)[None, :] >= np.asarray(pads)[:, None]
    positions = np.maximum(np.arange(PROMPT)[None, :] - np.asarray(pads)[:, None], 0).astype(
        np.int32
    )
    # A longer cache than needed: the unused tail slots must stay invisible.
    cache = init_cache(CONFIG, 2, PROMPT + NEW + 3)
    prefill, cache = _apply(params, prompt, positions, cache, mask, config=CONFIG)
    np.testing.assert_array_equal(np.asarray(cache.key_mask[:, :PROMPT]), mask)
    new_tokens = np.stack([s[n:] for s, n in zip(seqs, lengths)])
    new_positions = (np.asarray(lengths)[:, None] + np.arange(NEW)).astype(np.int32)
    steps, cache = _decode(params, cache, new_tokens, new_positions)
    assert int(cache.end_index) == PROMPT + NEW and not bool(cache.is_full())
    for i, (s, p) in enumerate(zip(seqs, pads)):
        got = np.concatenate([np.asarray(prefill[i, p:]), steps[i]])
        np.testing.assert_allclose(got, _full(params, s), rtol=1e-5, atol=1e-5)
