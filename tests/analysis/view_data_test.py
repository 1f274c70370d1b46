"""The viewer's payload: token text, per-token columns, alternatives, sample marks."""

import numpy as np

from dlogp_jax import toy
from dlogp_jax.analysis import view_data
from tests.view import pages


def test_display_tokens_join_to_the_text_and_split_characters_wait():
    assert view_data.display_tokens(pages.TOKENS0) == pages.TEXT0
    assert view_data.display_tokens(["▁Hi", "▁there"]) == [" Hi", " there"]  # SentencePiece
    assert view_data.display_tokens(["Ã"]) == ["\ufffd"]  # an unfinished character at the end
    assert view_data.one_token("Ã©") == "é" and view_data.one_token("Ã") == "\ufffd"


def test_score_payload(tmp_path):
    payload = view_data.from_score_dir(pages.score_dir(tmp_path, big=10))
    assert payload["kind"] == "score" and payload["alternatives"] == 3
    assert payload["colourings"] == list(view_data.COLOURINGS)
    assert payload["num_tokens"] == len(pages.TOKENS0) + 3 + 10
    r0, r1, r2 = payload["responses"]
    assert r0["tok"] == pages.TEXT0 and r0["m"]["dlogp"] == pages.DLOGP0
    assert (r0["group"], r0["correct"], r0["prompt"]) == ("base", True, "Say <hello>")
    assert (r1["correct"], r2["correct"]) == (False, None)
    assert r0["length"] == 7 and r0["n_big"] == 3
    assert np.isclose(r0["mean_dlogp"], np.mean(pages.DLOGP0), atol=1e-4)
    assert r0["alt_base"][0] == [[" base", 0.5], ["é", 0.25], ["\n", 0.125]]
    assert r0["alt_rl"][3][0] == [" rl", 0.5]
    assert payload["scales"]["dlogp"] >= 0.5


def test_sample_payload_marks_replacements(tmp_path):
    tok = toy.build_tokenizer()
    root, ids, other = pages.sample_dir(tmp_path, tok)
    payload = view_data.from_sample_dir(root, tok)
    assert payload["kind"] == "sample" and payload["colourings"] == ["dlogp"]
    assert payload["run"]["mode"] == "replace"
    s0, s1 = payload["responses"]
    assert "".join(s0["tok"]) == "ab c" and s0["prompt"] == "p0" and s0["group"] == "replace"
    assert s0["sel"][:2] == [0, 1] and s0["prop"][1] == "z"
    assert all(p is None for k, p in enumerate(s0["prop"]) if k != 1)
    assert s1["prop"] == [None, None] and s1["correct"] is False
