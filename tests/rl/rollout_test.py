"""`rollout.collect` and `score_round` with a fake generator: no model runs.

The fake `generate_round` answers prompt i, sample j with the tokens [flag, 100*i + j, 0, ...]
(flag 1 = correct, 2 = wrong, from PATTERNS[i]); the fake tokenizer spells ids with commas and the
fake grader gives +1 when the first id is 1, else -1. So every expectation below follows by hand from
PATTERNS.
"""

import numpy as np
import pytest

from dlogp_jax.data.prompts import Prompt
from dlogp_jax.rl import rollout
from dlogp_jax.rl.rollout import Groups, NotEnoughGroups, RolloutConfig

N = 2  # responses per prompt
M = 4  # response slots
TP = 3  # prompt bucket
# One entry per prompt: what its N responses are (c correct, w wrong). Rounds take 4 prompts each:
# round 0 keeps [0], round 1 keeps [5], round 2 keeps [8, 10, 11] (cc / ww groups carry no signal).
PATTERNS = ["cw", "cc", "ww", "ww", "ww", "cw", "cc", "ww", "wc", "cc", "cw", "wc"]
PROMPTS = [Prompt(index=i, ids=(7, 7), answer="1", data_source="toy") for i in range(len(PATTERNS))]


class FakeTokenizer:
    def decode(self, ids, skip_special_tokens=True):
        assert skip_special_tokens
        return ",".join(str(i) for i in ids)


class FakeGrader:
    def __init__(self):
        self.calls = []

    def score(self, name, texts, truths):
        self.calls.append((name, list(texts), list(truths)))
        return [1.0 if t.split(",")[0] == a else -1.0 for t, a in zip(texts, truths, strict=True)]


def _length(i, j):
    return 2 + (i + j) % 2  # 2 or 3: the pad after the id is decoded only when the length says so


def fake_generate_round(calls):
    def generate_round(params, *, config, prompts, idx, spec, seed, tp, mesh, engine):
        calls.append({"idx": list(idx), "seed": seed, "tp": tp, "engine": engine})
        idx = np.asarray(idx, np.int32)
        responses = np.zeros((len(idx) * N, M), np.int32)
        lengths = np.zeros(len(idx) * N, np.int32)
        for g, i in enumerate(idx):
            for j in range(N):
                responses[g * N + j, :2] = (1 if PATTERNS[i][j] == "c" else 2, 100 * i + j)
                lengths[g * N + j] = _length(i, j)
        tokens = np.repeat(idx[:, None], tp, axis=1)  # prompt row g is all i: traceable
        return idx, tokens, np.ones_like(tokens, bool), responses, lengths

    return generate_round


def _collect(monkeypatch, **cfg):
    calls = []
    monkeypatch.setattr(rollout, "generate_round", fake_generate_round(calls))
    rounds = iter([list(range(r * 4, r * 4 + 4)) for r in range(3)])
    cfg = RolloutConfig(n=N, gen_prompts=4, max_response_len=M, **cfg)
    batch, stats = rollout.collect(
        cfg,
        next_prompts=lambda: next(rounds),
        params=None,
        model=None,
        prompts=PROMPTS,
        spec=None,
        seeds=lambda r: 1000 + r,
        tp=TP,
        tokenizer=FakeTokenizer(),
        grader=FakeGrader(),
        mesh=None,
    )
    return batch, stats, calls


def _check_rows(batch: Groups, want_prompts):
    """Every field of the batch belongs to the prompts `want_prompts`, in that order."""
    np.testing.assert_array_equal(batch.prompt_index, want_prompts)
    np.testing.assert_array_equal(batch.prompt_tokens, np.repeat(np.c_[want_prompts], TP, axis=1))
    assert batch.prompt_mask.shape == (len(want_prompts), TP) and batch.prompt_mask.all()
    ids = [100 * i + j for i in want_prompts for j in range(N)]
    np.testing.assert_array_equal(batch.responses[:, 1], ids)
    np.testing.assert_array_equal(
        batch.lengths, [_length(i, j) for i in want_prompts for j in range(N)]
    )
    acc = [[float(c == "c") for c in PATTERNS[i]] for i in want_prompts]
    np.testing.assert_array_equal(batch.accuracy, acc)
    np.testing.assert_array_equal(batch.rewards, 2 * np.asarray(acc) - 1)  # ±1, no shaping


def test_backfills_over_rounds_and_cuts_the_surplus(monkeypatch):
    """Rounds keep 1, 1 and 3 informative groups; train_prompts=4 is reached in the last allowed
    round, and group 11 (the fifth) is cut."""
    batch, stats, calls = _collect(monkeypatch, train_prompts=4, max_gen_rounds=3)
    _check_rows(batch, [0, 5, 8, 10])
    assert [c["idx"] for c in calls] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert [c["seed"] for c in calls] == [1000, 1001, 1002] and {c["tp"] for c in calls} == {TP}
    # 11 of the 24 responses are correct (3 + 3 + 5 per round).
    assert stats == {
        "gen_rounds": 3,
        "groups_generated": 12,
        "groups_kept": 5,
        "reward_mean": pytest.approx((11 - 13) / 24),
        "accuracy": pytest.approx(11 / 24),
    }


def test_stops_generating_once_the_batch_is_full(monkeypatch):
    batch, stats, calls = _collect(monkeypatch, train_prompts=2, max_gen_rounds=3)
    _check_rows(batch, [0, 5])
    assert len(calls) == 2
    assert (stats["gen_rounds"], stats["groups_generated"], stats["groups_kept"]) == (2, 8, 2)
    assert stats["accuracy"] == pytest.approx(6 / 16)


@pytest.mark.parametrize(
    ("train_prompts", "rounds", "kept", "generated"), [(4, 2, 2, 8), (6, 3, 5, 12)]
)
def test_not_enough_groups_when_rounds_run_out(monkeypatch, train_prompts, rounds, kept, generated):
    with pytest.raises(NotEnoughGroups) as err:
        _collect(monkeypatch, train_prompts=train_prompts, max_gen_rounds=rounds)
    msg = str(err.value)
    assert f"kept {kept} informative groups" in msg
    assert f"out of {generated} generated in {rounds} rounds" in msg
    assert f"train_prompts={train_prompts}" in msg


def test_without_dynamic_sampling_constant_groups_are_kept(monkeypatch):
    batch, stats, calls = _collect(
        monkeypatch, train_prompts=3, max_gen_rounds=3, dynamic_sampling=False
    )
    _check_rows(batch, [0, 1, 2])  # cw, cc, ww: the all-correct and all-wrong groups stay
    assert len(calls) == 1
    assert (stats["gen_rounds"], stats["groups_generated"], stats["groups_kept"]) == (1, 4, 4)
    assert stats["accuracy"] == pytest.approx(3 / 8)


def test_groups_take_and_concat_keep_rows_together():
    g = Groups(
        prompt_index=np.array([10, 11, 12]),
        prompt_tokens=np.arange(6).reshape(3, 2),
        prompt_mask=np.ones((3, 2), bool),
        responses=np.arange(6)[:, None] * np.ones((1, M), int),  # row r holds r
        lengths=np.arange(6),
        rewards=np.arange(6, dtype=np.float32).reshape(3, 2),
        accuracy=np.zeros((3, 2), np.float32),
    )
    t = g.take(np.array([2, 0]))
    np.testing.assert_array_equal(t.prompt_index, [12, 10])
    np.testing.assert_array_equal(t.responses[:, 0], [4, 5, 0, 1])
    np.testing.assert_array_equal(t.lengths, [4, 5, 0, 1])
    np.testing.assert_array_equal(t.rewards, [[4, 5], [0, 1]])
    c = Groups.concat([t, g.take(np.array([1]))])
    np.testing.assert_array_equal(c.prompt_index, [12, 10, 11])
    np.testing.assert_array_equal(c.responses[:, 0], [4, 5, 0, 1, 2, 3])
    np.testing.assert_array_equal(c.prompt_tokens, [[4, 5], [0, 1], [2, 3]])


def test_score_round_routes_rewards_by_source_and_shapes_overlong():
    """Rewards per data_source prefix; accuracy from the raw reward; the overlong penalty
    (max_response_len 4, buffer 2) only on the shaped reward."""
    prompts = [
        Prompt(index=0, ids=(1,), answer="1", data_source="math_dapo"),
        Prompt(index=1, ids=(1,), answer="1", data_source="other"),
    ]
    cfg = RolloutConfig(
        n=2,
        max_response_len=4,
        overlong_buffer=2,
        rewards_by_source=(("math", "r_math"),),
        default_reward="r_default",
    )
    responses = np.array([[1, 5, 9, 9], [2, 5, 9, 9], [1, 6, 9, 9], [1, 6, 9, 9]])
    lengths = np.array([4, 2, 3, 2])
    grader = FakeGrader()
    shaped, acc = rollout.score_round(
        cfg,
        prompts=prompts,
        idx=np.array([0, 1]),
        responses=responses,
        lengths=lengths,
        tokenizer=FakeTokenizer(),
        grader=grader,
    )
    # One grader call per reward, in name order, with only that reward's (trimmed) responses.
    assert grader.calls == [
        ("r_default", ["1,6,9", "1,6"], ["1", "1"]),
        ("r_math", ["1,5,9,9", "2,5"], ["1", "1"]),
    ]
    np.testing.assert_array_equal(acc, [[1, 0], [1, 1]])  # [0, 0] is correct but shaped to 0
    # penalty: length 2 -> 0, 3 -> -(3-2)/2, 4 -> -1.
    np.testing.assert_allclose(shaped, [[1.0 - 1.0, -1.0], [1.0 - 0.5, 1.0]])
    assert shaped.dtype == acc.dtype == np.float32


def test_reward_for_prefix_then_default():
    cfg = RolloutConfig(rewards_by_source=(("math", "a"), ("math_dapo", "b")), default_reward="d")
    assert [cfg.reward_for(s) for s in ("math_dapo", "mathx", "gsm8k")] == ["a", "a", "d"]
