"""Held-out accuracy of a policy during training: Avg@n over a fixed prompt set.

Legend: P prompts, n samples per prompt, M max response length. The protocol (Avg@n, an interval
over prompts) is docs/method.md §5.
"""

from __future__ import annotations

import numpy as np

from dlogp_jax.analysis.sample_summary import mean_ci
from dlogp_jax.engine import choice as engines
from dlogp_jax.rl.rewards import Grader
from dlogp_jax.rl.rollout import generate_round
from dlogp_jax.sampling import DecodeSpec
from dlogp_jax.sampling.batches import fixed_batches


def evaluate(
    params,
    *,
    model,
    tokenizer,
    prompts,
    spec: DecodeSpec,
    seed: int,
    tp: int,
    mesh,
    grader: Grader,
    batch_prompts: int = 16,
    engine: engines.EngineChoice = engines.DEFAULT,
) -> dict[str, float]:
    """Samples spec.n responses per prompt and grades them with `rewards.grade` (Avg@n).

    Prompts are generated `batch_prompts` at a time (one compiled shape; the last batch is padded
    with repeats whose samples are dropped), so the result does not depend on `batch_prompts`.

    Args:
      params, model: the policy and its ModelConfig.
      tokenizer: decodes the [P*n, M] responses.
      prompts: list of data.prompts.Prompt (the eval split), all decoded.
      spec: single-mode DecodeSpec (temperature, max_new_tokens, n, stops, vocab_limit).
      seed: generation seed (fixed across evaluations, so curves compare like with like).
      tp: prompt length bucket (left padding). mesh: the device mesh.
      grader: scores with its "accuracy" check.
      engine: the decoder; paged queues every prompt in one call (its slots and pages bound the
        memory, so batch_prompts is the static decoder's batch only). Both give the same samples.
    Returns:
      {eval_accuracy: mean over the P prompts of each one's fraction correct, eval_accuracy_ci95:
      its normal-approximation half-width, eval_length_mean: over all P*n responses,
      eval_num_prompts: P, eval_n: n}.
    """
    per_prompt, lengths = [], []
    engine = engines.for_processes(engine)  # multi-process: static batches of batch_prompts
    batch_prompts = len(prompts) if engine.paged else batch_prompts
    for idx, real in fixed_batches(range(len(prompts)), batch_prompts):
        _, _, _, tokens, length = generate_round(
            params,
            config=model,
            prompts=prompts,
            idx=idx,
            spec=spec,
            seed=seed,
            tp=tp,
            mesh=mesh,
            engine=engine,
        )
        rows = real * spec.n  # response rows of the real prompts (rows g*n + j)
        texts = [
            tokenizer.decode(t[:n].tolist(), skip_special_tokens=True)
            for t, n in zip(tokens[:rows], length[:rows])
        ]
        truths = [prompts[i].answer for i in np.repeat(idx[:real], spec.n)]
        correct = np.asarray(grader.score("accuracy", texts, truths)).reshape(-1, spec.n)
        per_prompt.extend(correct.mean(axis=1))
        lengths.extend(length[:rows])
    acc = mean_ci(np.asarray(per_prompt))
    return {
        "eval_accuracy": acc["mean"],
        "eval_accuracy_ci95": acc["ci95"],
        "eval_length_mean": float(np.mean(lengths)),
        "eval_num_prompts": len(prompts),
        "eval_n": spec.n,
    }
