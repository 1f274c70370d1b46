"""Held-out accuracy of a policy during training: Avg@n, pass@k and maj@k over a fixed prompt set.

Legend: P prompts, n samples per prompt, M max response length. The protocol (Avg@n, an interval
over prompts) is docs/method.md §5; the statistics are `analysis.accuracy.accuracy_metrics`, the
same code as `dlogp-grade` and `dlogp-sample`. Each prompt is graded with its data source's reward
(`reward_for`, e.g. DAPO `Answer:` matching for DAPO-Math / AIME rows, as verl's validation); a
sample is correct when its reward is > 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dlogp_jax.analysis.accuracy import accuracy_metrics
from dlogp_jax.engine import choice as engines
from dlogp_jax.rl.rewards import Grader, answer_key
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
    reward_for: Callable[[str], str] | None = None,
    engine: engines.EngineChoice = engines.DEFAULT,
) -> dict[str, float]:
    """Samples spec.n responses per prompt and grades them with each prompt's reward.

    Prompts are generated `batch_prompts` at a time (one compiled shape; the last batch is padded
    with repeats whose samples are dropped), so the result does not depend on `batch_prompts`.

    Args:
      params, model: the policy and its ModelConfig.
      tokenizer: decodes the [P*n, M] responses.
      prompts: list of data.prompts.Prompt (the eval split), all decoded.
      spec: single-mode DecodeSpec (the eval's own temperature, top_p, max_new_tokens, n, ...).
      seed: generation seed (fixed across evaluations, so curves compare like with like).
      tp: prompt length bucket (left padding). mesh: the device mesh.
      grader: runs the rewards (`score_each`).
      reward_for: data_source -> reward name (a REWARDS key or "accuracy"); None: "accuracy"
        (`rewards.grade`) for every prompt.
      engine: the decoder; paged queues every prompt in one call (its slots and pages bound the
        memory, so batch_prompts is the static decoder's batch only). Both give the same samples.
    Returns:
      {eval_accuracy: Avg@n, the mean over the P prompts of each one's fraction correct,
      eval_accuracy_ci95: its Student-t half-width (NaN for one prompt), eval_pass_at_{k} and
      eval_maj_at_{k} for k = 1, 2, 4, ..., n, eval_length_mean: over all P*n responses,
      eval_timeouts: responses whose grading timed out, eval_num_prompts: P, eval_n: n}.
    """
    reward_for = reward_for or (lambda source: "accuracy")
    samples, lengths, timeouts = {}, [], 0
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
            shared=True,  # every process evaluates the same prompts
        )
        rows = real * spec.n  # response rows of the real prompts (rows g*n + j)
        texts = [
            tokenizer.decode(t[:n].tolist(), skip_special_tokens=True)
            for t, n in zip(tokens[:rows], length[:rows])
        ]
        owners = [int(i) for i in np.repeat(idx[:real], spec.n)]
        names = [reward_for(prompts[i].data_source) for i in owners]
        truths = [prompts[i].answer for i in owners]
        scores, late = grader.score_each(names, texts, truths)
        timeouts += sum(late)
        for row, (i, name, text, score) in enumerate(zip(owners, names, texts, scores)):
            # The row's position in its prompt's samples keys it: padded repeats never reach here.
            samples.setdefault(i, {})[row % spec.n] = (score > 0, answer_key(name, text))
        lengths.extend(length[:rows])
    return _eval_metrics(samples, lengths, timeouts, len(prompts), spec.n)


def _eval_metrics(samples: dict, lengths: list, timeouts: int, num_prompts: int, n: int) -> dict:
    """The flat `eval_*` scalars (TensorBoard wants scalars) from each prompt's samples in order."""
    got = accuracy_metrics({i: [s[j] for j in sorted(s)] for i, s in samples.items()})
    out = {"eval_accuracy": got["accuracy"], "eval_accuracy_ci95": got["accuracy_ci95"]}
    out.update({f"eval_pass_at_{k}": v for k, v in got["pass_at_k"].items()})
    out.update({f"eval_maj_at_{k}": v for k, v in got["maj_at_k"].items()})
    out.update(
        eval_length_mean=float(np.mean(lengths)),
        eval_timeouts=int(timeouts),
        eval_num_prompts=num_prompts,
        eval_n=n,
    )
    return out
