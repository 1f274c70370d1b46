"""Rollouts for DAPO: sample n responses per prompt, reward them, keep informative groups.

Legend: G groups (prompts), R = n responses per prompt, Tp prompt length, M max response length.

Dynamic sampling (DAPO, docs/method.md §4): rounds of `gen_prompts` prompts are generated until `train_prompts` groups
with non-constant accuracy have been collected; groups beyond `train_prompts` are discarded (as verl).
Accuracy is `reward > 0` before overlong shaping. Rewards are chosen per `data_source`
(`rewards_by_source`, e.g. math_dapo -> dapo_answer), else `default_reward`.

Multi-host: each process draws its own slice of every global prompt batch; the rows of all processes
are gathered and placed as one global array, and every process gathers all results, so the training
batch is built identically everywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils

from dlogp_jax.engine import choice as engines
from dlogp_jax.model.config import ModelConfig
from dlogp_jax.rl.advantages import keep_groups, overlong_penalty
from dlogp_jax.rl.rewards import Grader
from dlogp_jax.sampling import DecodeSpec, left_pad
from dlogp_jax.sharding import gather_to_host, place


@dataclasses.dataclass(frozen=True)
class RolloutConfig:
    """How rollouts are generated and scored."""

    n: int = 16
    train_prompts: int = 32  # groups per training step (verl train_batch_size)
    gen_prompts: int = 48  # prompts per generation round (verl gen_batch_size)
    max_gen_rounds: int = 10
    dynamic_sampling: bool = True
    temperature: float = 1.0
    top_p: float = 1.0
    max_response_len: int = 512
    overlong_buffer: int = 0
    overlong_factor: float = 1.0
    default_reward: str = "dapo_answer"
    rewards_by_source: tuple[tuple[str, str], ...] = (("math_dapo", "dapo_answer"),)
    # When dynamic sampling cannot fill train_prompts groups in max_gen_rounds: "fail" (raise
    # NotEnoughGroups) or "train" on the groups it has (none: the step makes no update), logged.
    unfilled: str = "fail"
    engine: str = "paged"  # paged (continuous batching over KV pages) | static (dense batch)
    kv_pages: int = 0  # KV pages per model (paged); 0 = auto (engine.choice)
    page_size: int = 16  # tokens per KV page (paged)
    max_seqs: int = 0  # sequences decoded together (paged); 0 = auto

    def reward_for(self, data_source: str) -> str:
        """The reward name of a row: the first `rewards_by_source` prefix it matches, else default."""
        for prefix, name in self.rewards_by_source:
            if data_source.startswith(prefix):
                return name
        return self.default_reward


@dataclasses.dataclass
class Groups:
    """Collected groups (host NumPy). Rows g*R + j = prompt g, response j."""

    prompt_index: np.ndarray  # [G]
    prompt_tokens: np.ndarray  # [G, Tp] left-padded
    prompt_mask: np.ndarray  # [G, Tp]
    responses: np.ndarray  # [G*R, M]
    lengths: np.ndarray  # [G*R]
    rewards: np.ndarray  # [G, R] shaped rewards
    accuracy: np.ndarray  # [G, R] 0/1

    def take(self, keep: np.ndarray) -> Groups:
        """The groups `keep` ([K] indices, in that order) with their R response rows each."""
        keep = np.asarray(keep, np.int64)
        r = self.rewards.shape[1]
        rows = (keep[:, None] * r + np.arange(r)).reshape(-1)
        return Groups(
            prompt_index=self.prompt_index[keep],
            prompt_tokens=self.prompt_tokens[keep],
            prompt_mask=self.prompt_mask[keep],
            responses=self.responses[rows],
            lengths=self.lengths[rows],
            rewards=self.rewards[keep],
            accuracy=self.accuracy[keep],
        )

    def pad_to(self, count: int) -> Groups:
        """`count` groups: these, then copies of group 0 with empty responses (length 0, so no
        response token is trained on) and zero rewards, keeping the batch shapes of a full step."""
        missing = count - len(self.prompt_index)
        if missing <= 0:
            return self
        filler = self.take(np.zeros(missing, np.int64))
        filler.lengths = np.zeros_like(filler.lengths)
        filler.rewards = np.zeros_like(filler.rewards)
        filler.accuracy = np.zeros_like(filler.accuracy)
        return Groups.concat([self, filler])

    @staticmethod
    def concat(parts: list[Groups]) -> Groups:
        """The groups of `parts` one after the other (every field concatenated on axis 0)."""
        fields = [f.name for f in dataclasses.fields(Groups)]
        return Groups(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in fields})


def _global(x: np.ndarray, mesh):
    """The global array of every process's rows (process-major), placed batch-sharded.

    Each process contributes its own prompts; all processes first gather every row, then `place`
    them (valid whatever devices a batch shard spans).

    Args:
      x: [B_local, ...] this process's rows. Returns: [B_local * processes, ...] jax.Array.
    """
    if jax.process_count() > 1:
        x = np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return place(x, mesh)


def generate_round(
    params,
    *,
    config: ModelConfig,
    prompts,
    idx,
    spec: DecodeSpec,
    seed: int,
    tp: int,
    mesh,
    engine: engines.EngineChoice = engines.DEFAULT,
    shared: bool = False,
):
    """Samples spec.n responses for this process's prompts `idx`; returns gathered host arrays.

    Args:
      params: policy parameters. config: their ModelConfig.
      prompts: every prompt (objects with `.ids`). idx: [G_local] this process's prompt indices.
      spec: single-mode DecodeSpec (spec.n responses per prompt, M = spec.max_new_tokens).
      seed: generation seed; a sample depends on (seed, prompt index, sample index) only.
      tp: Tp, the prompt length bucket (left padding). mesh: the device mesh.
      engine: the decoder (paged by default; sized once per process for Tp and G·n sequences,
        so every round reuses one compiled engine) or static. Both give the same responses.
        Multi-process, every process's paged host loop runs the same queue (all G prompts).
      shared: `idx` is the same on every process (evaluation): the rows are not gathered, so
        they are decoded once, not once per process.
    Returns:
      (all processes' prompt indices [G], prompt tokens [G, Tp], prompt mask [G, Tp],
      responses [G*n, M], lengths [G*n]) as NumPy, identical on every process.
    """
    tokens, mask = left_pad([prompts[i].ids for i in idx], spec.pad_id, buckets=(tp,))
    local = (tokens, mask, np.asarray(idx, np.int32))
    if shared:  # every process holds the same prompts: nothing to gather
        args = [place(a, mesh) for a in local]
        everyone = local
    else:
        args = [_global(a, mesh) for a in local]
        everyone = gather_to_host(tuple(args))
    with jax.set_mesh(mesh):
        out, _ = engines.decode(
            engine,
            params,
            # the paged engine's host loop takes host arrays: every process runs the same loop
            # over all processes' prompts; the static decoder takes the global arrays
            *(everyone if engine.paged else args),
            spec=spec,
            config_base=config,
            seed=seed,
            longest_prompt=tp,
            prefix="rollout.",
        )
    out = gather_to_host({"tokens": out.tokens, "length": out.length})
    all_tokens, all_mask, all_idx = everyone
    return all_idx, all_tokens, all_mask, out["tokens"], out["length"]


def score_round(
    cfg: RolloutConfig,
    *,
    prompts,
    idx,
    responses: np.ndarray,
    lengths: np.ndarray,
    tokenizer,
    grader: Grader,
):
    """Rewards of one round's responses, each prompt's reward chosen by its `data_source`.

    Args:
      prompts: every prompt (objects with `.answer`, `.data_source`). idx: [G] prompt indices.
      responses: [G*R, M] token ids (R = cfg.n, rows g*R + j). lengths: [G*R] response lengths.
    Returns:
      (shaped rewards [G, R] float32: raw reward + overlong penalty, accuracy [G, R] float32:
      raw reward > 0).
    """
    texts = [
        tokenizer.decode(r[:n].tolist(), skip_special_tokens=True)
        for r, n in zip(responses, lengths)
    ]
    truths = [prompts[i].answer for i in np.repeat(idx, cfg.n)]
    sources = [prompts[i].data_source for i in np.repeat(idx, cfg.n)]
    raw = np.zeros(len(texts), np.float64)
    for name in sorted({cfg.reward_for(s) for s in sources}):
        sel = [k for k, s in enumerate(sources) if cfg.reward_for(s) == name]
        raw[sel] = grader.score(name, [texts[k] for k in sel], [truths[k] for k in sel])
    acc = (raw > 0).astype(np.float32)
    shaped = raw + overlong_penalty(
        lengths, cfg.max_response_len, cfg.overlong_buffer, cfg.overlong_factor
    )
    return shaped.reshape(-1, cfg.n).astype(np.float32), acc.reshape(-1, cfg.n)


UNFILLED = ("fail", "train")


class NotEnoughGroups(RuntimeError):
    """Dynamic sampling could not fill the batch within max_gen_rounds."""


def collect(
    cfg: RolloutConfig,
    *,
    next_prompts: Callable[[], Sequence[int]],
    params,
    model: ModelConfig,
    prompts,
    spec: DecodeSpec,
    seeds: Callable[[int], int],
    tp: int,
    tokenizer,
    grader: Grader,
    mesh,
) -> tuple[Groups, dict[str, float]]:
    """Generation rounds until `train_prompts` informative groups exist.

    Args:
      cfg: rollout settings (R = cfg.n responses per prompt).
      next_prompts: callable returning this process's next [gen_prompts] prompt indices.
      params, model: the policy and its ModelConfig. prompts: every prompt (data.prompts.Prompt).
      spec: the rollout DecodeSpec. seeds: callable round -> int generation seed.
      tp: Tp, the prompt length bucket. tokenizer: decodes responses for the rewards.
      grader: scores them. mesh: the device mesh.
    Returns:
      (Groups of exactly train_prompts groups, in generation order: the first informative ones,
      the surplus of the last round dropped; stats dict: gen_rounds, groups_generated,
      groups_kept (before the cut), reward_mean / accuracy over all generated responses).
      With `cfg.unfilled == "train"` a batch that cannot be filled comes back short (fewer
      groups, `groups_missing` in stats) or as None when no group was informative.
    Raises:
      NotEnoughGroups: with how many groups survived (`cfg.unfilled == "fail"`).
    """
    kept, generated, total, all_rewards, all_acc = [], 0, 0, [], []
    for round_ in range(cfg.max_gen_rounds):
        idx, tokens, mask, responses, lengths = generate_round(
            params,
            config=model,
            prompts=prompts,
            idx=next_prompts(),
            spec=spec,
            seed=seeds(round_),
            tp=tp,
            mesh=mesh,
            engine=engines.choice_of(cfg),
        )
        rewards, acc = score_round(
            cfg,
            prompts=prompts,
            idx=idx,
            responses=responses,
            lengths=lengths,
            tokenizer=tokenizer,
            grader=grader,
        )
        groups = Groups(idx, tokens, mask, responses, lengths, rewards, acc)
        generated += len(idx)
        all_rewards.append(rewards)
        all_acc.append(acc)
        keep = keep_groups(acc) if cfg.dynamic_sampling else np.ones(len(idx), bool)
        kept.append(groups.take(np.flatnonzero(keep)))
        total = sum(len(g.prompt_index) for g in kept)
        if total >= cfg.train_prompts:
            batch = Groups.concat(kept).take(np.arange(cfg.train_prompts))
            stats = {
                "gen_rounds": round_ + 1,
                "groups_generated": generated,
                "groups_kept": total,
                "reward_mean": float(np.mean(np.concatenate(all_rewards))),
                "accuracy": float(np.mean(np.concatenate(all_acc))),
            }
            return batch, stats
    if cfg.unfilled == "train":
        batch = Groups.concat(kept) if total else None
        stats = {
            "gen_rounds": cfg.max_gen_rounds,
            "groups_generated": generated,
            "groups_kept": total,
            "groups_missing": cfg.train_prompts - total,
            "reward_mean": float(np.mean(np.concatenate(all_rewards))),
            "accuracy": float(np.mean(np.concatenate(all_acc))),
        }
        return batch, stats
    raise NotEnoughGroups(
        f"dynamic sampling kept {total} informative groups (non-constant accuracy) out of "
        f"{generated} generated in {cfg.max_gen_rounds} rounds, fewer than train_prompts="
        f"{cfg.train_prompts}. Every other group was all-correct or all-wrong: raise max_gen_rounds "
        "or n, lower train_prompts, set rollout.unfilled=train, or check the rewards/answers."
    )
