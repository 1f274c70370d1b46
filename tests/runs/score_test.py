"""token_table: the long per-token table from (example, metrics) pairs, by hand."""

import numpy as np

from dlogp_jax import toy
from dlogp_jax.data.prompts import Example
from dlogp_jax.runs import token_table


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
        "logp_base",
        "entropy_base",
        "group",
    ]
    assert table["row"].tolist() == [0, 0, 1, 1] and table["position"].tolist() == [0, 1, 0, 1]
    assert table["token_id"].tolist() == ids and table["token"].tolist() == ["a", "b", "Ġ", "c"]
    assert table["logp_base"].tolist() == [-3.0, -4.0, -1.0, -2.0]
    assert table["group"].tolist() == ["base", "base", "rl", "rl"]
    plain = token_table([(Example(0, (5,), (1,)), {"logp": np.array([-1.0])})], tok)
    assert "group" not in plain
