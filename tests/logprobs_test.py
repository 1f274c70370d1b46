"""Chunked per-token metrics against a naive computation from full logits (NumPy, float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlogp_jax import logprobs, toy
from dlogp_jax.model import hf_weights, transformer

B, T = 2, 9
LENGTHS = np.asarray([T, 6])
MASK = np.arange(T)[None, :] < LENGTHS[:, None]  # right-padded
SCORED = MASK & (np.arange(T) > 0)  # positions with a prediction
CHUNKS = [5, 8, 1024]  # M = B * (T - 1) = 16 tokens: 5 leaves a ragged last chunk, 1024 is one

_apply = jax.jit(transformer.apply, static_argnames="config")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    base, rl = toy.build_pair(tmp_path_factory.mktemp("pair"), seed=5, pad_rows=7)
    return hf_weights.load_params(base), hf_weights.load_params(rl), len(toy.build_tokenizer())


@pytest.fixture(scope="module")
def batch():
    tokens = np.random.default_rng(0).integers(0, 99, (B, T)).astype(np.int32)
    return tokens, np.where(MASK, np.arange(T), 0).astype(np.int32), MASK


def _naive_logp(config, params, batch, vocab: int) -> np.ndarray:
    """[B, T-1, V] float64 log-probs of the next token, from the full fp32 logits."""
    tokens, positions, mask = batch
    logits, _ = _apply(params, tokens, positions, None, mask, config=config)
    z = np.asarray(logits, np.float64)[:, :-1, :vocab]
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _pick(logp, tokens):
    return np.take_along_axis(logp, tokens[:, 1:, None], axis=-1)[..., 0]


def _entropy(logp):
    return -(np.exp(logp) * logp).sum(-1)


def _check(got: dict, ref: dict):
    """Compares [B, T] outputs with [B, T-1] references on the scored positions; entry 0 is 0."""
    assert set(got) == set(ref)
    for name, r in ref.items():
        g = np.asarray(got[name])
        assert g.shape == (B, T) and g.dtype == np.float32
        np.testing.assert_array_equal(g[:, 0], 0.0)
        np.testing.assert_allclose(g[SCORED], r[SCORED[:, 1:]], rtol=1e-4, atol=1e-4, err_msg=name)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_one_model_equals_naive(models, batch, chunk):
    (config, params), _, vocab = models
    lp = _naive_logp(config, params, batch, vocab)
    got = logprobs.score_tokens(
        params, *batch, config_base=config, vocab_limit=vocab, chunk_tokens=chunk
    )
    _check(got, {"logp": _pick(lp, batch[0]), "entropy": _entropy(lp)})


@pytest.mark.parametrize("chunk", CHUNKS)
def test_two_models_equal_naive(models, batch, chunk):
    (config, params), (config_rl, params_rl), vocab = models
    assert config_rl.vocab_size == vocab + 7 == config.vocab_size + 7
    lb = _naive_logp(config, params, batch, vocab)
    lr = _naive_logp(config_rl, params_rl, batch, vocab)
    pb, pr = np.exp(lb), np.exp(lr)
    ref = {
        "logp_base": _pick(lb, batch[0]),
        "logp_rl": _pick(lr, batch[0]),
        "dlogp": _pick(lr, batch[0]) - _pick(lb, batch[0]),
        "entropy_base": _entropy(lb),
        "entropy_rl": _entropy(lr),
        "kl_rl_base": (pr * (lr - lb)).sum(-1),
        "kl_base_rl": (pb * (lb - lr)).sum(-1),
    }
    assert ref["kl_rl_base"][SCORED[:, 1:]].min() > 1e-3  # the models differ: the check has teeth
    got = logprobs.score_tokens(
        params,
        *batch,
        params_rl,
        config_base=config,
        config_rl=config_rl,
        vocab_limit=vocab,
        chunk_tokens=chunk,
    )
    _check(got, ref)


def test_padded_vocabulary_rows_get_no_probability(models, batch):
    (config, params), (config_rl, params_rl), vocab = models
    cut = {**params_rl, "embed_vd": params_rl["embed_vd"][:vocab]}
    cut_config = config_rl.replace(vocab_size=vocab)
    kw = dict(config_base=config, vocab_limit=vocab, chunk_tokens=5)
    got = logprobs.score_tokens(params, *batch, params_rl, config_rl=config_rl, **kw)
    ref = logprobs.score_tokens(params, *batch, cut, config_rl=cut_config, **kw)
    for name in logprobs.METRICS_TWO:
        # 1e-5: float32 log-softmax over 5 fewer rows rounds differently (2.4e-6 seen on AVX-512).
        np.testing.assert_allclose(got[name], ref[name], rtol=1e-5, atol=1e-5, err_msg=name)
    # Without the limit the padding rows (logit 0) would take probability mass from every token.
    lp_limited = _naive_logp(config_rl, params_rl, batch, vocab)
    lp_full = _naive_logp(config_rl, params_rl, batch, config_rl.vocab_size)
    assert np.all(lp_full[..., :vocab] < lp_limited)
    assert np.exp(lp_full[..., vocab:]).sum(-1).max() > 1e-3
    np.testing.assert_allclose(
        got["logp_rl"][SCORED], _pick(lp_limited, batch[0])[SCORED[:, 1:]], atol=1e-4
    )
    # One model: the padded columns are masked out of the softmax the same way.
    one = logprobs.score_tokens(
        params_rl, *batch, config_base=config_rl, vocab_limit=vocab, chunk_tokens=5
    )
    _check(one, {"logp": _pick(lp_limited, batch[0]), "entropy": _entropy(lp_limited)})


def _naive_token_logprobs(h, w, targets):
    logp = jax.nn.log_softmax(h @ w, axis=-1)
    ent = -jnp.sum(jnp.exp(logp) * logp, axis=-1)
    return jnp.take_along_axis(logp, targets[:, None], axis=-1)[:, 0], ent


@pytest.mark.parametrize("vocab_limit", [None, 10])
def test_token_logprobs_values_and_gradient_equal_naive(vocab_limit):
    rng = np.random.default_rng(2)
    m, d, v = 11, 8, 13
    h = rng.normal(size=(m, d)).astype(np.float32)
    w = rng.normal(size=(d, v)).astype(np.float32)
    targets = rng.integers(0, vocab_limit or v, m)
    coef = rng.normal(size=m).astype(np.float32)
    lim = vocab_limit or v

    def values_and_grads(fn):
        def loss(h, w):
            lp, ent = fn(h, w)
            return jnp.sum(coef * lp) + 0.3 * jnp.sum(ent)

        # Gradient of log-probs *and* entropy: both flow through the rematerialized chunks.
        return jax.jit(lambda h, w: (fn(h, w), jax.grad(loss, argnums=(0, 1))(h, w)))(h, w)

    chunked = lambda h, w: logprobs.token_logprobs(
        h, w, targets, chunk_tokens=4, with_entropy=True, vocab_limit=vocab_limit
    )
    # The naive reference drops the padding columns outright.
    naive = lambda h, w: _naive_token_logprobs(h, w[:, :lim], targets)
    (lp, ent), (g_h, g_w) = values_and_grads(chunked)
    (lp_ref, ent_ref), (g_h_ref, g_w_ref) = values_and_grads(naive)
    np.testing.assert_allclose(lp, lp_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ent, ent_ref, rtol=1e-5, atol=1e-5)
    for g, g_ref in ((g_h, g_h_ref), (g_w, g_w_ref)):
        assert np.all(np.isfinite(g)) and float(jnp.max(jnp.abs(g_ref))) > 1e-2
        np.testing.assert_allclose(g, g_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(g_w[:, lim:], 0.0)
    lp_only = jax.jit(
        lambda h, w: logprobs.token_logprobs(h, w, targets, chunk_tokens=4, vocab_limit=vocab_limit)
    )(h, w)
    np.testing.assert_allclose(lp_only, lp_ref, rtol=1e-5, atol=1e-5)


def test_pair_metrics_identical_models_and_different_widths():
    rng = np.random.default_rng(1)
    m, v = 7, 10
    h_b, w_b = (
        rng.normal(size=(m, 6)).astype(np.float32),
        rng.normal(size=(6, v)).astype(np.float32),
    )
    targets = rng.integers(0, v, m)
    same = logprobs.pair_metrics(h_b, w_b, h_b, w_b, targets, chunk_tokens=3)
    for name in ("dlogp", "kl_rl_base", "kl_base_rl"):
        np.testing.assert_allclose(same[name], 0.0, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(same["entropy_base"], same["entropy_rl"])
    # The RL model may have a different width D: only the vocabulary must agree.
    h_r, w_r = (
        rng.normal(size=(m, 4)).astype(np.float32),
        rng.normal(size=(4, v)).astype(np.float32),
    )
    out = logprobs.pair_metrics(h_b, w_b, h_r, w_r, targets, chunk_tokens=3)
    assert all(out[k].shape == (m,) for k in logprobs.METRICS_TWO)
    assert np.all(np.asarray(out["kl_rl_base"]) > 0) and np.all(np.asarray(out["kl_base_rl"]) > 0)
    np.testing.assert_allclose(out["dlogp"], out["logp_rl"] - out["logp_base"], atol=1e-6)
    # Padding columns on one model only: vocab_limit aligns the two vocabularies.
    w_r_padded = np.concatenate([w_r, rng.normal(size=(4, 3)).astype(np.float32)], axis=1)
    padded = logprobs.pair_metrics(
        h_b, w_b, h_r, w_r_padded, targets, chunk_tokens=3, vocab_limit=v
    )
    for name in logprobs.METRICS_TWO:
        np.testing.assert_allclose(padded[name], out[name], rtol=1e-5, atol=1e-6, err_msg=name)
