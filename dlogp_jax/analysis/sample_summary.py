"""Aggregates of sampled responses: length, replacement rate, finish reasons, and accuracy (Avg@n
with a t-interval over prompts, pass@k, maj@k) by `analysis.accuracy`, the code `dlogp-grade` uses.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

from dlogp_jax.analysis.accuracy import accuracy_metrics, mean_ci
from dlogp_jax.rl.rewards import answer_key

__all__ = ["mean_ci", "summarize_samples", "strip_special_tokens"]

_SPECIAL = re.compile(r"<\|[^|<>]*\|>")


def strip_special_tokens(text: str) -> str:
    """`text` without `<|...|>` tokens (responses are graded as decoded without special tokens)."""
    return _SPECIAL.sub("", text)


def summarize_samples(by_prompt: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    """Summary of samples grouped by prompt (rows as written to samples.jsonl).

    Accuracy is Avg@n: the mean over prompts of each prompt's fraction of correct samples; its
    interval treats prompts as the independent unit. pass@k / maj@k (k = 1, 2, 4, ..., n) vote on
    the answer `rewards.grade` reads; `grading_timeouts` counts samples whose grading timed out.
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
    graded = {p: rs for p, rs in sorted(by_prompt.items()) if "correct" in rs[0]}
    if graded:
        groups = {
            p: [(r["correct"], answer_key("accuracy", strip_special_tokens(r["text"]))) for r in rs]
            for p, rs in graded.items()
        }
        metrics = accuracy_metrics(groups)
        for key in ("accuracy", "accuracy_ci95", "samples_per_prompt", "pass_at_k", "maj_at_k"):
            out[key] = metrics[key]
        out["grading_timeouts"] = sum(
            bool(r.get("timed_out")) for rs in graded.values() for r in rs
        )
    return out
