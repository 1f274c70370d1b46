"""The DAPO policy loss with the paper's probability-based token weights.

Legend: B sequences in a (micro-)batch, T response positions.

Pieces (one concept per function): `ratio`, `token_weights`, `clipped_surrogate` (clip-higher + dual
clip), `aggregate` (named modes), `k3_kl`, combined by `policy_loss`.

Token weights (docs/method.md §4): the advantage of token t is multiplied by w_t, computed from p_old =
π_θold(y_t), the training model's own probability before the step's first update:
  `reshape_reversed` w = 1 + c·(1 − p_old)   the paper's method (c = 0.2 Qwen2.5-Math-7B, 0.1 Qwen3-8B)
  `reshape`          w = c·p_old + 1 − c     "Do not let low-probability tokens over-dominate"
  `focal`            w = (1 − p_old)^c
  `none`             w = 1
Since w ≥ 0 it factors out of the clipped surrogate, so it acts as a per-token loss weight and leaves
the clip region unchanged (w = 0 only at the edges: `focal` at p_old = 1, `reshape` with c = 1 at
p_old = 0).

Deviation from verl 0.5 (the official code): `token_mean` here is the true mean over every response
token of the mini-batch, also when the mini-batch is processed in micro-batches (the denominators are
global); verl averages per micro-batch and rescales by sequence counts, which is not an exact token
mean when micro-batches hold different numbers of tokens.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

TOKEN_WEIGHTS = ("none", "reshape_reversed", "reshape", "focal")
AGGREGATIONS = ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum")


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Static settings of the policy loss (validated).

    Attributes:
      clip_low, clip_high: ε_low, ε_high of clip-higher (ratio clipped to [1−ε_low, 1+ε_high]).
      clip_dual: c of the dual clip, bounding the loss of negative-advantage tokens by c·|A|.
      aggregation: one of AGGREGATIONS.
      weight_method: one of TOKEN_WEIGHTS. weight_c: its constant c.
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
        if self.weight_method not in TOKEN_WEIGHTS:
            raise ValueError(f"weight_method {self.weight_method!r}: use one of {TOKEN_WEIGHTS}.")
        if self.weight_method == "reshape" and not 0 <= self.weight_c <= 1:
            raise ValueError(f"weight_c={self.weight_c}: `reshape` needs 0 <= c <= 1 (w > 0).")
        if self.kl_coef < 0:
            raise ValueError(f"kl_coef={self.kl_coef} must be >= 0.")


def ratio(logp: jax.Array, logp_old: jax.Array) -> jax.Array:
    """Importance ratio π_θ/π_θold = exp(clip(logp − logp_old, −20, 20)) (verl's clamp)."""
    return jnp.exp(jnp.clip(logp - logp_old, -20.0, 20.0))


def token_weights(method: str, p_old: jax.Array, c: float) -> jax.Array:
    """Per-token advantage weights from p_old [B, T] (see the module docstring). No gradient."""
    p_old = jax.lax.stop_gradient(p_old)
    if method == "none":
        return jnp.ones_like(p_old)
    if method == "reshape_reversed":
        return 1.0 + c * (1.0 - p_old)
    if method == "reshape":
        return c * p_old + 1.0 - c
    if method == "focal":
        return (1.0 - p_old) ** c
    raise ValueError(f"unknown token weight method {method!r}; use one of {TOKEN_WEIGHTS}.")


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
