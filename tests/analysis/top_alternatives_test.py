"""Each model's top-K alternatives: chunked inside the jitted scorer, against NumPy on full logits."""

import jax
import numpy as np
import pytest

from dlogp_jax import logprobs, toy
from dlogp_jax.analysis.scoring import BatchSettings, score_examples
from dlogp_jax.data.prompts import Example
from dlogp_jax.model import hf_weights, transformer
from dlogp_jax.model.pair import load_pair
from dlogp_jax.runs import token_table

B, T, K = 2, 9, 5
MASK = np.arange(T)[None, :] < np.asarray([T, 6])[:, None]
SCORED = MASK & (np.arange(T) > 0)

_apply = jax.jit(transformer.apply, static_argnames="config")


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    return toy.build_pair(tmp_path_factory.mktemp("pair"), seed=5, pad_rows=7)


@pytest.fixture(scope="module")
def batch():
    tokens = np.random.default_rng(0).integers(0, 99, (B, T)).astype(np.int32)
    return tokens, np.where(MASK, np.arange(T), 0).astype(np.int32), MASK


def _naive_logp(config, params, batch, vocab):
    """[B, T-1, V] float64 next-token log-probs from the full logits."""
    logits, _ = _apply(params, *batch[:2], None, batch[2], config=config)
    z = np.asarray(logits, np.float64)[:, :-1, :vocab]
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _check_top(ids, logp, ref_logp):
    """ids/logp [B, T, K] against the K largest of ref_logp [B, T-1, V] (ties are not expected)."""
    ids, logp = np.asarray(ids), np.asarray(logp)
    assert ids.shape == logp.shape == (B, T, K) and ids.dtype == np.int32
    ref_ids = np.argsort(-ref_logp, axis=-1, kind="stable")[..., :K]
    sel = SCORED[:, 1:]
    np.testing.assert_array_equal(ids[:, 1:][sel], ref_ids[sel])
    ref_vals = np.take_along_axis(ref_logp, ref_ids, axis=-1)
    np.testing.assert_allclose(logp[:, 1:][sel], ref_vals[sel], rtol=1e-4, atol=1e-4)
    assert np.all(np.diff(logp[:, 1:][sel], axis=-1) <= 0)  # best first


@pytest.mark.parametrize("chunk", [5, 1024])
def test_two_models_top_k_equals_numpy(dirs, batch, chunk):
    (cb, pb), (cr, pr) = (hf_weights.load_params(d) for d in dirs)
    vocab = len(toy.build_tokenizer())
    assert cr.vocab_size == vocab + 7  # padded rows: they must never appear among the top K
    kw = dict(config_base=cb, config_rl=cr, vocab_limit=vocab, chunk_tokens=chunk)
    got = logprobs.score_tokens(pb, *batch, pr, top_alternatives=K, **kw)
    plain = logprobs.score_tokens(pb, *batch, pr, **kw)
    assert set(got) == set(plain) | {"top_ids_base", "top_logp_base", "top_ids_rl", "top_logp_rl"}
    for name in plain:  # the other metrics are unchanged
        np.testing.assert_array_equal(got[name], plain[name])
    _check_top(got["top_ids_base"], got["top_logp_base"], _naive_logp(cb, pb, batch, vocab))
    _check_top(got["top_ids_rl"], got["top_logp_rl"], _naive_logp(cr, pr, batch, vocab))
    assert np.asarray(got["top_ids_rl"]).max() < vocab


def test_one_model_top_k_and_no_vocabulary_sized_array(dirs, batch):
    cr, pr = hf_weights.load_params(dirs[1])
    vocab = len(toy.build_tokenizer())
    kw = dict(config_base=cr, vocab_limit=vocab, chunk_tokens=4, top_alternatives=K)
    got = logprobs.score_tokens(pr, *batch, **kw)
    assert set(got) == {"logp", "entropy", "top_ids", "top_logp"}
    _check_top(got["top_ids"], got["top_logp"], _naive_logp(cr, pr, batch, vocab))
    # Inside jit, the largest vocabulary-wide array is one chunk's [C, V] logits, never [B, T, V].
    text = (
        jax.jit(logprobs.score_tokens, static_argnames=tuple(kw) + ("config_base",))
        .lower(pr, *batch, **kw)
        .as_text()
    )
    assert f"tensor<{B}x{T}x{cr.vocab_size}xf32>" not in text
    assert f"tensor<{B * (T - 1)}x{cr.vocab_size}xf32>" not in text


def test_token_table_writes_list_columns(dirs):
    pair = load_pair(*dirs)
    tok = pair.tokenizer
    examples = [
        Example(0, tuple(tok.encode("ab", add_special_tokens=False)), (7, 8, 9)),
        Example(1, (5,), (11, 12)),
    ]
    results = list(score_examples(pair, examples, BatchSettings(2, 8, 3, top_alternatives=3)))
    assert results[0][1]["top_ids_rl"].shape[1] == 3
    table = token_table(results, tok)
    n = 5
    for model in ("base", "rl"):
        ids, toks, probs = (table[f"top_{c}_{model}"] for c in ("ids", "tokens", "probs"))
        assert isinstance(ids, list) and len(ids) == len(toks) == len(probs) == n
        assert all(len(r) == 3 for r in ids + toks + probs)
        assert toks[0] == tok.convert_ids_to_tokens(ids[0])
        assert all(1 >= p[0] >= p[1] >= p[2] > 0 for p in probs)
    # The top alternative's probability is at least the emitted token's.
    p_emitted = np.exp(table["logp_rl"])
    assert np.all(np.asarray(table["top_probs_rl"])[:, 0] >= p_emitted - 1e-5)
