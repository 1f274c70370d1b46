"""The arithmetic-chain task: solved examples, slips, checker vs the RL graders, splits and parquet."""

import json

import numpy as np
import pytest

from dlogp_jax.data.rows import read_rows
from dlogp_jax.demo import task
from dlogp_jax.rl import rewards

# (problem, solution, answer): solved by hand.
SOLVED = [
    ("Start at 7: +5, *2, -3.", "7+5=12\n12*2=24\n24-3=21\nAnswer: 21", "21"),
    ("Start at 99: -20, -79.", "99-20=79\n79-79=0\nAnswer: 0", "0"),
    ("Start at 13: *3, +18, -7, *2.", "13*3=39\n39+18=57\n57-7=50\n50*2=100\nAnswer: 100", "100"),
    ("Start at 1: +1.", "1+1=2\nAnswer: 2", "2"),
]


@pytest.mark.parametrize("problem,solution,answer", SOLVED)
def test_solved_examples(problem, solution, answer):
    chain = task.parse_problem(problem)
    assert task.problem_text(chain) == problem
    assert task.solution_text(chain) == solution
    assert str(chain.answer) == answer
    assert task.check(solution, answer)
    assert task.check(solution + "<|im_end|>", answer)  # a decoded stop token is ignored


@pytest.mark.parametrize("problem,solution,answer", SOLVED)
def test_checker_agrees_with_rewards(problem, solution, answer):
    chain = task.parse_problem(problem)
    wrong = task.solution_text(chain, (0, 1))
    no_answer = solution.rsplit("\n", 1)[0]
    two_answers = wrong + "\n" + solution  # the last Answer line counts
    cases = [
        (solution, True),
        (wrong, False),
        (no_answer, False),
        (two_answers, True),
        (solution + "\n", True),
    ]
    for response, truth in cases:
        assert task.check(response, answer) is truth
        assert rewards.grade(response, answer) is truth
        assert (rewards.dapo_answer(response, answer) > 0) is truth


def test_slip_propagates_to_a_wrong_answer():
    chain = task.parse_problem("Start at 7: +5, *2, -3.")
    assert task.solution_text(chain, (0, -1)) == "7+5=11\n11*2=22\n22-3=19\nAnswer: 19"
    assert task.solution_text(chain, (2, 10)) == "7+5=12\n12*2=24\n24-3=31\nAnswer: 31"
    rng = np.random.default_rng(0)
    for _ in range(300):
        chain = task.random_chain(rng)
        slip = task.random_slip(chain, rng, max_value=99)
        assert slip is not None
        values = chain.values(slip)
        assert values[-1] != chain.answer
        assert all(0 <= v <= 99 for v in values)
        assert not task.check(task.solution_text(chain, slip), str(chain.answer))


@pytest.mark.parametrize(
    "difficulty",
    [task.Difficulty(), task.Difficulty(1, 6, 50, 9, 4, ("+", "*")), task.Difficulty(3, 3)],
)
def test_generated_chains_respect_difficulty(difficulty):
    rng = np.random.default_rng(1)
    for _ in range(500):
        chain = task.random_chain(rng, difficulty)
        assert difficulty.min_steps <= len(chain.ops) <= difficulty.max_steps
        assert all(0 <= v <= difficulty.max_value for v in chain.values())
        assert {op for op, _ in chain.ops} <= set(difficulty.operators)
        assert task.parse_problem(task.problem_text(chain)) == chain


def test_default_lengths_fit_a_short_context():
    train, test = task.generate_splits(0, 3000, 300)
    assert max(len(r["problem"]) for r in train + test) <= 64
    assert max(len(r["solution"]) for r in train + test) <= 96


def test_splits_disjoint_and_deterministic():
    train, test = task.generate_splits(3, 2000, 200)
    assert len(train) == 2000 and len(test) == 200
    problems = [r["problem"] for r in train + test]
    assert len(set(problems)) == len(problems)
    assert (train, test) == task.generate_splits(3, 2000, 200)
    assert task.generate_splits(4, 2000, 200)[1] != test
    # The test split does not depend on how many training rows are drawn.
    assert task.generate_splits(3, 500, 200)[1] == test


def test_bad_inputs():
    with pytest.raises(ValueError, match="not an arithmetic-chain"):
        task.parse_problem("What is 2+2?")
    with pytest.raises(ValueError, match="operators"):
        task.Difficulty(operators=("/",))
    with pytest.raises(ValueError, match="too few distinct"):
        task.generate_splits(0, 10_000, 10, task.Difficulty(1, 1, 10, 1, 2, ("+",)))


def test_write_splits_loads_with_datasets(tmp_path):
    from datasets import load_dataset

    difficulty = task.Difficulty(max_steps=3)
    paths = task.write_splits(tmp_path, seed=5, n_train=64, n_test=16, difficulty=difficulty)
    ds = load_dataset(
        "parquet",
        data_files={"train": str(paths["train"]), "test": str(paths["test"])},
        cache_dir=str(tmp_path / "cache"),
    )
    assert ds["train"].num_rows == 64 and ds["test"].num_rows == 16
    assert set(ds["test"].column_names) == {"problem", "answer", "solution"}
    train, test = task.generate_splits(5, 64, 16, difficulty)
    assert ds["test"].to_list() == test
    assert read_rows(paths["train"]) == train  # the library's own row reader
    meta = json.loads(paths["meta"].read_text())
    assert meta["seed"] == 5 and meta["max_steps"] == 3
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["cache", "task.json", "test.parquet", "train.parquet"]
