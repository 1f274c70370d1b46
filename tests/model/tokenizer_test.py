"""Tokenizer loading: tokenizer.json is the source of truth; mismatched tokenizers are refused."""

import pytest

from dlogp_jax import toy
from dlogp_jax.model.hf_weights import CheckpointError
from dlogp_jax.model.tokenizer import check_same_tokenizer, load_tokenizer


def test_exported_toy_tokenizer_round_trips_spaces_and_newlines(tmp_path):
    # transformers 5 would hand this qwen2 checkpoint a Qwen2Tokenizer that drops spaces.
    base, _ = toy.build_pair(tmp_path)
    tok, ref = load_tokenizer(base), toy.build_tokenizer()
    text = "Start at 7.\nAdd 5: 7+5=12\nAnswer: 12"
    assert tok.encode(text, add_special_tokens=False) == ref.encode(text, add_special_tokens=False)
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    assert len(tok) == len(ref) and tok.eos_token == "<|im_end|>" and tok.chat_template


def test_missing_tokenizer_and_different_vocabularies(tmp_path):
    with pytest.raises(CheckpointError, match="no tokenizer.json"):
        load_tokenizer(tmp_path)
    a, b = toy.build_tokenizer(), toy.build_tokenizer(chars="abc ")
    check_same_tokenizer(a, toy.build_tokenizer())
    with pytest.raises(CheckpointError, match=r"sizes differ: base has 99 tokens, rl has 7"):
        check_same_tokenizer(a, b)
