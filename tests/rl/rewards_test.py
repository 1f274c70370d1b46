"""Answer extraction and rewards on a table of answers."""

import pytest

from dlogp_jax.rl import rewards


@pytest.mark.parametrize(
    "text, boxed",
    [
        ("so \\boxed{42}.", "42"),
        ("\\boxed{1} then \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{a{b}c}", "a{b}c"),
        ("\\boxed 5", None),
        ("\\boxed{unclosed", None),
        ("no box", None),
    ],
)
def test_last_boxed(text, boxed):
    assert rewards.last_boxed(text) == boxed


@pytest.mark.parametrize(
    "response, truth, reward",
    [
        ("work...\nAnswer: 42", "42", 1.0),
        ("answer : 1,000 dollars", "1000", 1.0),
        ("Answer: x = 7", "7", 1.0),
        ("Answer: $\\frac{1}{2}$", "\\frac{1}{2}", 1.0),
        ("Answer: 41", "42", -1.0),
        ("no final answer", "42", -1.0),
        ("Answer: 42\n" + "x" * 400, "42", -1.0),  # outside the last 300 characters
        ("Answer: 1\nAnswer: 2", "2", 1.0),  # the last one counts
    ],
)
def test_dapo_answer(response, truth, reward):
    assert rewards.dapo_answer(response, truth) == reward


@pytest.mark.parametrize(
    "response, truth, ok",
    [
        ("\\boxed{0.5}", "\\frac{1}{2}", True),
        ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}", True),
        ("Answer: 12", "12", True),
        ("\\boxed{3} ... Answer: 4", "3", True),  # the box wins over the Answer line
        ("\\boxed{13}", "12", False),
        ("nothing", "12", False),
    ],
)
def test_grade_with_math_verify(response, truth, ok):
    assert rewards.grade(response, truth) is ok


def test_grader_processes_match_inline_and_registry():
    responses = ["\\boxed{0.5}", "Answer: 3", "\\boxed{7}"]
    truths = ["1/2", "3", "8"]
    with rewards.Grader(workers=1, timeout_s=60) as g:
        assert g.score("accuracy", responses, truths) == [1.0, 1.0, 0.0]
        assert g.score("boxed_math_verify", responses, truths) == [1.0, -1.0, -1.0]
    assert rewards.Grader(workers=0).score("dapo_answer", responses, truths) == [-1.0, 1.0, -1.0]
    with pytest.raises(KeyError, match="unknown reward 'nope'"):
        rewards.Grader(workers=0).score("nope", [], [])
