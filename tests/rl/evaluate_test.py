"""`evaluate`: Avg@n, its interval and lengths, by hand with a fake generator; and, with a tiny
random model, results that do not depend on `batch_prompts` (the last batch is padded)."""

import jax
import numpy as np
import pytest

from dlogp_jax import toy
from dlogp_jax.data.prompts import Prompt
from dlogp_jax.engine.choice import EngineChoice
from dlogp_jax.model import transformer
from dlogp_jax.model.tokenizer import stop_token_ids
from dlogp_jax.rl import evaluate as evaluate_mod
from dlogp_jax.sampling import DecodeSpec
from dlogp_jax.sharding import make_mesh

N = 3
M = 8
# Prompt i, sample j is correct where PATTERNS[i][j] == "c": per-prompt accuracy 1, 1/3, 0, 2/3, 1/3.
PATTERNS = ["ccc", "cww", "www", "cwc", "wcw"]
PROMPTS = [Prompt(index=i, ids=(5,), answer="1", data_source="toy") for i in range(len(PATTERNS))]


class FakeTokenizer:
    def decode(self, ids, skip_special_tokens=True):
        return ",".join(str(i) for i in ids)


class FakeGrader:
    """+1 / -1 when the response's last id is / is not the answer (the fake generator's flag)."""

    def __init__(self):
        self.names = []

    def score_each(self, names, texts, truths):
        self.names.extend(names)
        got = [1.0 if t.split(",")[-1] == a else -1.0 for t, a in zip(texts, truths, strict=True)]
        return got, [False] * len(got)


def _fake_generate_round(batches):
    def generate_round(params, *, config, prompts, idx, spec, seed, tp, mesh, engine, shared):
        assert shared  # every process evaluates the same prompts: decoded once, not per process
        batches.append(list(idx))
        # Row i*N + j: (length - 1) filler tokens 3, then the flag (1 correct, 2 wrong), then pads 9
        # that the grader must not see.
        responses = np.full((len(idx) * N, M), 9, np.int32)
        lengths = np.zeros(len(idx) * N, np.int32)
        for g, i in enumerate(idx):
            for j in range(N):
                length = lengths[g * N + j] = 1 + i + j
                responses[g * N + j, : length - 1] = 3
                responses[g * N + j, length - 1] = 1 if PATTERNS[i][j] == "c" else 2
        tokens = np.zeros((len(idx), tp), np.int32)
        return np.asarray(idx), tokens, np.ones_like(tokens, bool), responses, lengths

    return generate_round


@pytest.mark.parametrize(
    ("batch_prompts", "want_batches"),
    [
        (1, [[0], [1], [2], [3], [4]]),
        (2, [[0, 1], [2, 3], [4, 4]]),
        (3, [[0, 1, 2], [3, 4, 4]]),
        (5, [[0, 1, 2, 3, 4]]),
        (8, [[0, 1, 2, 3, 4, 4, 4, 4]]),
    ],
)
@pytest.mark.parametrize(
    "engine", [EngineChoice(engine="static"), EngineChoice()], ids=["static", "paged"]
)
def test_avg_at_n_interval_and_lengths(monkeypatch, batch_prompts, want_batches, engine):
    batches = []
    monkeypatch.setattr(evaluate_mod, "generate_round", _fake_generate_round(batches))
    got = evaluate_mod.evaluate(
        None,
        model=None,
        tokenizer=FakeTokenizer(),
        prompts=PROMPTS,
        spec=DecodeSpec(mode="single", max_new_tokens=M, n=N),
        seed=0,
        tp=4,
        mesh=None,
        grader=FakeGrader(),
        batch_prompts=batch_prompts,
        engine=engine,
    )
    if engine.paged:  # the paged engine queues every prompt at once, whatever batch_prompts
        want_batches = [[0, 1, 2, 3, 4]]
    assert batches == want_batches  # one shape: the last batch is padded with its last prompt
    # Per-prompt accuracy x = (1, 1/3, 0, 2/3, 1/3): mean 7/15, deviations (8, -2, -7, 3, -2)/15,
    # sample variance 130/225/4 = 13/90, 95% half-width t(0.975, df=4)·sqrt(13/90/5), t = 2.776.
    # Lengths 1 + i + j over i < 5, j < 3: mean 1 + 2 + 1.
    # pass@k by hand (1 − C(n−c, k)/C(n, k)): c = 3, 1, 0, 2, 1 of n = 3; pass@1 = Avg@n,
    # pass@2 = (1 + 2/3 + 0 + 1 + 2/3)/5, pass@3 = 4/5. maj@k: the fake answers carry no `Answer:`
    # or box, so no sample votes and maj@k is 0 (a vote needs an extracted answer).
    assert got == {
        "eval_accuracy": pytest.approx(7 / 15),
        "eval_accuracy_ci95": pytest.approx(2.7764451 * np.sqrt(13 / 450)),
        "eval_pass_at_1": pytest.approx(7 / 15),
        "eval_pass_at_2": pytest.approx((1 + 2 / 3 + 0 + 1 + 2 / 3) / 5),
        "eval_pass_at_3": pytest.approx(4 / 5),
        "eval_maj_at_1": 0.0,
        "eval_maj_at_2": 0.0,
        "eval_maj_at_3": 0.0,
        "eval_length_mean": pytest.approx(4.0),
        "eval_timeouts": 0,
        "eval_num_prompts": 5,
        "eval_n": N,
    }


def test_each_prompt_is_graded_with_its_sources_reward(monkeypatch):
    """`reward_for(data_source)` names each row's reward (verl's validation uses the data source's
    reward: DAPO `Answer:` matching for math_dapo / aime rows); majority votes read that answer."""
    monkeypatch.setattr(evaluate_mod, "generate_round", _fake_generate_round([]))
    prompts = [
        Prompt(index=i, ids=(5,), answer="1", data_source=src)
        for i, src in enumerate(("math_dapo", "aime2024", "other", "math_dapo", "x"))
    ]
    grader = FakeGrader()
    reward_for = {"math_dapo": "dapo_answer", "aime2024": "dapo_answer"}.get
    evaluate_mod.evaluate(
        None,
        model=None,
        tokenizer=FakeTokenizer(),
        prompts=prompts,
        spec=DecodeSpec(mode="single", max_new_tokens=M, n=N),
        seed=0,
        tp=4,
        mesh=None,
        grader=grader,
        batch_prompts=2,
        reward_for=lambda s: reward_for(s, "accuracy"),
    )
    per_row = ["dapo_answer"] * 2 * N + ["accuracy"] * N + ["dapo_answer"] * N + ["accuracy"] * N
    assert grader.names == per_row


def test_majority_votes_and_timeouts_through_accuracy_metrics(monkeypatch):
    """Answers that vote: the same `accuracy_metrics` as dlogp-grade gives maj@k; timeouts count."""

    def generate_round(params, *, config, prompts, idx, spec, seed, tp, mesh, engine, shared):
        assert shared  # every process evaluates the same prompts: decoded once, not per process
        n = spec.n
        responses = np.zeros((len(idx) * n, 2), np.int32)
        responses[:, 0] = [7, 7, 8] * len(idx)  # answers 7, 7, 8 for each prompt
        return (
            np.asarray(idx),
            np.zeros((len(idx), tp), np.int32),
            None,
            responses,
            np.ones(len(idx) * n, np.int32),
        )

    class Tok:
        def decode(self, ids, skip_special_tokens=True):
            return f"Answer: {ids[0]}"

    class Grader:
        def score_each(self, names, texts, truths):
            got = [1.0 if t.endswith(a) else -1.0 for t, a in zip(texts, truths)]
            return got, [i == 2 for i in range(len(got))]

    monkeypatch.setattr(evaluate_mod, "generate_round", generate_round)
    prompts = [
        Prompt(index=0, ids=(5,), answer="7", data_source="math_dapo"),
        Prompt(index=1, ids=(5,), answer="8", data_source="math_dapo"),
    ]
    got = evaluate_mod.evaluate(
        None,
        model=None,
        tokenizer=Tok(),
        prompts=prompts,
        spec=DecodeSpec(mode="single", max_new_tokens=2, n=3),
        seed=0,
        tp=4,
        mesh=None,
        grader=Grader(),
        batch_prompts=2,
        reward_for=lambda s: "dapo_answer",
    )
    # Prompt 0 (gold 7): 2 of 3 right, majority 7 right; prompt 1 (gold 8): 1 of 3, majority wrong.
    assert got["eval_accuracy"] == pytest.approx(0.5)
    assert got["eval_maj_at_3"] == pytest.approx(0.5)
    assert got["eval_maj_at_1"] == pytest.approx(0.5)  # maj@1 = mean correctness
    assert got["eval_pass_at_3"] == pytest.approx(1.0)
    assert got["eval_timeouts"] == 1


def test_tiny_model_results_do_not_depend_on_batch_prompts_or_engine():
    """Real sampling: a sample depends on (seed, prompt index, sample index) only, so static
    batches of 2 (last one padded) and of 3, and the paged engine, grade the same responses."""
    tok = toy.build_tokenizer()
    config = toy.tiny_config(len(tok))
    params = transformer.init(jax.random.key(0), config, std=0.3)
    prompts = [
        Prompt(index=i, ids=tuple(tok.encode(text)), answer="", data_source="toy")
        for i, text in enumerate(("Say 1.", "Say 22.", "Hi"))
    ]
    spec = DecodeSpec(
        mode="single",
        temperature=1.0,
        max_new_tokens=6,
        n=2,
        stop_ids=stop_token_ids(tok),
        pad_id=tok.pad_token_id,
        vocab_limit=len(tok),
    )

    class TextGrader:  # "correct" = an even first character: varies with the sampled text
        def __init__(self):
            self.texts = []

        def score_each(self, names, texts, truths):
            self.texts.extend(texts)
            return [float(bool(t) and ord(t[0]) % 2 == 0) for t in texts], [False] * len(texts)

    results, texts = [], []
    for batch_prompts, engine in ((2, "static"), (3, "static"), (2, "paged")):
        grader = TextGrader()
        results.append(
            evaluate_mod.evaluate(
                params,
                model=config,
                tokenizer=tok,
                prompts=prompts,
                spec=spec,
                seed=7,
                tp=8,
                mesh=make_mesh("data:2"),
                grader=grader,
                batch_prompts=batch_prompts,
                engine=EngineChoice(engine=engine, max_seqs=2),
            )
        )
        texts.append(grader.texts)
    assert len(texts[0]) == len(texts[1]) == 6  # the padded prompt's samples are not graded
    assert texts[0] == texts[1] == texts[2]
    assert results[0] == results[1] == results[2]
    assert len(set(texts[0])) > 1  # samples differ: the comparison is not between constants
    assert results[0] == results[1]
    assert 1 <= results[0]["eval_length_mean"] <= 6
    assert (results[0]["eval_num_prompts"], results[0]["eval_n"]) == (3, 2)
