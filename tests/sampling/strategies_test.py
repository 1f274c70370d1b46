"""Sampling filters against NumPy references of the Hugging Face rules, and draw distributions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlogp_jax.sampling import strategies
from dlogp_jax.sampling.strategies import SamplingParams


def hf_top_p_keep(logits: np.ndarray, p: float) -> np.ndarray:
    """transformers' TopPLogitsWarper: sort ascending, drop cumprob <= 1 - p, keep the last."""
    keep = np.zeros(logits.shape, bool)
    for r, row in enumerate(logits):
        order = np.argsort(row, kind="stable")
        probs = np.exp(row[order] - row.max())
        cum = np.cumsum(probs / probs.sum())
        remove = cum <= 1 - p
        remove[-1] = False
        keep[r, order[~remove]] = True
    return keep


def tv(counts: np.ndarray, probs: np.ndarray) -> float:
    return 0.5 * float(np.abs(counts / counts.sum() - probs).sum())


@pytest.mark.parametrize("p", [0.05, 0.3, 0.7, 0.95, 1.0])
def test_top_p_matches_hf(p):
    logits = np.random.default_rng(0).normal(size=(8, 1000)).astype(np.float32) * 3
    keep = np.asarray(strategies.top_p_keep(jnp.asarray(logits), p))
    np.testing.assert_array_equal(keep, hf_top_p_keep(logits, p))


def test_top_p_keeps_argmax_and_handles_masked_and_ties():
    x = jnp.asarray([[5.0, -jnp.inf, 1.0, 1.0, 1.0, -jnp.inf]])
    # p tiny: only the argmax; the masked entries are never kept.
    np.testing.assert_array_equal(strategies.top_p_keep(x, 1e-6)[0], [1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(strategies.top_p_keep(x, 1.0)[0], [1, 0, 1, 1, 1, 0])
    # A nucleus that ends inside the tie group of 1.0 keeps the whole group (HF keeps part of it).
    probs = np.exp([5.0, 1.0]) / (np.exp(5.0) + 3 * np.exp(1.0))
    np.testing.assert_array_equal(
        strategies.top_p_keep(x, probs[0] + 0.5 * probs[1])[0], [1, 0, 1, 1, 1, 0]
    )


def test_top_k_keeps_ties():
    x = jnp.asarray([[3.0, 1.0, 2.0, 2.0, 0.0]])
    np.testing.assert_array_equal(strategies.top_k_filter(x, 2)[0] > -jnp.inf, [1, 0, 1, 1, 0])
    np.testing.assert_array_equal(strategies.top_k_filter(x, 0), x)


def test_sample_from_weights_distribution_and_edges():
    w = np.zeros(700, np.float32)  # several blocks, zero weights in between
    w[[3, 255, 256, 400, 699]] = [1.0, 2.0, 0.5, 3.0, 1.5]
    n = 20_000
    u = jax.random.uniform(jax.random.key(0), (n,))
    idx = np.asarray(strategies.sample_from_weights(jnp.broadcast_to(jnp.asarray(w), (n, 700)), u))
    assert set(np.unique(idx)) <= {3, 255, 256, 400, 699}
    assert tv(np.bincount(idx, minlength=700), w / w.sum()) < 0.015
    edges = jnp.asarray([0.0, np.nextafter(np.float32(1), np.float32(0))])
    idx = strategies.sample_from_weights(jnp.broadcast_to(jnp.asarray(w), (2, 700)), edges)
    np.testing.assert_array_equal(idx, [3, 699])


@pytest.mark.parametrize(
    "params",
    [
        SamplingParams(),
        SamplingParams(0.7, 0.8, 0),
        SamplingParams(1.3, 0.9, 5),
        SamplingParams(1.0, 1.0, 3),
    ],
)
def test_sample_matches_log_probs(params):
    logits = jnp.asarray(np.random.default_rng(1).normal(size=(1, 12)) * 1.5, jnp.float32)
    n = 40_000
    keys = jax.random.split(jax.random.key(3), n)
    tokens = np.asarray(jax.jit(params.sample)(jnp.broadcast_to(logits, (n, 12)), keys))
    probs = np.exp(np.asarray(params.log_probs(logits))[0])
    assert np.all(probs[tokens] > 0)
    assert tv(np.bincount(tokens, minlength=12), probs) < 0.015


def test_rejection_top_p_on_a_large_flat_vocabulary():
    """Many tokens in the nucleus and a long tail: the rejection sampler's draws stay in the nucleus
    of `top_p_keep`, and a row's draw does not depend on the other rows."""
    rng = np.random.default_rng(2)
    logits = jnp.asarray(rng.normal(size=(6, 5000)) * np.linspace(0.1, 4, 6)[:, None], jnp.float32)
    keys = jax.random.split(jax.random.key(1), 6)
    tokens = np.asarray(strategies.sample_top_p(logits, 0.7, keys))
    keep = np.asarray(strategies.top_p_keep(logits, 0.7))
    assert keep[np.arange(6), tokens].all()
    alone = strategies.sample_top_p(logits[2:3], 0.7, keys[2:3])
    assert int(alone[0]) == tokens[2]
    # distribution over a nucleus of many tokens: mass of its 50 most likely tokens
    row = jnp.asarray(rng.normal(size=(1, 1000)), jnp.float32)
    n = 10_000
    draws = np.asarray(
        jax.jit(strategies.sample_top_p, static_argnums=1)(
            jnp.broadcast_to(row, (n, 1000)), 0.5, jax.random.split(jax.random.key(4), n)
        )
    )
    probs = np.exp(np.asarray(SamplingParams(top_p=0.5).log_probs(row))[0])
    assert probs[draws].min() > 0
    top = np.argsort(-probs)[:50]
    assert abs(np.isin(draws, top).mean() - probs[top].sum()) < 0.015


def test_rejection_fallback_is_exact_and_nan_terminates(monkeypatch):
    """After the round cap, unfinished rows draw from the bisection mask: still the nucleus law."""
    monkeypatch.setattr(strategies, "_MAX_ROUNDS", 1)
    logits = jnp.asarray(np.random.default_rng(3).normal(size=(1, 40)) * 2, jnp.float32)
    n = 40_000
    draws = np.asarray(
        jax.jit(strategies.sample_top_p, static_argnums=1)(
            jnp.broadcast_to(logits, (n, 40)), 0.6, jax.random.split(jax.random.key(6), n)
        )
    )
    probs = np.exp(np.asarray(SamplingParams(top_p=0.6).log_probs(logits))[0])
    assert tv(np.bincount(draws, minlength=40), probs) < 0.015
    nan_row = jnp.full((1, 40), jnp.nan)
    token = strategies.sample_top_p(nan_row, 0.6, jax.random.split(jax.random.key(0), 1))
    assert 0 <= int(token[0]) < 40


def test_greedy_and_validation():
    logits = jnp.asarray([[0.1, 2.0, -1.0], [3.0, 0.0, 2.9]])
    np.testing.assert_array_equal(
        SamplingParams(temperature=0).sample(logits, jnp.zeros(2)), [1, 0]
    )
    np.testing.assert_allclose(
        np.exp(SamplingParams(temperature=0).log_probs(logits)), [[0, 1, 0], [1, 0, 0]]
    )
    for bad in (dict(temperature=-1), dict(top_p=0.0), dict(top_p=1.5), dict(top_k=-2)):
        with pytest.raises(ValueError):
            SamplingParams(**bad)
