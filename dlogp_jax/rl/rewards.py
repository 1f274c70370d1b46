"""Answer extraction, answer checking and rewards, with a registry for user-defined rewards.

* `dapo_answer`: DAPO's `math_dapo` reward (verl): keep the last 300 characters of the response,
  take the last `Answer: ...` line, Minerva-normalise both sides, exact match -> +1, else -1.
* `boxed_math_verify`: the last `\\boxed{...}` (brace-matched) compared with math-verify -> +1 / -1
  (the official extrapolation code's grader).
* `grade()`: the checker shared by the sampler and the trainer's accuracy: the last `\\boxed{}` or, when
  there is none, the last `Answer:` line, compared with math-verify (falling back to normalised
  string equality when math-verify cannot parse either side).

math-verify bounds its run time with `signal.alarm`, which only works in a process's main thread:
`Grader` runs checks in worker processes (spawned, so JAX's threads are never forked) with an outer
timeout per batch; a timed-out answer counts as wrong.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import re
from collections.abc import Callable

ANSWER_PATTERN = re.compile(r"(?i)Answer\s*:\s*([^\n]+)")

# Minerva-style normalisation (Lewkowycz et al. 2022), as used by DAPO's reward.
_SUBSTITUTIONS = [
    ("an ", ""),
    ("a ", ""),
    (".$", "$"),
    ("\\$", ""),
    (r"\ ", ""),
    (" ", ""),
    ("mbox", "text"),
    (",\\text{and}", ","),
    ("\\text{and}", ","),
    ("\\text{m}", "\\text{}"),
]
_REMOVED = [
    "square",
    "ways",
    "integers",
    "dollars",
    "mph",
    "inches",
    "hours",
    "km",
    "units",
    "\\ldots",
    "sue",
    "points",
    "feet",
    "minutes",
    "digits",
    "cents",
    "degrees",
    "cm",
    "gm",
    "pounds",
    "meters",
    "meals",
    "edges",
    "students",
    "childrentickets",
    "multiples",
    "\\text{s}",
    "\\text{.}",
    "\\text{\ns}",
    "\\text{}^2",
    "\\text{}^3",
    "\\text{\n}",
    "\\text{}",
    r"\mathrm{th}",
    r"^\circ",
    r"^{\circ}",
    r"\;",
    r",\!",
    "{,}",
    '"',
    "\\dots",
]


def normalize_final_answer(answer: str) -> str:
    """Minerva normalisation: drop units/words/TeX spacing, keep the text after the last '='."""
    answer = answer.split("=")[-1]
    for before, after in _SUBSTITUTIONS:
        answer = answer.replace(before, after)
    for expr in _REMOVED:
        answer = answer.replace(expr, "")
    answer = re.sub(r"(.*?)(\$)(.*?)(\$)(.*)", "$\\3$", answer)
    answer = re.sub(r"(\\text\{)(.*?)(\})", "\\2", answer)
    answer = re.sub(r"(\\textbf\{)(.*?)(\})", "\\2", answer)
    answer = re.sub(r"(\\overline\{)(.*?)(\})", "\\2", answer)
    answer = re.sub(r"(\\boxed\{)(.*)(\})", "\\2", answer)
    answer = re.sub(r"(frac)([^{])(.)", "frac{\\2}{\\3}", answer)
    answer = re.sub(r"(sqrt)([^{])", "sqrt{\\2}", answer)
    answer = answer.replace("$", "")
    if answer.replace(",", "").isdigit():
        answer = answer.replace(",", "")
    return answer.strip()


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` (nested braces matched); None if absent or unclosed."""
    start = text.rfind("\\boxed")
    if start < 0:
        return None
    i = start + len("\\boxed")
    if i >= len(text) or text[i] != "{":
        return None
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    return None


def last_answer_line(text: str) -> str | None:
    """The text after the last `Answer:` (case-insensitive) up to the end of its line."""
    found = ANSWER_PATTERN.findall(text)
    return found[-1].strip() if found else None


def extract_answer(text: str) -> str | None:
    """The last `\\boxed{}` content, else the last `Answer:` line, else None."""
    boxed = last_boxed(text)
    return boxed if boxed is not None else last_answer_line(text)


_INT = re.compile(r"-?\d{1,300}")


def math_equal(pred: str, gold: str) -> bool:
    """math-verify equivalence of two answers (call from a main thread: it uses signal.alarm)."""
    from math_verify import parse, verify

    pred_n, gold_n = normalize_final_answer(pred), normalize_final_answer(gold)
    if pred_n == gold_n:
        return True
    if _INT.fullmatch(pred_n) and _INT.fullmatch(gold_n):  # two integers: no parser needed (fast)
        return int(pred_n) == int(gold_n)
    try:
        gold_p, pred_p = parse(f"${gold}$"), parse(f"${pred}$")
        return bool(gold_p and pred_p and verify(gold_p, pred_p))
    except Exception:  # math-verify raises on exotic input; such an answer is simply wrong
        return False


# ----------------------------------------------------------------------------- rewards
RewardFn = Callable[[str, str], float]
REWARDS: dict[str, RewardFn] = {}


def register_reward(name: str):
    """Decorator adding `fn(response_text, ground_truth) -> reward` to REWARDS under `name`.

    Rewards run inside `Grader` worker processes, so they must be importable top-level functions.
    """

    def add(fn: RewardFn) -> RewardFn:
        REWARDS[name] = fn
        return fn

    return add


@register_reward("dapo_answer")
def dapo_answer(response: str, ground_truth: str) -> float:
    """DAPO `math_dapo`: last 300 chars, last `Answer:` line, normalised exact match; +1 / -1."""
    line = last_answer_line(response[-300:])
    if line is None:
        return -1.0
    return 1.0 if normalize_final_answer(line) == normalize_final_answer(ground_truth) else -1.0


@register_reward("boxed_math_verify")
def boxed_math_verify(response: str, ground_truth: str) -> float:
    """Last `\\boxed{}` compared with math-verify; +1 / -1 (a missing box is wrong)."""
    boxed = last_boxed(response)
    return 1.0 if boxed is not None and math_equal(boxed, ground_truth) else -1.0


def grade(response: str, ground_truth: str) -> bool:
    """The shared accuracy check: last `\\boxed{}` or `Answer:` line, compared with math-verify."""
    pred = extract_answer(response)
    return pred is not None and math_equal(pred, ground_truth)


def _grade_one(args: tuple[RewardFn | None, str, str]) -> float:
    fn, response, truth = args  # fn travels by reference, so user rewards work in workers too
    return float(grade(response, truth)) if fn is None else fn(response, truth)


class Grader:
    """Runs rewards / `grade` in worker processes with a timeout; use as a context manager.

    Args:
      workers: processes (0 = run in this process's main thread, for tests and tiny runs).
      timeout_s: wall-clock limit per batch item; a timeout scores `timeout_value`.
    """

    def __init__(self, workers: int = 2, timeout_s: float = 10.0, timeout_value: float = -1.0):
        self.workers, self.timeout_s, self.timeout_value = workers, timeout_s, timeout_value
        self._pool: cf.ProcessPoolExecutor | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _ensure_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            ctx = multiprocessing.get_context("spawn")
            self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=ctx)
        return self._pool

    def score(self, name: str, responses: list[str], truths: list[str]) -> list[float]:
        """Reward `name` (a REWARDS key, or "accuracy" for 0/1 `grade`) of each response."""
        if name != "accuracy" and name not in REWARDS:
            raise KeyError(f"unknown reward {name!r}; registered: {sorted(REWARDS)}")
        fn = None if name == "accuracy" else REWARDS[name]
        jobs = [(fn, r, t) for r, t in zip(responses, truths, strict=True)]
        if self.workers == 0:
            return [_grade_one(j) for j in jobs]
        pool = self._ensure_pool()
        futures = [pool.submit(_grade_one, j) for j in jobs]
        out = []
        for f in futures:
            try:
                out.append(f.result(timeout=self.timeout_s))
            except cf.TimeoutError:
                out.append(self.timeout_value if name != "accuracy" else 0.0)
        return out
