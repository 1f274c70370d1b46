"""token_table: the long per-token table from (example, metrics) pairs, by hand."""

import numpy as np

from dlogp_jax import toy
from dlogp_jax.data.prompts import Example
from dlogp_jax.runs import token_table
from dlogp_jax.runs._score import id_columns


def test_rows_sorted_columns_ordered_groups_kept():
    tok = toy.build_tokenizer()
    ids = tok.encode("ab c", add_special_tokens=False)
    results = [
        (Example(1, (5,), tuple(ids[2:]), "rl"), {"logp": np.array([-1.0, -2.0])}),
        (
            Example(0, (5,), tuple(ids[:2]), "base"),
            {"entropy": np.array([0.5, 0.25]), "logp": np.array([-3.0, -4.0])},
        ),
    ]  # scored out of order (longest batch first)
    table = token_table(results, tok)
    assert list(table) == [
        "row",
        "position",
        "token_id",
        "token",
        "token_text",
        "logp_base",
        "entropy_base",
        "group",
    ]
    assert table["row"].tolist() == [0, 0, 1, 1] and table["position"].tolist() == [0, 1, 0, 1]
    assert table["token_id"].tolist() == ids and table["token"].tolist() == ["a", "b", "Ġ", "c"]
    assert table["token_text"].tolist() == ["a", "b", " ", "c"]  # decoded, not byte-level
    assert table["logp_base"].tolist() == [-3.0, -4.0, -1.0, -2.0]
    assert table["group"].tolist() == ["base", "base", "rl", "rl"]
    plain = token_table([(Example(0, (5,), (1,)), {"logp": np.array([-1.0])})], tok)
    assert "group" not in plain


def test_input_id_columns_join_tokens_back_to_samples():
    tok = toy.build_tokenizer()
    rows = [
        {"prompt_index": 3, "sample_index": 1, "id": "q3", "uid_id": 7, "prompt": "p"},
        {"prompt_index": 3, "sample_index": 0, "id": "q3b", "uid_id": 8, "prompt": "p"},
    ]
    columns = id_columns(rows)
    assert list(columns) == ["prompt_index", "sample_index", "id", "uid_id"]
    results = [
        (Example(0, (5,), (6, 7)), {"logp": np.array([-1.0, -2.0])}),
        (Example(1, (5,), (8,)), {"logp": np.array([-3.0])}),
    ]
    table = token_table(results, tok, row_columns=columns)
    assert list(table)[:7] == [
        "row",
        "prompt_index",
        "sample_index",
        "id",
        "uid_id",
        "position",
        "token_id",
    ]
    assert table["sample_index"].tolist() == [1, 1, 0] and table["id"].tolist() == [
        "q3",
        "q3",
        "q3b",
    ]
    # A field that is not a scalar in every row is not an id.
    assert id_columns([{"x_id": [1]}, {"x_id": 2}]) == {} and id_columns([]) == {}
