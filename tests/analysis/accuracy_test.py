"""Avg@n with a t-interval, unbiased pass@k and maj@k, checked against brute force."""

import itertools

import numpy as np
import pytest
from scipy import stats

from dlogp_jax.analysis import accuracy
from dlogp_jax.analysis.sample_summary import summarize_samples


def test_t_quantile_is_students_t_not_a_table():
    assert accuracy.t_quantile(4) == pytest.approx(2.7764451)
    assert accuracy.t_quantile(30) == pytest.approx(2.0422725)  # the old table said 1.96
    assert accuracy.t_quantile(10**6) == pytest.approx(1.959966, abs=1e-5)
    assert np.isnan(accuracy.t_quantile(0))


def test_mean_ci_uses_t_with_prompts_minus_one_df():
    x = np.asarray([1.0, 1 / 3, 0.0, 2 / 3, 1 / 3])
    got = accuracy.mean_ci(x)
    half = stats.t.ppf(0.975, 4) * x.std(ddof=1) / np.sqrt(5)
    assert got == {"mean": pytest.approx(7 / 15), "ci95": pytest.approx(half), "num_prompts": 5}
    assert np.isnan(accuracy.mean_ci(np.asarray([0.5]))["ci95"])
    assert accuracy.mean_ci(np.asarray([]))["num_prompts"] == 0


@pytest.mark.parametrize("n, c", [(4, 0), (4, 1), (4, 4), (6, 2), (5, 3)])
def test_pass_at_k_is_the_mean_over_all_k_subsets(n, c):
    correct = [True] * c + [False] * (n - c)
    for k in range(1, n + 1):
        subsets = list(itertools.combinations(correct, k))
        brute = np.mean([any(s) for s in subsets])
        assert accuracy.pass_at_k(n, c, k) == pytest.approx(brute)
    with pytest.raises(ValueError, match="1 <= k <= n"):
        accuracy.pass_at_k(n, c, n + 1)


def test_ks_are_powers_of_two_then_n():
    assert accuracy.ks_up_to(1) == [1]
    assert accuracy.ks_up_to(4) == [1, 2, 4]
    assert accuracy.ks_up_to(6) == [1, 2, 4, 6]
    assert accuracy.ks_up_to(32) == [1, 2, 4, 8, 16, 32]


def test_majority_vote():
    # "2" is given twice (wrong), "3" once (right): the vote is wrong; no answer does not vote.
    assert not accuracy.majority_correct(["2", "3", "2", None], [False, True, False, False])
    assert accuracy.majority_correct(
        ["3", "2", None, None], [True, False, False, False]
    )  # tie: first
    assert not accuracy.majority_correct([None, None], [False, False])
    keys, correct = ["1", "1", "2", "2"], [True, True, False, False]
    assert accuracy.maj_at_k(keys, correct, 2) == 0.5  # blocks (1, 1) right, (2, 2) wrong
    assert accuracy.maj_at_k(keys, correct, 4) == 1.0  # tie 2-2: "1" came first
    assert accuracy.maj_at_k(keys, correct, 1) == 0.5


def test_accuracy_metrics_over_prompts():
    groups = {
        0: [(True, "5"), (False, "4"), (True, "5"), (False, None)],
        1: [(False, "1"), (False, "1"), (False, "2"), (True, "3")],
    }
    got = accuracy.accuracy_metrics(groups)
    assert got["accuracy"] == pytest.approx(0.375)
    half = stats.t.ppf(0.975, 1) * np.std([0.5, 0.25], ddof=1) / np.sqrt(2)
    assert got["accuracy_ci95"] == pytest.approx(half)
    assert got["num_prompts"] == 2 and got["samples_per_prompt"] == 4
    assert got["pass_at_k"] == {
        "1": pytest.approx(0.375),
        "2": pytest.approx(((1 - 1 / 6) + (1 - 3 / 6)) / 2),
        "4": 1.0,
    }
    # maj@2: prompt 0's blocks (5 | 4: tie, 5 first) and (5 | none) are right; prompt 1's (1, 1)
    # and (2 | 3: tie, 2 first) wrong. maj@4: "5" wins prompt 0, "1" wins prompt 1.
    assert got["maj_at_k"] == {"1": pytest.approx(0.375), "2": 0.5, "4": 0.5}


def test_sample_summary_reports_the_same_metrics():
    def row(text, correct, **kw):
        base = dict(length=3, replacement_rate=0.0, selected=[0, 0, 0], finish_reason="stop")
        return {**base, "text": text, "correct": correct, **kw}

    by_prompt = {
        0: [row("\\boxed{5}<|im_end|>", True), row("Answer: 4", False, timed_out=True)],
        1: [row("\\boxed{1}", False), row("\\boxed{1}", False)],
    }
    got = summarize_samples(by_prompt)
    want = accuracy.accuracy_metrics(
        {0: [(True, "5"), (False, "4")], 1: [(False, "1"), (False, "1")]}
    )
    for key in ("accuracy", "accuracy_ci95", "samples_per_prompt", "pass_at_k", "maj_at_k"):
        assert got[key] == want[key]
    assert got["grading_timeouts"] == 1


def test_paired_and_welch_differences():
    a, b = {0: 1.0, 1: 0.5, 2: 0.25}, {0: 0.5, 1: 0.5, 2: 0.0, 3: 1.0}
    d = np.asarray([0.5, 0.0, 0.25])
    got = accuracy.paired_difference(a, b)
    assert got["mean"] == pytest.approx(0.25) and got["num_prompts"] == 3
    assert got["ci95"] == pytest.approx(stats.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3))
    x, y = [0.40, 0.42, 0.38], [0.30, 0.36]
    ref = stats.ttest_ind(x, y, equal_var=False).confidence_interval(0.95)
    w = accuracy.welch_difference(x, y)
    assert w["mean"] - w["ci95"] == pytest.approx(ref.low)
    assert w["mean"] + w["ci95"] == pytest.approx(ref.high)
    with pytest.raises(ValueError, match="at least two replicates per side"):
        accuracy.welch_difference([0.4], [0.3, 0.35])
