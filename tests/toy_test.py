"""The toy tokenizer: one id per character, in CHARS order, and the special tokens after them."""

import pytest

from dlogp_jax import toy


def test_character_ids_and_round_trip():
    tok = toy.build_tokenizer()
    assert len(tok) == len(toy.CHARS) + len(toy.SPECIAL_TOKENS)
    assert tok.encode(toy.CHARS, add_special_tokens=False) == list(range(len(toy.CHARS)))
    text = "Start at 7: +5, *2.\n7+5=12\n12*2=24\nAnswer: 24"
    ids = tok.encode(text, add_special_tokens=False)
    assert len(ids) == len(text) and tok.decode(ids) == text
    assert tok.convert_ids_to_tokens(tok.encode(" \n", add_special_tokens=False)) == ["Ġ", "Ċ"]
    im_end = tok.encode("<|im_end|>", add_special_tokens=False)
    assert im_end == [len(toy.CHARS) + toy.SPECIAL_TOKENS.index("<|im_end|>")]


def test_unknown_characters_and_non_ascii_vocabulary():
    tok = toy.build_tokenizer("ab")
    assert tok.encode("ab€", add_special_tokens=False)[:2] == [0, 1]  # € -> <|endoftext|>
    with pytest.raises(ValueError, match="ASCII"):
        toy.build_tokenizer("aé")
