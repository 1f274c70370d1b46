"""Logit parity with transformers' PyTorch Qwen2/Qwen3/Llama in fp32 (random tiny models, built in-test).

Every case runs one batch shape [B, T] = [3, 10], so each architecture compiles the forward once and the
plain, right-padded and position-offset checks share that program.
"""

import jax
import numpy as np
import pytest
import torch

from dlogp_jax.model import hf_weights, transformer
from dlogp_jax.model.config import ModelConfig
from tests.hf_models import hf_config, save_hf_model

B, T = 3, 10
LLAMA3_ROPE = {
    "rope_type": "llama3",
    "rope_theta": 10000.0,
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 32,
}
CASES = {
    "qwen2_gqa_untied": ("qwen2", dict(heads=4, kv_heads=2)),
    "qwen2_mqa_tied": ("qwen2", dict(heads=4, kv_heads=1, tied=True)),
    "qwen3_gqa_untied": ("qwen3", dict(heads=4, kv_heads=2)),
    "qwen3_mha_tied": ("qwen3", dict(heads=4, kv_heads=4, tied=True)),
    "llama_gqa_llama3_rope": ("llama", dict(heads=4, kv_heads=2, rope_parameters=LLAMA3_ROPE)),
    "llama_mha_tied_bias": ("llama", dict(heads=4, kv_heads=4, tied=True, attention_bias=True)),
    "llama_mqa_linear_rope": (
        "llama",
        dict(heads=4, kv_heads=1, rope_parameters={"rope_type": "linear", "factor": 2.0}),
    ),
}

_apply = jax.jit(transformer.apply, static_argnames="config")


@pytest.fixture(scope="module", params=list(CASES))
def case(request, tmp_path_factory):
    arch, kw = CASES[request.param]
    path = tmp_path_factory.mktemp(request.param)
    hf_model = save_hf_model(path, hf_config(arch, **kw), seed=len(request.param))
    config, params = hf_weights.load_params(path)
    return hf_model, config, params


def _hf_logits(model, tokens, positions=None) -> np.ndarray:
    with torch.no_grad():
        kw = {} if positions is None else {"position_ids": torch.as_tensor(positions)}
        return model(input_ids=torch.as_tensor(tokens), **kw).logits.numpy()


def _ours(case, tokens, positions, mask) -> np.ndarray:
    _, config, params = case
    logits, cache = _apply(params, tokens, positions, None, mask, config=config)
    assert cache is None
    return np.asarray(logits)


def _assert_rel_close(got, ref, tol=1e-4):
    rel = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
    assert rel <= tol, f"relative max error {rel:.2e} > {tol:.0e}"


def _tokens(seed: int, vocab: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab, (B, T)).astype(np.int32)


def test_config_read_from_hf(case):
    hf_model, config, _ = case
    hf = hf_model.config
    assert config.model_type == hf.model_type
    assert (config.num_heads, config.num_kv_heads) == (
        hf.num_attention_heads,
        hf.num_key_value_heads,
    )
    assert config.tie_embeddings == hf.tie_word_embeddings
    assert config.rope.rope_type == hf.rope_parameters["rope_type"]


def test_logits_match_hf(case):
    hf_model, config, _ = case
    tokens = _tokens(0, config.vocab_size)
    positions = np.broadcast_to(np.arange(T, dtype=np.int32), (B, T))
    got = _ours(case, tokens, positions, np.ones((B, T), bool))
    assert got.shape == (B, T, config.vocab_size) and got.dtype == np.float32
    _assert_rel_close(got, _hf_logits(hf_model, tokens))


def test_right_padded_batch_matches_unpadded_hf(case):
    hf_model, config, _ = case
    lengths = [T, 6, 3]
    tokens = _tokens(1, config.vocab_size)
    mask = np.arange(T)[None, :] < np.asarray(lengths)[:, None]
    positions = np.where(mask, np.arange(T), 0).astype(np.int32)
    got = _ours(case, tokens, positions, mask)
    for i, n in enumerate(lengths):
        _assert_rel_close(got[i, :n], _hf_logits(hf_model, tokens[i : i + 1, :n])[0])


def test_position_offsets_match_hf(case):
    hf_model, config, _ = case
    tokens = _tokens(2, config.vocab_size)
    # Constant offsets (a continuation) and, in the last row, strided positions: RoPE is relative, so
    # only the strided row shows that positions reach the rotation at all.
    positions = np.stack([np.arange(T), 7 + np.arange(T), 300 + 3 * np.arange(T)]).astype(np.int32)
    got = _ours(case, tokens, positions, np.ones((B, T), bool))
    ref = _hf_logits(hf_model, tokens, positions)
    _assert_rel_close(got, ref)
    plain = _hf_logits(hf_model, tokens)
    assert np.max(np.abs(plain[2] - ref[2])) > 1e-2


def test_unrolled_layers_equal_scan():
    # Every optional branch at once: q/k/v and o biases, q/k norms, untied head.
    config = ModelConfig(
        model_type="llama", vocab_size=50, num_kv_heads=1, qkv_bias=True, o_bias=True, qk_norm=True
    )
    rng = np.random.default_rng(0)
    table = transformer.param_table(config)
    params = jax.tree.map(
        lambda i: rng.normal(1.0 if i.init == "ones" else 0.0, 0.3, i.shape).astype(np.float32),
        table,
        is_leaf=lambda x: isinstance(x, transformer.ParamInfo),
    )
    tokens = _tokens(3, config.vocab_size)
    positions = np.broadcast_to(np.arange(T, dtype=np.int32), (B, T))
    mask = np.ones((B, T), bool)
    scanned = _apply(params, tokens, positions, None, mask, config=config)[0]
    unrolled_cfg = config.replace(scan_layers=False)
    unrolled = _apply(params, tokens, positions, None, mask, config=unrolled_cfg)[0]
    np.testing.assert_allclose(np.asarray(unrolled), np.asarray(scanned), rtol=1e-5, atol=1e-5)
