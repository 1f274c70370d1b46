"""Accuracy over prompts with several samples each: Avg@n with a t-interval, pass@k and maj@k.

Legend: P prompts, n samples of a prompt (it may differ between prompts). The prompt is the
independent unit (docs/method.md §5): Avg@n is the mean over prompts of each prompt's fraction
correct, and its 95% interval is Student's t with P - 1 degrees of freedom on those P means.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from math import comb
from typing import Any

import numpy as np
from scipy import stats


def t_quantile(df: float, q: float = 0.975) -> float:
    """Student's t quantile `q` with `df` degrees of freedom (NaN when df < 1)."""
    return float(stats.t.ppf(q, df)) if df >= 1 else float("nan")


def mean_ci(per_prompt: np.ndarray) -> dict[str, float]:
    """Mean over prompts with a 95% t-interval (standard error over prompts, df = P - 1).

    Args:
      per_prompt: [P] each prompt's fraction correct (or any per-prompt value).
    Returns:
      {mean, ci95: the half-width (NaN for one prompt), num_prompts}.
    """
    x = np.asarray(per_prompt, np.float64)
    if x.size == 0:
        return {"mean": float("nan"), "ci95": float("nan"), "num_prompts": 0}
    if x.size == 1:
        return {"mean": float(x[0]), "ci95": float("nan"), "num_prompts": 1}
    se = x.std(ddof=1) / np.sqrt(x.size)
    half = t_quantile(x.size - 1) * se
    return {"mean": float(x.mean()), "ci95": float(half), "num_prompts": int(x.size)}


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k of one prompt (Chen et al. 2021): 1 - C(n - c, k) / C(n, k).

    Args:
      n: samples drawn. c: correct samples among them. k: 1 <= k <= n.
    """
    if not 1 <= k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n; got k={k}, n={n}.")
    return 1.0 - comb(n - c, k) / comb(n, k)


def ks_up_to(n: int) -> list[int]:
    """k = 1, 2, 4, ... (powers of two below n), then n itself."""
    out, k = [], 1
    while k < n:
        out.append(k)
        k *= 2
    return out + [n] if n >= 1 else []


def majority_correct(keys: Sequence[str | None], correct: Sequence[bool]) -> bool:
    """Whether the most frequent answer among `keys` is correct (None = no answer: no vote).

    A tie goes to the answer given first; the winner's correctness is that of its first sample.
    """
    votes = Counter(k for k in keys if k is not None)
    if not votes:
        return False
    top = max(votes.values())
    winner = next(k for k in keys if k is not None and votes[k] == top)
    return bool(correct[list(keys).index(winner)])


def maj_at_k(keys: Sequence[str | None], correct: Sequence[bool], k: int) -> float:
    """maj@k of one prompt: the majority vote of k samples, averaged over the n // k disjoint
    consecutive blocks of its n samples (every sample is used once when k divides n)."""
    n = len(keys)
    blocks = range(0, n - n % k, k)
    return float(np.mean([majority_correct(keys[s : s + k], correct[s : s + k]) for s in blocks]))


def accuracy_metrics(groups: Mapping[Any, Sequence[tuple[bool, str | None]]]) -> dict[str, Any]:
    """Avg@n, pass@k and maj@k over prompts.

    Args:
      groups: prompt -> its samples in order, each (correct, answer key for voting or None).
    Returns:
      {accuracy: Avg@n, accuracy_ci95: its t half-width, num_prompts: P, samples_per_prompt: the
      smallest n, pass_at_k / maj_at_k: {str(k): mean over prompts} for k in ks_up_to(smallest n)}.
    """
    groups = {p: list(s) for p, s in groups.items() if len(s)}
    if not groups:
        return {"num_prompts": 0}
    n_min = min(len(s) for s in groups.values())
    per_prompt = [np.mean([c for c, _ in s]) for s in groups.values()]
    acc = mean_ci(np.asarray(per_prompt))
    out: dict[str, Any] = {
        "accuracy": acc["mean"],
        "accuracy_ci95": acc["ci95"],
        "num_prompts": acc["num_prompts"],
        "samples_per_prompt": n_min,
    }
    ks = ks_up_to(n_min)
    out["pass_at_k"] = {
        str(k): float(
            np.mean([pass_at_k(len(s), sum(c for c, _ in s), k) for s in groups.values()])
        )
        for k in ks
    }
    out["maj_at_k"] = {
        str(k): float(
            np.mean([maj_at_k([a for _, a in s], [c for c, _ in s], k) for s in groups.values()])
        )
        for k in ks
    }
    return out


def paired_difference(a: Mapping[Any, float], b: Mapping[Any, float]) -> dict[str, float]:
    """Mean over the shared prompts of a[p] − b[p] with a 95% t-interval (df = prompts − 1).

    Args:
      a, b: prompt -> per-prompt accuracy of two runs on the same prompts.
    Returns:
      {mean, ci95 (NaN below two shared prompts), num_prompts}.
    """
    keys = [k for k in a if k in b]
    d = np.asarray([a[k] - b[k] for k in keys], np.float64)
    return mean_ci(d)


def welch_difference(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """mean(a) − mean(b) with a Welch 95% interval over independent replicates (e.g. seeds).

    Args:
      a, b: per-replicate values of two methods, at least two on each side.
    Returns:
      {mean, ci95, df}; ci95 is 0 when every replicate is equal on both sides.
    Raises:
      ValueError: fewer than two replicates on a side (its variance is unknown, not zero).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.size < 2 or b.size < 2:
        raise ValueError(
            f"a Welch interval needs at least two replicates per side; got {a.size} and {b.size}."
        )
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    mean = float(a.mean() - b.mean())
    if va + vb == 0:
        return {"mean": mean, "ci95": 0.0, "df": float(a.size + b.size - 2)}
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    return {"mean": mean, "ci95": float(t_quantile(df) * np.sqrt(va + vb)), "df": float(df)}
