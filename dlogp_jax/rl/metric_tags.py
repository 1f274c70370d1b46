"""The namespaced tags of the training metrics in TensorBoard and Weights & Biases.

`metrics.jsonl` keeps its flat keys (`loss`, `reward_mean`, ...: the plots and older runs read
them); TensorBoard and W&B show the same values under verl-style namespaces: `actor/` (the policy
update), `rollout/` (generation, rewards, dynamic sampling), `eval/` (held-out Avg@n) and `timing/`
(seconds per phase, throughput). `TAGS` is the one table of this mapping (docs/operators.md prints
it; a test checks they agree); the `eval_*` and `dlogp_vs_init_*` families map by prefix, since
their keys depend on the settings (`eval_pass_at_{k}`, the percentiles).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

TAGS = {
    # actor: the policy update (train_step.update and the old-policy pass)
    "loss": "actor/loss",
    "grad_norm": "actor/grad_norm",
    "lr": "actor/lr",
    "entropy": "actor/entropy",
    "kl": "actor/kl",
    "clipped_low": "actor/pg_clipfrac_low",
    "clipped_high": "actor/pg_clipfrac_high",
    "clipped_dual": "actor/pg_clipfrac_dual",
    "weight_mean": "actor/token_weight_mean",
    "update_skipped": "actor/update_skipped",
    # rollout: generation, rewards and dynamic sampling (rollout.collect)
    "reward_mean": "rollout/reward_mean",
    "accuracy": "rollout/accuracy",
    "batch_reward_mean": "rollout/batch_reward_mean",
    "batch_accuracy": "rollout/batch_accuracy",
    "gen_rounds": "rollout/gen_rounds",
    "groups_generated": "rollout/groups_generated",
    "groups_kept": "rollout/groups_kept",
    "groups_kept_fraction": "rollout/groups_kept_fraction",
    "groups_missing": "rollout/groups_missing",
    "response_length_mean": "rollout/response_length_mean",
    "response_length_max": "rollout/response_length_max",
    "zero_signal": "rollout/zero_signal",
    "skipped": "rollout/skipped",
    # timing: seconds per phase of a step, and throughput
    "time_step": "timing/step",
    "time_rollout": "timing/rollout",
    "time_old_logp": "timing/old_logp",
    "time_update": "timing/update",
    "tokens_per_second": "timing/tokens_per_second",
}

# Key families whose members depend on the settings: prefix of the key -> prefix of the tag.
PREFIX_TAGS = {
    "eval_": "eval/",  # eval_accuracy, eval_pass_at_{k}, eval_maj_at_{k}, ...
    "dlogp_vs_init_": "actor/dlogp_vs_init_",  # _mean, _p1 ... _p99 (reference=true)
}

OTHER = "other/"  # a key in neither table (a new metric without a tag yet)


def tag(key: str) -> str:
    """The namespaced tag of a metrics.jsonl key ("loss" -> "actor/loss"); `other/<key>` when the
    key is in neither table, so a new metric is still shown."""
    if key in TAGS:
        return TAGS[key]
    for prefix, tag_prefix in PREFIX_TAGS.items():
        if key.startswith(prefix):
            return tag_prefix + key.removeprefix(prefix)
    return OTHER + key


def tagged_scalars(metrics: Mapping[str, object]) -> dict[str, float]:
    """{tag: value} of one step's numeric metrics, without `step` (the x-axis) and without
    non-numbers (TensorBoard and W&B scalars take numbers; NaN stays: a NaN loss is worth
    seeing)."""
    return {
        tag(k): float(v)
        for k, v in metrics.items()
        if k != "step" and isinstance(v, numbers.Real) and not isinstance(v, bool)
    }
