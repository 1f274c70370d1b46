"""The graders against the official ones, case by case (docs/method.md §5, §6).

The expected verdicts are written by hand and checked against references written here from the
official code's logic, not from our output: the extrapolation code's grader (the last `\\boxed`
by brace matching, "" when `{` does not follow it, then `math_verify.verify(parse("$gold$"),
parse("$pred$"))`) and verl's `math_dapo.compute_score` (last 300 characters, the last
`Answer:` line or "[INVALID]", Minerva normalisation of both sides, exact match).
"""

import re

import pytest
from math_verify import parse, verify

from dlogp_jax.rl import rewards

# ---------------------------------------------------------------- the official references


def official_boxed_content(text: str) -> str:
    """The extrapolation code's box extraction: "" when there is no well-formed last box."""
    at = text.rfind("\\boxed")
    if at < 0:
        return ""
    rest = text[at + len("\\boxed") :]
    if not rest.startswith("{"):
        return ""
    depth = 0
    for i, ch in enumerate(rest):
        depth += 1 if ch == "{" else -1 if ch == "}" else 0
        if depth == 0:
            return rest[1:i]
    return ""


def official_boxed_correct(response: str, gold: str) -> bool:
    pred = official_boxed_content(response)
    return bool(pred) and verify(parse("$" + gold + "$"), parse("$" + pred + "$"))


# Minerva normalisation as verl's math_dapo writes it (substitutions, then removals, then TeX).
MINERVA_SUBSTITUTE = [
    ("an ", ""),
    ("a ", ""),
    (".$", "$"),
    ("\\$", ""),
    ("\\ ", ""),
    (" ", ""),
    ("mbox", "text"),
    (",\\text{and}", ","),
    ("\\text{and}", ","),
    ("\\text{m}", "\\text{}"),
]
MINERVA_REMOVE = (
    "square ways integers dollars mph inches hours km units \\ldots sue points feet minutes "
    "digits cents degrees cm gm pounds meters meals edges students childrentickets multiples"
).split() + [
    "\\text{s}",
    "\\text{.}",
    "\\text{\ns}",
    "\\text{}^2",
    "\\text{}^3",
    "\\text{\n}",
    "\\text{}",
    "\\mathrm{th}",
    "^\\circ",
    "^{\\circ}",
    "\\;",
    ",\\!",
    "{,}",
    '"',
    "\\dots",
]


def minerva(answer: str) -> str:
    answer = answer.split("=")[-1]
    for old, new in MINERVA_SUBSTITUTE:
        answer = answer.replace(old, new)
    for word in MINERVA_REMOVE:
        answer = answer.replace(word, "")
    answer = re.sub(r"(.*?)(\$)(.*?)(\$)(.*)", "$\\3$", answer)
    for command in ("text", "textbf", "overline"):
        answer = re.sub(r"(\\" + command + r"\{)(.*?)(\})", "\\2", answer)
    answer = re.sub(r"(\\boxed\{)(.*)(\})", "\\2", answer)
    answer = re.sub(r"(frac)([^{])(.)", "frac{\\2}{\\3}", answer)
    answer = re.sub(r"(sqrt)([^{])", "sqrt{\\2}", answer)
    answer = answer.replace("$", "")
    if answer.replace(",", "").isdigit():
        answer = answer.replace(",", "")
    return answer.strip()


def official_dapo_score(response: str, gold: str) -> float:
    found = re.findall(r"(?i)Answer\s*:\s*([^\n]+)", response[-300:])
    pred = minerva(found[-1] if found else "[INVALID]")
    return 1.0 if pred == minerva(gold) else -1.0


# ---------------------------------------------------------------- the table
# (response, gold, boxed_math_verify correct, dapo_answer correct)
CASES = [
    # boxed, plain
    ("so \\boxed{3}.", "3", True, False),
    ("\\boxed{-5}", "-5", True, False),
    ("\\boxed{5}", "-5", False, False),
    ("\\boxed{12}", "012", True, False),
    ("\\boxed{1,000}", "1000", True, False),
    # nested braces and the last box
    ("\\boxed{{3}}", "3", True, False),
    ("\\boxed{\\frac{1}{\\frac{2}{3}}}", "\\frac32", True, False),
    ("\\boxed{2} and then \\boxed{3}", "3", True, False),
    ("\\boxed{3} and then \\boxed{2}", "3", False, False),
    ("\\boxed 3", "3", False, False),
    ("\\boxed{unclosed 3", "3", False, False),
    # fractions, \dfrac, roots
    ("\\boxed{\\frac{1}{2}}", "0.5", True, False),
    ("\\boxed{\\dfrac{1}{2}}", "\\frac{1}{2}", True, False),
    ("\\boxed{\\dfrac{3}{4}}", "3/4", True, False),
    ("\\boxed{\\frac{2}{4}}", "\\frac{1}{2}", True, False),
    ("\\boxed{0.5}", "\\frac12", True, False),
    ("\\boxed{1/3}", "0.333333", True, False),
    ("\\boxed{\\sqrt{12}}", "2\\sqrt{3}", True, False),
    ("\\boxed{3\\sqrt{2}}", "\\sqrt{18}", True, False),
    ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}", True, False),
    ("\\boxed{\\pi}", "3.14159", False, False),
    ("\\boxed{x^2+2x+1}", "(x+1)^2", True, False),
    # intervals and sets
    ("\\boxed{(1,2]}", "(1,2]", True, False),
    ("\\boxed{[1,2)}", "(1,2]", False, False),
    ("\\boxed{(-\\infty, 3)}", "(-\\infty,3)", True, False),
    ("\\boxed{x \\in [2,5]}", "[2,5]", True, False),
    ("\\boxed{\\{1,2,3\\}}", "\\{3,2,1\\}", True, False),
    ("\\boxed{1,2,3}", "3,2,1", True, False),
    # units and symbols
    ("\\boxed{10\\text{ cm}}", "10", True, False),
    ("\\boxed{45^{\\circ}}", "45", True, False),
    ("\\boxed{\\$5}", "5", True, False),
    ("\\boxed{50\\%}", "50", True, False),
    # text answers
    ("\\boxed{\\text{Tuesday}}", "\\text{Tuesday}", True, False),
    ("\\boxed{\\text{(B)}}", "B", True, False),
    ("\\boxed{\\text{3 apples}}", "3", False, False),
    # hedged or multi-equation answers: wrong for math-verify, Minerva keeps the last `=`
    ("\\boxed{x=2 \\text{ or } x=3}", "3", False, False),
    ("\\boxed{a=1, b=3}", "3", False, False),
    ("\\boxed{a 3}", "3", False, False),
    ("\\boxed{3 \\text{ or } 4}", "3", False, False),
    ("\\boxed{x=3}", "3", True, False),
    ("Answer: x=2 or x=3", "3", False, True),
    # Answer: lines (DAPO's format)
    ("work...\nAnswer: 42", "42", False, True),
    ("answer : 1,000 dollars", "1000", False, True),
    ("Answer: $\\frac{1}{2}$", "\\frac{1}{2}", False, True),
    ("Answer: 0.5", "\\frac{1}{2}", False, False),
    ("Answer: 1\nAnswer: 2", "2", False, True),
    ("Answer: 42\n" + "x" * 400, "42", False, False),
    ("\\boxed{7}\nAnswer: 7", "7", True, True),
    # no answer
    ("no answer here", "3", False, False),
    ("", "3", False, False),
]


def test_the_table_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("response, gold, boxed_ok, dapo_ok", CASES)
def test_boxed_math_verify_is_the_official_grader(response, gold, boxed_ok, dapo_ok):
    assert official_boxed_correct(response, gold) is boxed_ok  # the table says what it returns
    assert rewards.boxed_math_verify(response, gold) == (1.0 if boxed_ok else -1.0)


@pytest.mark.parametrize("response, gold, boxed_ok, dapo_ok", CASES)
def test_dapo_answer_is_math_dapo_compute_score(response, gold, boxed_ok, dapo_ok):
    assert official_dapo_score(response, gold) == (1.0 if dapo_ok else -1.0)
    assert rewards.dapo_answer(response, gold) == official_dapo_score(response, gold)


@pytest.mark.parametrize("response, gold, boxed_ok, dapo_ok", CASES)
def test_grade_reads_a_box_as_the_official_grader(response, gold, boxed_ok, dapo_ok):
    if rewards.last_boxed(response) is not None:
        assert rewards.grade(response, gold) is boxed_ok
