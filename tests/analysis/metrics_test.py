"""Summary statistics on hand-computed tables."""

import numpy as np

from dlogp_jax.analysis import metrics


def test_describe_and_sparsity_by_hand():
    d = metrics.describe(np.array([1.0, 2.0, 3.0, 4.0]))
    assert d["count"] == 4 and d["mean"] == 2.5 and d["min"] == 1 and d["max"] == 4
    assert d["p50"] == 2.5 and abs(d["std"] - np.sqrt(1.25)) < 1e-12
    s = metrics.dlogp_sparsity(np.array([0.0, 0.05, -0.3, 0.7, -1.5, 3.0]))
    assert s == {"abs_gt_0.1": 4 / 6, "abs_gt_0.5": 3 / 6, "abs_gt_1": 2 / 6, "abs_gt_2": 1 / 6}
    assert metrics.describe(np.zeros(0)) == {"count": 0}


def test_summarize_extremes_and_groups():
    table = {
        "row": np.array([0, 0, 1, 1]),
        "position": np.array([0, 1, 0, 1]),
        "token_id": np.array([5, 6, 7, 8]),
        "token": np.array(["a", "b", "c", "d"]),
        "logp_base": np.array([-1.0, -2.0, -3.0, -0.5]),
        "logp_rl": np.array([-1.0, -0.5, -6.0, -0.5]),
        "dlogp": np.array([0.0, 1.5, -3.0, 0.0]),
        "group": np.array(["base", "base", "rl", "rl"]),
    }
    s = metrics.summarize(table, k=1)
    assert s["num_rows"] == 2 and s["num_tokens"] == 4
    assert s["dlogp_extremes"]["most_negative"][0]["token"] == "c"
    assert s["dlogp_extremes"]["most_positive"][0] == {
        "row": 0,
        "position": 1,
        "token_id": 6,
        "token": "b",
        "group": "base",
        "logp_base": -2.0,
        "logp_rl": -0.5,
        "dlogp": 1.5,
    }
    assert s["groups"]["rl"]["metrics"]["dlogp"]["mean"] == -1.5
    assert s["groups"]["base"]["dlogp_sparsity"]["abs_gt_1"] == 0.5
