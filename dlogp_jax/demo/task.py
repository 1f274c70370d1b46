"""The demo world's task: arithmetic chains with step-by-step solutions and verifiable answers.

A problem names a start value and a few operations, applied left to right:

    problem:  "Start at 7: +5, *2, -3."
    solution: "7+5=12\\n12*2=24\\n24-3=21\\nAnswer: 21"

Every intermediate value stays in [0, max_value] (operands are drawn so that it does), so a tiny
character-level model can learn the arithmetic. A *slip* changes one step's result by a small amount
(±1, ±2, ±10: an off-by-one or a dropped carry) and the later steps compute correctly from the wrong
value; every operation is injective, so a slipped trace always ends in a wrong answer. Slipped traces
are the imperfect supervision from which `demo.sft` trains the base model.

`check(response, answer)` is DAPO's `Answer:` matcher (`rl.rewards.dapo_answer`) on the response with
special tokens removed; on this task's answers (non-negative integers) it agrees with `rewards.grade`.
Splits are disjoint by problem text and deterministic given the seed.

The paper measures its findings on math benchmarks with pretrained models; this world is small
enough for a CPU, and its rewards are exact (docs/method.md §6).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from dlogp_jax.outputs import plain_mode, write_json
from dlogp_jax.rl.rewards import dapo_answer

OPERATORS = ("+", "-", "*")
SLIP_DELTAS = (-10, -2, -1, 1, 2, 10)
_SPECIALS = ("<|im_end|>", "<|endoftext|>", "<|im_start|>")


@dataclasses.dataclass(frozen=True)
class Difficulty:
    """How hard the problems are.

    Attributes:
      min_steps, max_steps: operations per problem (drawn uniformly in between, inclusive).
      max_value: every value of a correct chain lies in [0, max_value].
      max_operand: largest operand of + and -.
      max_factor: largest factor of * (factors start at 2).
      operators: the operations used, a subset of OPERATORS.
    """

    min_steps: int = 2
    max_steps: int = 4
    max_value: int = 99
    max_operand: int = 9
    max_factor: int = 3
    operators: tuple[str, ...] = OPERATORS

    def __post_init__(self):
        object.__setattr__(self, "operators", tuple(self.operators))
        if not 1 <= self.min_steps <= self.max_steps:
            raise ValueError(f"steps: need 1 <= min_steps <= max_steps, got {self}.")
        if not set(self.operators) <= set(OPERATORS) or not self.operators:
            raise ValueError(f"operators {self.operators}: use a non-empty subset of {OPERATORS}.")
        if self.max_value < 10 or self.max_operand < 1 or self.max_factor < 2:
            raise ValueError(f"need max_value >= 10, max_operand >= 1, max_factor >= 2: {self}.")


@dataclasses.dataclass(frozen=True)
class Chain:
    """One problem: `start`, then `ops` ((operator, operand) pairs) applied left to right."""

    start: int
    ops: tuple[tuple[str, int], ...]

    def values(self, slip: tuple[int, int] | None = None) -> list[int]:
        """[start, v1, ..., vK]; slip = (step k, delta) adds delta to v_{k+1} and propagates."""
        out = [self.start]
        for k, (op, n) in enumerate(self.ops):
            out.append(apply_op(out[-1], op, n) + (slip[1] if slip and slip[0] == k else 0))
        return out

    @property
    def answer(self) -> int:
        return self.values()[-1]


def apply_op(value: int, op: str, operand: int) -> int:
    """value op operand, for op in OPERATORS."""
    return {"+": value + operand, "-": value - operand, "*": value * operand}[op]


def problem_text(chain: Chain) -> str:
    """'Start at 7: +5, *2, -3.'"""
    return f"Start at {chain.start}: " + ", ".join(f"{op}{n}" for op, n in chain.ops) + "."


def parse_problem(text: str) -> Chain:
    """Inverse of `problem_text`.

    Raises:
      ValueError: text not in the task's format.
    """
    try:
        head, tail = text.strip().removesuffix(".").split(": ", 1)
        start = int(head.removeprefix("Start at "))
        ops = [(part[0], int(part[1:])) for part in tail.split(", ")]
    except ValueError:
        raise ValueError(f"not an arithmetic-chain problem: {text!r}") from None
    if any(op not in OPERATORS for op, _ in ops):
        raise ValueError(f"unknown operator in {text!r}; operators are {OPERATORS}.")
    return Chain(start, tuple(ops))


def solution_text(chain: Chain, slip: tuple[int, int] | None = None) -> str:
    """Step-by-step solution, one 'a+b=c' line per step, ending 'Answer: <value>'.

    Args:
      chain: the problem.
      slip: (step index, delta): that step's result is off by delta, later steps use it.
    """
    vals = chain.values(slip)
    lines = [f"{v}{op}{n}={r}" for v, (op, n), r in zip(vals, chain.ops, vals[1:])]
    return "\n".join([*lines, f"Answer: {vals[-1]}"])


def check(response: str, answer: str | int) -> bool:
    """True iff the response's last `Answer:` line equals the answer (DAPO's matcher).

    Special tokens (a decoded stop token such as `<|im_end|>`) are removed first.
    """
    for s in _SPECIALS:
        response = response.replace(s, "")
    return dapo_answer(response, str(answer)) > 0


# ----------------------------------------------------------------------------- generation
def _feasible(value: int, d: Difficulty) -> list[str]:
    ok = {
        "+": value + 1 <= d.max_value,
        "-": value >= 1,
        "*": value >= 1 and 2 * value <= d.max_value,
    }
    return [op for op in d.operators if ok[op]]


def _operand(value: int, op: str, d: Difficulty, rng: np.random.Generator) -> int:
    hi = {
        "+": min(d.max_operand, d.max_value - value),
        "-": min(d.max_operand, value),
        "*": min(d.max_factor, d.max_value // max(value, 1)),
    }[op]
    return int(rng.integers(2 if op == "*" else 1, hi + 1))


def random_chain(rng: np.random.Generator, difficulty: Difficulty = Difficulty()) -> Chain:
    """A random problem whose correct chain stays in [0, max_value]."""
    d = difficulty
    while True:  # a draw can dead-end (e.g. only "*" and a large value): draw again
        value = int(rng.integers(1, d.max_value + 1))
        start, ops = value, []
        for _ in range(int(rng.integers(d.min_steps, d.max_steps + 1))):
            choices = _feasible(value, d)
            if not choices:
                break
            op = choices[int(rng.integers(len(choices)))]
            ops.append((op, _operand(value, op, d, rng)))
            value = apply_op(value, *ops[-1])
        else:
            return Chain(start, tuple(ops))


def random_slip(
    chain: Chain, rng: np.random.Generator, max_value: int = 99
) -> tuple[int, int] | None:
    """A slip (step, delta) that keeps every value of the slipped chain in [0, max_value].

    Returns None when no delta fits at the drawn step.
    """
    step = int(rng.integers(len(chain.ops)))
    deltas = [int(x) for x in rng.permutation(SLIP_DELTAS)]
    for delta in deltas:
        if all(0 <= v <= max_value for v in chain.values((step, delta))):
            return step, delta
    return None


def make_row(chain: Chain) -> dict[str, str]:
    """{'problem', 'answer', 'solution'} (all strings) for a correct chain."""
    return {
        "problem": problem_text(chain),
        "answer": str(chain.answer),
        "solution": solution_text(chain),
    }


def generate_splits(
    seed: int, n_train: int, n_test: int, difficulty: Difficulty = Difficulty()
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(train rows, test rows): distinct problems, no problem text in both, deterministic in seed.

    Raises:
      ValueError: the difficulty admits too few distinct problems.
    """
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    rows: list[dict[str, str]] = []
    misses = 0  # consecutive duplicates: many in a row means the problem space is exhausted
    while len(rows) < n_train + n_test:
        row = make_row(random_chain(rng, difficulty))
        if row["problem"] in seen:
            misses += 1
            if misses > 2000:
                raise ValueError(
                    f"{difficulty} has too few distinct problems for {n_train}+{n_test} rows "
                    f"(found {len(rows)})."
                )
            continue
        misses = 0
        seen.add(row["problem"])
        rows.append(row)
    return rows[n_test:], rows[:n_test]


def to_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    """Writes rows as one parquet file through `datasets`, atomically (whole or not at all)."""
    import datasets

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    plain_mode(tmp)  # not mkstemp's 0600
    quiet = datasets.is_progress_bar_enabled()  # no progress bar for a one-batch write
    try:
        if quiet:
            datasets.disable_progress_bars()
        datasets.Dataset.from_list(rows).to_parquet(tmp)
        os.replace(tmp, path)
    finally:
        if quiet:
            datasets.enable_progress_bars()
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_splits(
    out_dir: str | Path,
    seed: int,
    n_train: int,
    n_test: int,
    difficulty: Difficulty = Difficulty(),
) -> dict[str, Path]:
    """Writes `train.parquet`, `test.parquet` (columns problem, answer, solution) and `task.json`.

    Each file appears whole or not at all. Load with `datasets.load_dataset("parquet",
    data_files={"train": ..., "test": ...})` or `data.rows.read_rows`.

    Returns:
      {'train': path, 'test': path, 'meta': path}.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train, test = generate_splits(seed, n_train, n_test, difficulty)
    paths = {"train": out / "train.parquet", "test": out / "test.parquet"}
    to_parquet(train, paths["train"])
    to_parquet(test, paths["test"])
    meta = {"seed": seed, "n_train": n_train, "n_test": n_test, **dataclasses.asdict(difficulty)}
    paths["meta"] = write_json(out / "task.json", meta)
    return paths
