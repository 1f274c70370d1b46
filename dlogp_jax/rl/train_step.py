"""Jitted pieces of a DAPO step: the old-policy forward pass and one mini-batch update.

Legend: B sequences in a mini-batch, L = Tp + M sequence length (left-padded prompt, response),
M response positions, U micro-batches per mini-batch.

Batch dict (host NumPy or device arrays):
  tokens [B, L] int32, mask [B, L] bool (prompt padding and post-response padding False),
  resp_mask [B, M] f32, adv [B, M] f32 (GRPO advantage broadcast to tokens), weights [B, M] f32,
  logp_old [B, M] f32, and optionally logp_ref [B, M] f32.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import optax

from dlogp_jax.logprobs import response_logprobs
from dlogp_jax.model.config import ModelConfig
from dlogp_jax.rl.dapo_loss import CURRENT_POLICY_WEIGHTS, LossConfig, policy_loss, token_weights
from dlogp_jax.rl.train_state import OptimizerConfig, TrainState, make_optimizer


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """Static shapes and settings of the jitted step functions (hashable)."""

    model: ModelConfig
    loss: LossConfig
    prompt_len: int  # Tp
    vocab_limit: int
    chunk_tokens: int = 512
    micro_batches: int = 1  # U: gradient accumulation inside one update
    remat: bool = True
    optimizer: OptimizerConfig = OptimizerConfig()
    updates_per_step: int = 1  # mini-batches per training step (the lr schedule counts steps)
    # Log-probs (policy, π_old, reference, entropy) of softmax(logits / temperature): the rollout
    # temperature, as verl divides the logits by it before every training-side log-softmax.
    temperature: float = 1.0


def _logp(params, tokens, mask, cfg: StepConfig, with_entropy=False):
    return response_logprobs(
        params,
        tokens,
        mask,
        config=cfg.model,
        prompt_len=cfg.prompt_len,
        vocab_limit=cfg.vocab_limit,
        chunk_tokens=cfg.chunk_tokens,
        with_entropy=with_entropy,
        remat=cfg.remat,
        temperature=cfg.temperature,
    )


@functools.partial(jax.jit, static_argnames=("cfg",))
def forward_logprobs(params, tokens, mask, cfg: StepConfig):
    """([B, M] log-probs, [B, M] entropies) of the responses at `cfg.temperature`, no gradient
    (old / reference policy)."""
    return _logp(params, tokens, mask, cfg, with_entropy=True)


def _apply_if_finite(state: TrainState, grads, grad_norm, cfg: StepConfig):
    """(params, opt_state) after one optimizer update, or the old ones if grad_norm is not finite.

    A NaN/inf gradient would poison Adam's moments for good; verl zeroes the gradient and skips
    `optimizer.step()`. Here the skipped update also leaves the optimizer's update counter (and so
    the warmup schedule) where it was (docs/method.md §6).
    """
    optimizer = make_optimizer(cfg.optimizer, cfg.updates_per_step)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ok = jnp.isfinite(grad_norm)
    keep = lambda new, old: jnp.where(ok, new, old)
    return jax.tree.map(keep, params, state.params), jax.tree.map(keep, opt_state, state.opt_state)


def _micro(batch: dict, u: int) -> dict:
    return jax.tree.map(lambda x: x.reshape(u, x.shape[0] // u, *x.shape[1:]), batch)


@functools.partial(jax.jit, static_argnames=("cfg",), donate_argnums=(0,))
def update(state: TrainState, batch: dict, cfg: StepConfig):
    """One optimizer update on one mini-batch (accumulating over U micro-batches).

    The optimizer is rebuilt from `cfg.optimizer` inside the trace (a pure function of a hashable
    config), so equal settings reuse the compiled step across runs.

    A non-finite gradient norm skips the update (as verl's `_optimizer_step`): params and the whole
    optimizer state stay as they were, and `update_skipped` is 1.

    Returns:
      (new state with the same step counter, metrics dict of scalars: loss, grad_norm,
      update_skipped (0/1), clipped_low/high/dual fractions, kl (when logp_ref is given)).
    """
    num_tokens = jnp.sum(batch["resp_mask"])
    num_seqs = jnp.sum(jnp.any(batch["resp_mask"] > 0, axis=-1))

    def loss_fn(params, mb):
        logp = _logp(params, mb["tokens"], mb["mask"], cfg)
        weights = mb["weights"]
        if cfg.loss.weight_method in CURRENT_POLICY_WEIGHTS:  # focal: the current policy's p
            weights = token_weights(cfg.loss.weight_method, jnp.exp(logp), cfg.loss.weight_c)
        return policy_loss(
            logp,
            mb["logp_old"],
            mb["adv"],
            weights,
            mb["resp_mask"],
            cfg.loss,
            num_tokens,
            num_seqs,
            mb.get("logp_ref"),
        )

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def accumulate(carry, mb):
        (loss, stats), grads = grad_fn(state.params, mb)
        g, l_sum, s_sum = carry
        g = jax.tree.map(jnp.add, g, grads)
        return (g, l_sum + loss, jax.tree.map(jnp.add, s_sum, stats)), None

    zeros = jax.tree.map(jnp.zeros_like, state.params)
    micro = _micro(batch, cfg.micro_batches)
    first = jax.tree.map(lambda x: x[0], micro)
    stats0 = jax.tree.map(
        jnp.zeros_like, jax.eval_shape(lambda: grad_fn(state.params, first)[0][1])
    )
    (grads, loss, stats), _ = jax.lax.scan(accumulate, (zeros, 0.0, stats0), micro)
    grad_norm = optax.global_norm(grads)
    params, opt_state = _apply_if_finite(state, grads, grad_norm, cfg)
    metrics = {"loss": loss, "grad_norm": grad_norm}
    metrics["update_skipped"] = (~jnp.isfinite(grad_norm)).astype(jnp.float32)
    metrics.update({k: v / jnp.maximum(num_tokens, 1.0) for k, v in stats.items()})
    return state.replace(params=params, opt_state=opt_state), metrics
