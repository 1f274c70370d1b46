"""Aggregates of sampled responses: length, replacement rate, finish reasons, Avg@n accuracy."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np


def mean_ci(per_prompt: np.ndarray) -> dict[str, float]:
    """Mean over prompts with a normal-approximation 95% interval (standard error over prompts)."""
    x = np.asarray(per_prompt, np.float64)
    if x.size == 0:
        return {"mean": float("nan"), "ci95": float("nan"), "num_prompts": 0}
    se = x.std(ddof=1) / np.sqrt(x.size) if x.size > 1 else float("nan")
    return {"mean": float(x.mean()), "ci95": float(1.96 * se), "num_prompts": int(x.size)}


def summarize_samples(by_prompt: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    """Summary of samples grouped by prompt (rows as written to samples.jsonl).

    Accuracy is Avg@n: the mean over prompts of each prompt's fraction of correct samples; its
    interval treats prompts as the independent unit.
    """
    rows = [r for p in sorted(by_prompt) for r in by_prompt[p]]
    out: dict[str, Any] = {"num_prompts": len(by_prompt), "num_samples": len(rows)}
    if not rows:
        return out
    lengths = np.asarray([r["length"] for r in rows])
    out["mean_length"] = float(lengths.mean())
    out["max_length"] = int(lengths.max())
    out["replacement_rate"] = float(np.mean([r["replacement_rate"] for r in rows]))
    selected = sum(sum(r["selected"]) for r in rows)
    out["replaced_token_fraction"] = float(selected / max(1, lengths.sum()))
    out["finish_reasons"] = dict(Counter(r["finish_reason"] for r in rows))
    graded = {p: [r["correct"] for r in rs] for p, rs in by_prompt.items() if "correct" in rs[0]}
    if graded:
        acc = mean_ci(np.asarray([np.mean(v) for v in graded.values()]))
        out["accuracy"] = acc["mean"]
        out["accuracy_ci95"] = acc["ci95"]
        out["samples_per_prompt"] = int(np.mean([len(v) for v in graded.values()]))
    return out
