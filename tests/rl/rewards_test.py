"""Answer extraction and rewards on a table of answers."""

import time

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


def slow_first(response: str, truth: str) -> float:
    """+1 / -1 like `grade`, but the response "slow" takes 6 s (a stuck math-verify call)."""
    if response == "slow":
        time.sleep(6.0)
    return 1.0 if rewards.grade(response, truth) else -1.0


def failing(response: str, truth: str) -> float:
    raise ValueError("broken reward")


rewards.register_reward("test_slow_first")(slow_first)
rewards.register_reward("test_failing")(failing)


@pytest.mark.parametrize("workers", [2, 1])
def test_a_slow_job_never_changes_another_jobs_score(workers):
    # The measured case of issue 11 (2 workers, 1 s limit, one 4 s job), with a 3 s limit and a
    # 6 s job: a 1 s limit failed a fast job on a loaded 2-core machine (two pytest workers
    # compiling). With 1 worker the fast jobs wait behind the slow one (and a replacement
    # worker's start-up): the limit counts from a job's start.
    responses = ["slow", "\\boxed{1}", "\\boxed{2}", "\\boxed{5}"]
    truths = ["1", "1", "2", "3"]
    with rewards.Grader(workers=workers, timeout_s=3.0) as g:
        g.score("test_slow_first", ["\\boxed{0}"], ["0"])  # workers up: timing the jobs only
        assert g.score("test_slow_first", responses, truths) == [-1.0, 1.0, 1.0, -1.0]
        assert g.timed_out == [True, False, False, False]
        assert g.score("test_slow_first", responses[1:], truths[1:]) == [1.0, 1.0, -1.0]
        assert g.timeouts == 1 and g.timed_out == [False, False, False]
        assert g.score("accuracy", ["slow"], ["1"]) == [0.0]  # grade itself is fast: no timeout


def test_a_raising_reward_is_an_error_and_the_grader_recovers():
    with rewards.Grader(workers=1, timeout_s=30.0) as g:
        with pytest.raises(RuntimeError, match="ValueError: broken reward"):
            g.score("test_failing", ["x"], ["1"])
        assert g.score("dapo_answer", ["Answer: 1"], ["1"]) == [1.0]


def test_math_verify_limits_sit_inside_the_outer_one():
    assert rewards.math_verify_limit(10.0) == 2  # 2 parses + a comparison: 6 s < 10 s
    assert rewards.math_verify_limit(1.0) == 1  # whole seconds (signal.alarm) at least 1


def test_score_each_uses_each_responses_own_reward():
    responses = ["Answer: 3", "\\boxed{3}", "Answer: 3", "\\boxed{3}"]
    names = ["dapo_answer", "dapo_answer", "boxed_math_verify", "boxed_math_verify"]
    scores, late = rewards.Grader(workers=0).score_each(names, responses, ["3"] * 4)
    assert scores == [1.0, -1.0, -1.0, 1.0] and late == [False] * 4
