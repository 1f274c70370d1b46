"""The DAPO policy loss with the paper's probability-based token weights.

Legend: B sequences in a (micro-)batch, T response positions.

Pieces (one concept per function): `ratio`, `token_weights`, `clipped_surrogate` (clip-higher + dual
clip), `aggregate` (named modes), `k3_kl`, combined by `policy_loss`.

Token weights (docs/method.md §4): the advantage of token t is multiplied by w_t, computed from p_old =
π_θold(y_t), the training model's own probability before the step's first update (the official
fork's `algorithm.reweight.method`, c = `constant`):
  `reshape_reversed` w = 1 + c·(1 − p_old)   the paper's method (c = 0.2 Qwen2.5-Math-7B, 0.1 Qwen3-8B)
  `reshape`          w = c·p_old + 1 − c     "Do not let low-probability tokens over-dominate"
  `middle`           w = c + p_old·(1 − p_old)   exploratory: favours mid-probability tokens
  `normalize`        w = 1 / (1 + c − p_old)     exploratory (c = 0 would be 1 / (1 − p_old))
  `focal`            w = (1 − sg(p_θ))^c     on the *current* policy's detached probability,
                                             recomputed at every update (`CURRENT_POLICY_WEIGHTS`)
  `none`             w = 1
and the sequence-level Fig. 5 baselines (`SEQUENCE_WEIGHTS`, one weight per response from its log
perplexity logPPL = −mean_t log p_old(y_t)):
  `ppl`              w = 1 − c·logPPL
  `ppl-norm`         w = 1 − c·z, z = logPPL z-scored within the prompt's group (population std + 1e-6)
  `ppl-norm-clamp`   `ppl-norm` clipped to [0.8, 1.2]
Where w ≥ 0 it factors out of the clipped surrogate, so it acts as a per-token loss weight and leaves
the clip region unchanged (w = 0 only at the edges: `focal` at p = 1, `reshape` with c = 1 at
p_old = 0). `ppl` can go negative for a long-tailed response (1 − c·logPPL < 0), which flips that
response's advantage exactly as in the official fork.

Deviation from verl 0.5 (the official code): `token_mean` here is the true mean over every response
token of the mini-batch, also when the mini-batch is processed in micro-batches (the denominators are
global); verl averages per micro-batch and rescales by sequence counts, which is not an exact token
mean when micro-batches hold different numbers of tokens.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

TOKEN_WEIGHTS = ("none", "reshape_reversed", "reshape", "focal", "middle", "normalize")
SEQUENCE_WEIGHTS = ("ppl", "ppl-norm", "ppl-norm-clamp")
WEIGHT_METHODS = TOKEN_WEIGHTS + SEQUENCE_WEIGHTS
# Recomputed from the current policy inside every update (the batch's p_old weights are replaced).
CURRENT_POLICY_WEIGHTS = ("focal",)
AGGREGATIONS = ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum")


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Static settings of the policy loss (validated).

    Attributes:
      clip_low, clip_high: ε_low, ε_high of clip-higher (ratio clipped to [1−ε_low, 1+ε_high]).
      clip_dual: c of the dual clip, bounding the loss of negative-advantage tokens by c·|A|.
      aggregation: one of AGGREGATIONS.
      weight_method: one of WEIGHT_METHODS. weight_c: its constant c.
      kl_coef: weight of the k3 KL to a frozen reference model (0 = off, DAPO's default).
    """

    clip_low: float = 0.2
    clip_high: float = 0.28
    clip_dual: float = 10.0
    aggregation: str = "token_mean"
    weight_method: str = "reshape_reversed"
    weight_c: float = 0.2
    kl_coef: float = 0.0

    def __post_init__(self):
        if not 0 < self.clip_low < 1 or self.clip_high < self.clip_low:
            raise ValueError(
                f"clip_low={self.clip_low}, clip_high={self.clip_high}: need 0 < clip_low < 1 and "
                "clip_high >= clip_low (clip-higher)."
            )
        if self.clip_dual <= 1:
            raise ValueError(f"clip_dual={self.clip_dual}: the dual clip constant must exceed 1.")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation {self.aggregation!r}: use one of {AGGREGATIONS}.")
        if self.weight_method not in WEIGHT_METHODS:
            raise ValueError(f"weight_method {self.weight_method!r}: use one of {WEIGHT_METHODS}.")
        if self.weight_method == "reshape" and not 0 <= self.weight_c <= 1:
            raise ValueError(f"weight_c={self.weight_c}: `reshape` needs 0 <= c <= 1 (w > 0).")
        if self.weight_method == "normalize" and self.weight_c <= 0:
            raise ValueError(
                f"weight_c={self.weight_c}: `normalize` needs c > 0 (w finite at p=1)."
            )
        if self.weight_method == "middle" and self.weight_c < 0:
            raise ValueError(f"weight_c={self.weight_c}: `middle` needs c >= 0 (w >= 0).")
        if self.kl_coef < 0:
            raise ValueError(f"kl_coef={self.kl_coef} must be >= 0.")


def ratio(logp: jax.Array, logp_old: jax.Array) -> jax.Array:
    """Importance ratio π_θ/π_θold = exp(clip(logp − logp_old, −20, 20)) (verl's clamp)."""
    return jnp.exp(jnp.clip(logp - logp_old, -20.0, 20.0))


def token_weights(method: str, p_old: jax.Array, c: float) -> jax.Array:
    """Per-token advantage weights from probabilities p [B, T] (see the module docstring). No
    gradient. For `focal` the trainer passes the current policy's p (`CURRENT_POLICY_WEIGHTS`)."""
    p_old = jax.lax.stop_gradient(p_old)
    if method == "none":
        return jnp.ones_like(p_old)
    if method == "reshape_reversed":
        return 1.0 + c * (1.0 - p_old)
    if method == "reshape":
        return c * p_old + 1.0 - c
    if method == "focal":
        return (1.0 - p_old) ** c
    if method == "middle":
        return c + (1.0 - p_old) * p_old
    if method == "normalize":
        return 1.0 / (1.0 + c - p_old)
    raise ValueError(f"unknown token weight method {method!r}; use one of {TOKEN_WEIGHTS}.")


def sequence_weights(
    method: str, logp_old: jax.Array, mask: jax.Array, group_size: int, c: float
) -> jax.Array:
    """Per-response weights from each response's log perplexity, broadcast to its tokens.

    Args:
      method: one of SEQUENCE_WEIGHTS (see the module docstring).
      logp_old: [B, T] log π_θold of the response tokens; mask: [B, T] 1 on response tokens.
      group_size: R, responses per prompt; rows g*R + j form group g (B divisible by R).
      c: the constant.
    Returns:
      [B, T] weights, equal along T (0-token responses get logPPL 0). No gradient.
    """
    mask = mask.astype(jnp.float32)
    # where, not a product: positions past a response may hold any value (even inf).
    logp_old = jnp.where(mask > 0, jax.lax.stop_gradient(logp_old), 0.0)
    log_ppl = -jnp.sum(logp_old, axis=-1) / jnp.maximum(jnp.sum(mask, axis=-1), 1.0)  # [B]
    if method == "ppl":
        w = 1.0 - c * log_ppl
    elif method in ("ppl-norm", "ppl-norm-clamp"):
        g = log_ppl.reshape(-1, group_size)  # [G, R]
        z = (g - g.mean(axis=1, keepdims=True)) / (g.std(axis=1, keepdims=True) + 1e-6)
        w = (1.0 - c * z).reshape(-1)
        if method == "ppl-norm-clamp":
            w = jnp.clip(w, 0.8, 1.2)
    else:
        raise ValueError(
            f"unknown sequence weight method {method!r}; use one of {SEQUENCE_WEIGHTS}."
        )
    return jnp.broadcast_to(w[:, None], logp_old.shape)


def advantage_weights(
    method: str, logp_old: jax.Array, mask: jax.Array, group_size: int, c: float
) -> jax.Array:
    """[B, T] weights of any WEIGHT_METHODS from log π_θold [B, T] (token or sequence level)."""
    if method in SEQUENCE_WEIGHTS:
        return sequence_weights(method, logp_old, mask, group_size, c)
    return token_weights(method, jnp.exp(logp_old), c)


def clipped_surrogate(r: jax.Array, adv: jax.Array, cfg: LossConfig):
    """Per-token PPO loss with clip-higher and dual clip.

    Args:
      r: [B, T] ratios. adv: [B, T] (weighted) advantages.
    Returns:
      (loss [B, T], flags) with flags `clipped_low`, `clipped_high`, `clipped_dual` [B, T] bool:
      where the clipped branch set the loss.
    """
    unclipped = -adv * r
    clipped = -adv * jnp.clip(r, 1.0 - cfg.clip_low, 1.0 + cfg.clip_high)
    loss = jnp.maximum(unclipped, clipped)
    dual = -adv * cfg.clip_dual
    use_dual = (adv < 0) & (dual < loss)
    loss = jnp.where(use_dual, dual, loss)
    took_clip = (clipped > unclipped) & ~use_dual
    flags = {
        "clipped_low": took_clip & (r < 1.0 - cfg.clip_low),
        "clipped_high": took_clip & (r > 1.0 + cfg.clip_high),
        "clipped_dual": use_dual,
    }
    return loss, flags


def aggregate(
    x: jax.Array, mask: jax.Array, mode: str, num_tokens: jax.Array, num_seqs: jax.Array
) -> jax.Array:
    """Reduces per-token values [B, T] to a scalar with global denominators.

    Args:
      x: [B, T] per-token values. mask: [B, T] 1 on response tokens.
      mode: `token_mean` (Σ x / num_tokens), `seq_mean_token_mean` (Σ_i mean_t x_i / num_seqs),
        `seq_mean_token_sum` (Σ_i Σ_t x_i / num_seqs).
      num_tokens, num_seqs: totals over the whole mini-batch (so micro-batch sums add up exactly).
    """
    mask = mask.astype(jnp.float32)
    x = x * mask
    if mode == "token_mean":
        return jnp.sum(x) / jnp.maximum(num_tokens, 1.0)
    if mode == "seq_mean_token_mean":
        per_seq = jnp.sum(x, axis=-1) / jnp.maximum(jnp.sum(mask, axis=-1), 1.0)
        return jnp.sum(per_seq) / jnp.maximum(num_seqs, 1.0)
    if mode == "seq_mean_token_sum":
        return jnp.sum(x) / jnp.maximum(num_seqs, 1.0)
    raise ValueError(f"unknown aggregation {mode!r}; use one of {AGGREGATIONS}.")


def k3_kl(logp: jax.Array, logp_ref: jax.Array) -> jax.Array:
    """Schulman's k3 estimator of KL(π_θ‖π_ref) per token, as verl's `low_var_kl`.

    d = clip(ref − θ, −20, 20); k3 = e^d − d − 1 ≥ 0, clipped to [−10, 10] (so at most 10: one
    token far below the reference cannot dominate the KL term or its gradient).
    """
    d = jnp.clip(logp_ref - logp, -20.0, 20.0)
    return jnp.clip(jnp.exp(d) - d - 1.0, -10.0, 10.0)


def policy_loss(
    logp, logp_old, adv, weights, mask, cfg: LossConfig, num_tokens, num_seqs, logp_ref=None
):
    """The full per-(micro-)batch loss and its per-token statistics.

    Args:
      logp: [B, T] log π_θ of the response tokens (differentiable).
      logp_old: [B, T] log π_θold (constant across the step's updates).
      adv: [B, T] GRPO advantages broadcast to tokens. weights: [B, T] token weights.
      mask: [B, T] 1 on response tokens.
      cfg: LossConfig. num_tokens, num_seqs: mini-batch totals (see `aggregate`).
      logp_ref: [B, T] reference log-probs for the k3 KL term, or None.
    Returns:
      (scalar loss, dict of scalar sums: `clipped_low`/`clipped_high`/`clipped_dual` token counts,
      `kl` token-sum, to be normalised by the caller).
    """
    r = ratio(logp, logp_old)
    loss, flags = clipped_surrogate(r, adv * weights, cfg)
    total = aggregate(loss, mask, cfg.aggregation, num_tokens, num_seqs)
    stats = {k: jnp.sum(v * mask) for k, v in flags.items()}
    if logp_ref is not None:
        kl = k3_kl(logp, logp_ref)
        stats["kl"] = jnp.sum(kl * mask)
        if cfg.kl_coef:
            total = total + cfg.kl_coef * aggregate(kl, mask, cfg.aggregation, num_tokens, num_seqs)
    return total, stats
