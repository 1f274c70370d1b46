"""Answer extraction, answer checking and rewards, with a registry for user-defined rewards.

* `dapo_answer`: DAPO's `math_dapo.compute_score` (verl): keep the last 300 characters of the
  response, take the last `Answer: ...` line, Minerva-normalise both sides, exact match -> +1,
  else -1.
* `boxed_math_verify`: the official extrapolation code's grader: the last `\\boxed{...}`
  (brace-matched), then `math_verify.verify(parse("$gold$"), parse("$pred$"))` -> +1 / -1, with no
  normalisation before it (a missing box is wrong).
* `grade()`: the 0/1 check shared by the sampler and the trainer's accuracy: the last `\\boxed{}`
  or, when there is none, the last `Answer:` line, compared as `boxed_math_verify` compares.

math-verify bounds its run time with `signal.alarm`, which only works in a process's main thread:
`Grader` runs checks in worker processes (spawned, so JAX's threads are never forked), each job
under its own deadline; a timed-out answer counts as wrong and is counted (docs/method.md §6).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing import connection as mp_connection

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

# math-verify's own limits (whole seconds: it uses signal.alarm). A `Grader` worker sets this
# from the outer per-job limit so that math-verify gives up (wrong, not stuck) before the job is
# killed: two parses and the comparisons fit in the outer limit (docs/method.md §6).
_LIMITS = {"math_verify_s": 5}


def math_verify_limit(timeout_s: float) -> int:
    """math-verify's per-step limit inside an outer per-job limit of `timeout_s` seconds."""
    return max(1, int(timeout_s // 4))


def math_equal(pred: str, gold: str) -> bool:
    """`math_verify.verify(parse("$gold$"), parse("$pred$"))`, as the official grader calls it.

    No Minerva normalisation first (it keeps the text after the last `=` and strips words, so
    `x=2 \\text{ or } x=3` would equal `3`). Two integers are compared without the parser (the
    same verdict, much faster). Call from a main thread: math-verify uses signal.alarm.
    """
    from math_verify import parse, verify

    p, g = pred.strip(), gold.strip()
    if _INT.fullmatch(p) and _INT.fullmatch(g):
        return int(p) == int(g)
    limit = _LIMITS["math_verify_s"]
    try:
        gold_p = parse(f"${gold}$", parsing_timeout=limit)
        pred_p = parse(f"${pred}$", parsing_timeout=limit)
        return bool(verify(gold_p, pred_p, timeout_seconds=limit))
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
    """The shared accuracy check: the last `\\boxed{}` or, when there is none, the last `Answer:`
    line, compared with math-verify exactly as `boxed_math_verify` compares a box."""
    pred = extract_answer(response)
    return pred is not None and math_equal(pred, ground_truth)


def answer_key(name: str, response: str) -> str | None:
    """The answer a grader reads from `response`, normalised for voting (maj@k); None if none.

    Args:
      name: "dapo_answer" (the last `Answer:` line of the last 300 characters), "boxed_math_verify"
        (the last box), anything else (the `grade` extraction: box, else `Answer:` line).
    """
    if name == "dapo_answer":
        found = last_answer_line(response[-300:])
    elif name == "boxed_math_verify":
        found = last_boxed(response)
    else:
        found = extract_answer(response)
    return None if found is None else normalize_final_answer(found)


def _grade_one(job: tuple[RewardFn | None, str, str]) -> float:
    fn, response, truth = job  # fn travels by reference, so user rewards work in workers too
    return float(grade(response, truth)) if fn is None else fn(response, truth)


def _die_with_parent(parent: int) -> None:
    """Ends this worker when its parent ends, however it ends (SIGKILL included): on Linux the
    kernel sends SIGKILL (prctl PR_SET_PDEATHSIG); everywhere a daemon thread polls the parent
    pid, since the death signal follows the *thread* that spawned us and orphans get a new
    parent."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _worker_main(conn, math_verify_s: int, parent: int | None = None) -> None:
    """A grading process: announces itself ready, then answers one job at a time until None (or
    until the parent's end of the pipe closes)."""
    if parent is not None:
        _die_with_parent(parent)
    _LIMITS["math_verify_s"] = math_verify_s
    # math-verify's first call imports sympy and builds its parsers (seconds): done before
    # "ready", so that a job's clock counts only its own work.
    math_equal("\\frac{1}{2}", "0.5")
    conn.send(("ready", None))
    while (job := _next_job(conn)) is not None:
        try:
            conn.send(("ok", _grade_one(job)))
        except Exception as e:  # a broken user reward: reported, the worker keeps serving
            conn.send(("error", f"{type(e).__name__}: {e}"))


def _next_job(conn):
    try:
        return conn.recv()
    except (EOFError, OSError):  # the parent is gone
        return None


class _Worker:
    """One spawned grading process and its pipe; `job` is (index, deadline) while it grades."""

    def __init__(self, ctx, math_verify_s: int):
        self.conn, child = ctx.Pipe()
        args = (child, math_verify_s, os.getpid())
        self.proc = ctx.Process(target=_worker_main, args=args, daemon=True)
        self.proc.start()
        child.close()
        self.ready = False
        self.job: tuple[int, float] | None = None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join()
        self.conn.close()


class Grader:
    """Runs rewards / `grade` in worker processes, each job under its own deadline.

    A job's clock starts when a ready worker receives it (never while it waits in the queue), so a
    slow answer cannot make the answers behind it time out. A worker past its deadline is killed
    and replaced; its answer scores `timeout_value` (0 for "accuracy") and is counted. math-verify's
    own limits are set inside the outer one (`math_verify_limit`). Use as a context manager.

    Args:
      workers: processes (0 = run in this process's main thread, for tests and tiny runs: then only
        math-verify's own limits apply).
      timeout_s: wall-clock limit of one job (one response).
      timeout_value: the reward of a timed-out response.
    Attributes:
      timeouts: responses timed out since the grader was made.
      timed_out: [len(responses)] flags of the last `score` call.
    """

    STARTUP_S = 300.0  # a worker that is not ready by then (e.g. a broken install) is an error

    def __init__(self, workers: int = 2, timeout_s: float = 10.0, timeout_value: float = -1.0):
        self.workers, self.timeout_s, self.timeout_value = workers, timeout_s, timeout_value
        self.timeouts = 0
        self.timed_out: list[bool] = []
        self._pool: list[_Worker] = []
        self._ctx = multiprocessing.get_context("spawn")  # JAX's threads are never forked

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        for w in self._pool:
            try:
                w.conn.send(None)
            except OSError:
                pass
            w.proc.join(timeout=1.0)
            if w.proc.is_alive():
                w.kill()
        self._pool = []

    def _spawn(self) -> _Worker:
        return _Worker(self._ctx, math_verify_limit(self.timeout_s))

    def score(self, name: str, responses: list[str], truths: list[str]) -> list[float]:
        """Reward `name` (a REWARDS key, or "accuracy" for 0/1 `grade`) of each response.

        Returns:
          [len(responses)] rewards; `self.timed_out` flags the ones that ran out of time.
        Raises:
          KeyError: unknown reward. RuntimeError: a reward raised, or a worker never started.
        """
        if name != "accuracy" and name not in REWARDS:
            raise KeyError(f"unknown reward {name!r}; registered: {sorted(REWARDS)}")
        fn = None if name == "accuracy" else REWARDS[name]
        jobs = [(fn, r, t) for r, t in zip(responses, truths, strict=True)]
        self.timed_out = [False] * len(jobs)
        if self.workers == 0 or not jobs:
            return [_grade_one(j) for j in jobs]
        lost = 0.0 if name == "accuracy" else self.timeout_value
        out = self._run(jobs, lost)
        self.timeouts += sum(self.timed_out)
        return out

    def score_each(
        self, names: list[str], responses: list[str], truths: list[str]
    ) -> tuple[list[float], list[bool]]:
        """Each response's own reward `names[i]` (e.g. chosen by its data source), one `score`
        call per distinct name so that the workers stay busy.

        Returns:
          ([N] rewards, [N] timed-out flags), in the order of `responses`.
        """
        scores, late = [0.0] * len(responses), [False] * len(responses)
        for name in sorted(set(names)):
            idx = [k for k, n in enumerate(names) if n == name]
            got = self.score(name, [responses[k] for k in idx], [truths[k] for k in idx])
            for k, s, t in zip(idx, got, self.timed_out):
                scores[k], late[k] = s, t
        return scores, late

    def _run(self, jobs: list[tuple], lost: float) -> list[float]:
        while len(self._pool) < self.workers:
            self._pool.append(self._spawn())
        out: list[float | None] = [None] * len(jobs)
        queue = list(range(len(jobs)))[::-1]  # pop() takes the next job
        started = time.monotonic()
        while queue or any(w.job for w in self._pool):
            for w in self._pool:
                if w.ready and w.job is None and queue:
                    i = queue.pop()
                    w.conn.send(jobs[i])
                    w.job = (i, time.monotonic() + self.timeout_s)
            deadlines = [w.job[1] for w in self._pool if w.job]
            wait_s = max(0.0, min(deadlines) - time.monotonic()) if deadlines else 1.0
            for conn in mp_connection.wait([w.conn for w in self._pool], timeout=wait_s):
                w = next(w for w in self._pool if w.conn is conn)
                try:
                    kind, value = conn.recv()
                except EOFError:  # the process died: its job (if any) is lost, replace it
                    kind, value = "died", None
                if kind == "ready":
                    w.ready = True
                elif kind == "ok":
                    out[w.job[0]], w.job = value, None
                elif kind == "error":
                    index = w.job[0]
                    self.close()  # the other workers' jobs are abandoned with this call
                    raise RuntimeError(f"reward raised on response {index}: {value}")
                else:
                    self._replace(w, out, lost)
            now = time.monotonic()
            for w in list(self._pool):
                if w.job and now >= w.job[1]:
                    self._replace(w, out, lost)
            if not any(w.ready for w in self._pool) and now - started > self.STARTUP_S:
                raise RuntimeError(f"no grading worker started within {self.STARTUP_S:.0f} s")
        return [float(v) for v in out]

    def _replace(self, w: _Worker, out: list, lost: float) -> None:
        """Kills `w` (its job, if any, scores `lost` and counts as timed out) and starts another."""
        if w.job is not None:
            out[w.job[0]] = lost
            self.timed_out[w.job[0]] = True
        w.kill()
        self._pool[self._pool.index(w)] = self._spawn()
