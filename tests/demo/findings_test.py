"""The demo's statistics against hand-computed cases."""

import json

import numpy as np
import pytest

from dlogp_jax.analysis import accuracy
from dlogp_jax.demo import findings


def test_thresholds_for_rates_hit_the_target_rates():
    rng = np.random.default_rng(0)
    dlogp = np.where(rng.random(10_000) < 0.9, 0.0, -rng.exponential(1.0, 10_000))
    entropy = rng.exponential(0.3, 10_000)
    for rate in (0.01, 0.05, 0.08):
        (tau,) = findings.thresholds_for_rates("dlogp", dlogp, [rate])
        assert np.mean(dlogp <= tau) == pytest.approx(rate, abs=2e-3)  # fires at Δlog p <= τ
        (tau,) = findings.thresholds_for_rates("entropy_base", entropy, [rate])
        assert np.mean(entropy >= tau) == pytest.approx(rate, abs=2e-3)  # fires at H >= τ
    assert findings.thresholds_for_rates("random", np.zeros(0), [0.1, 0.3]) == [0.1, 0.3]


def test_rate_to_reach_interpolates_linearly():
    pts = [(0.1, 0.5), (0.01, 0.2), (0.05, 0.4)]  # unsorted on purpose
    assert findings.rate_to_reach(pts, 0.3) == pytest.approx(0.01 + 0.5 * 0.04)
    assert findings.rate_to_reach(pts, 0.45) == pytest.approx(0.075)
    assert findings.rate_to_reach(pts, 0.1) == 0.01  # the first point already reaches it
    assert findings.rate_to_reach(pts, 0.6) is None


def test_seed_difference_is_welch_or_no_interval_with_one_seed():
    x, y = [0.5, 0.55, 0.6], [0.4, 0.42, 0.5]
    assert findings.seed_difference(x, y) == accuracy.welch_difference(x, y)
    one = findings.seed_difference([0.5], [0.4, 0.42])
    assert one["mean"] == pytest.approx(0.09) and np.isnan(one["ci95"])
    assert findings.verdict(one) == "not established"


def test_verdicts():
    assert findings.verdict({"mean": 0.1, "ci95": 0.05}) == "yes"
    assert findings.verdict({"mean": 0.1, "ci95": 0.2}) == "not established"
    assert findings.verdict({"mean": -0.1, "ci95": 0.05}) == "no"
    assert findings.verdict({"mean": 0.0, "ci95": float("nan")}) == "no"


def test_overlap_coefficient():
    x = np.random.default_rng(0).normal(size=5000)
    assert findings.overlap(x, x) == pytest.approx(1.0)
    assert findings.overlap(x, x + 100) == 0.0


def _table(base_tail_sign: float, rl_tail_sign: float, rng) -> dict[str, np.ndarray]:
    cols = {}
    for g, sign in (("base", base_tail_sign), ("rl", rl_tail_sign)):
        n = 4000
        tail = rng.random(n) < 0.1
        cols.setdefault("dlogp", []).append(
            np.where(tail, sign * (0.6 + rng.exponential(2, n)), 0.0)
        )
        for k in ("entropy_base", "entropy_rl", "kl_rl_base", "kl_base_rl"):
            cols.setdefault(k, []).append(rng.exponential(0.5, n))  # same magnitude distribution
        cols.setdefault("group", []).append(np.full(n, g))
    return {k: np.concatenate(v) for k, v in cols.items()}


def test_finding_a_on_synthetic_tables():
    rng = np.random.default_rng(1)
    stats = findings.direction_stats(_table(-1.0, +1.0, rng))  # the paper's picture
    assert stats["groups"]["base"]["negative_share_of_tail"] == 1.0
    assert stats["groups"]["rl"]["negative_share_of_tail"] == 0.0
    assert stats["overlap"]["dlogp_tails"] == 0.0 and stats["overlap"]["entropy_base"] > 0.8
    assert findings.finding_a(stats)["reproduced"] == "yes"
    same = findings.direction_stats(_table(-1.0, -1.0, rng))  # no direction difference
    assert findings.finding_a(same)["reproduced"] == "no"
    json.dumps(stats)  # results.json material


def test_finding_b():
    curves = {
        "dlogp": [{"rate": 0.02, "accuracy": 0.4}, {"rate": 0.05, "accuracy": 0.6}],
        "entropy_base": [{"rate": 0.05, "accuracy": 0.35}, {"rate": 0.2, "accuracy": 0.55}],
        "random": [{"rate": 0.1, "accuracy": 0.32}, {"rate": 0.3, "accuracy": 0.4}],
    }
    out = findings.finding_b(curves, base_acc=0.3, rl_acc=0.55)
    assert out["reach_rl"]["dlogp"] == pytest.approx(0.02 + 0.75 * 0.03)
    assert (
        out["reach_rl"]["entropy_base"] == pytest.approx(0.2) and out["reach_rl"]["random"] is None
    )
    assert out["fewest_to_rl"] == "dlogp" and out["reproduced"] == "yes"
    curves["entropy_base"][0] = {"rate": 0.01, "accuracy": 0.56}  # entropy gets there first
    assert findings.finding_b(curves, 0.3, 0.55)["reproduced"] == "no"
    assert findings.finding_b(curves, 0.55, 0.5)["reproduced"].startswith("n/a")


def test_rate_to_reach_interval_from_the_ci_bands():
    # Points (rate, Avg@n, ±ci95): the target 0.55 is reached by the upper band (0.4+0.1, 0.6+0.1)
    # at 0.02 + 0.05/0.2·0.03, by the point curve at 0.02 + 0.75·0.03, by the lower band
    # (0.3, 0.5, 0.7) between 0.05 and 0.1 at 0.05 + 0.05/0.2·0.05.
    pts = [(0.02, 0.4, 0.1), (0.05, 0.6, 0.1), (0.1, 0.8, 0.1)]
    low, high = findings.rate_interval(pts, 0.55)
    assert low == pytest.approx(0.02 + 0.25 * 0.03) and high == pytest.approx(0.05 + 0.25 * 0.05)
    assert low < findings.rate_to_reach([p[:2] for p in pts], 0.55) < high
    assert findings.rate_interval([(0.02, 0.4, 0.2), (0.05, 0.5, 0.2)], 0.65) == [
        pytest.approx(0.02 + 0.05 / 0.1 * 0.03),
        None,  # the lower band never gets there: the upper end is open
    ]
    assert findings.rate_interval([(0.02, 0.4, float("nan"))], 0.3) == [None, None]
    curves = {"dlogp": [{"rate": r, "accuracy": a, "accuracy_ci95": h} for r, a, h in pts]}
    out = findings.finding_b(curves, base_acc=0.3, rl_acc=0.55)
    assert out["reach_rl_interval"]["dlogp"] == [pytest.approx(low), pytest.approx(high)]
