"""Held-out accuracy of a policy during training: Avg@n over a fixed prompt set.

Legend: P prompts, n samples per prompt.
"""

from __future__ import annotations

import numpy as np

from dlogp_jax.analysis.sample_summary import mean_ci
from dlogp_jax.rl.rewards import Grader
from dlogp_jax.sampling import DecodeSpec


def evaluate(params, model, tokenizer, prompts, spec: DecodeSpec, seed: int, tp: int, mesh,
             grader: Grader, batch_prompts: int = 16) -> dict[str, float]:  # fmt: skip
    """Samples spec.n responses per prompt and grades them with `rewards.grade` (Avg@n).

    Args:
      prompts: list of data.sources.PromptRow (the eval split), all decoded.
      spec: single-mode DecodeSpec (temperature, max_new_tokens, n, stops, vocab_limit).
      seed: generation seed (fixed across evaluations, so curves compare like with like).
      tp: prompt length bucket (left padding).
    Returns:
      {eval_accuracy, eval_accuracy_ci95, eval_length_mean, eval_num_prompts, eval_n}.
    """
    from dlogp_jax.rl.rollout import generate_round

    per_prompt, lengths = [], []
    for start in range(0, len(prompts), batch_prompts):
        idx = list(range(start, min(start + batch_prompts, len(prompts))))
        idx += [idx[-1]] * (batch_prompts - len(idx))  # fixed shapes; extras dropped below
        _, _, _, tokens, length = generate_round(params, model, prompts, idx, spec, seed, tp, mesh)
        real = min(batch_prompts, len(prompts) - start) * spec.n
        texts = [
            tokenizer.decode(t[:n].tolist(), skip_special_tokens=True)
            for t, n in zip(tokens[:real], length[:real])
        ]
        truths = [prompts[i].answer for i in np.repeat(idx, spec.n)[:real]]
        correct = np.asarray(grader.score("accuracy", texts, truths)).reshape(-1, spec.n)
        per_prompt.extend(correct.mean(axis=1))
        lengths.extend(length[:real])
    acc = mean_ci(np.asarray(per_prompt))
    return {
        "eval_accuracy": acc["mean"], "eval_accuracy_ci95": acc["ci95"],
        "eval_length_mean": float(np.mean(lengths)), "eval_num_prompts": len(prompts),
        "eval_n": spec.n,
    }  # fmt: skip
