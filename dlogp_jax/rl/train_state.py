"""`TrainState` and the optimizer: AdamW with linear warmup and global-norm clipping (optax)."""

from __future__ import annotations

import dataclasses

import flax.struct
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # [] int32: completed training steps
    params: dict
    opt_state: optax.OptState
    rng: jax.Array  # PRNG key: per-step generation seeds are folded from it


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """AdamW settings. verl's DAPO recipe: lr 1e-6, 10 warmup steps, wd 0.1, clip 1.0."""

    lr: float = 1e-6
    warmup_steps: int = 10
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.1
    grad_clip: float = 1.0

    def __post_init__(self):
        problems = [f"optimizer.lr={self.lr!r}: must be > 0."] if not self.lr > 0 else []
        if not self.grad_clip > 0:
            problems.append(f"optimizer.grad_clip={self.grad_clip!r}: must be > 0.")
        if not self.warmup_steps >= 0:
            problems.append(f"optimizer.warmup_steps={self.warmup_steps!r}: must be >= 0.")
        if problems:
            raise ValueError(" ".join(problems))


def schedule(cfg: OptimizerConfig, updates_per_step: int = 1) -> optax.Schedule:
    """Linear warmup over `warmup_steps` *training steps*, then constant.

    verl steps its lr scheduler once per training step, however many mini-batch updates the step
    makes; optax counts updates, hence the division. Deviation: training step k (0-based) uses
    (k+1)/W·lr, reaching lr at step W−1; verl's HF scheduler gives k/W, i.e. a first step at lr 0.
    """
    warm = optax.linear_schedule(0.0, cfg.lr, max(cfg.warmup_steps, 1))
    if cfg.warmup_steps == 0:
        return optax.constant_schedule(cfg.lr)
    return lambda count: warm((count // updates_per_step) + 1)


def make_optimizer(
    cfg: OptimizerConfig, updates_per_step: int = 1, *, lr_schedule: optax.Schedule | None = None
) -> optax.GradientTransformation:
    """clip_by_global_norm -> AdamW (decoupled weight decay on every parameter, as torch/verl).

    Args:
      cfg: the AdamW settings; `cfg.lr` / `cfg.warmup_steps` give the learning-rate schedule
        (`schedule`) unless `lr_schedule` replaces it (e.g. the demo's SFT warmup-cosine).
      updates_per_step: optimizer updates per training step (the mini-batches).
    """
    lr = lr_schedule if lr_schedule is not None else schedule(cfg, updates_per_step)
    return optax.chain(
        optax.clip_by_global_norm(cfg.grad_clip),
        optax.adamw(lr, cfg.b1, cfg.b2, cfg.eps, weight_decay=cfg.weight_decay),
    )


def create(params, optimizer: optax.GradientTransformation, seed: int) -> TrainState:
    """A fresh state at step 0 (the optimizer state inherits the params' shardings)."""
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=optimizer.init(params),
        rng=jax.random.key_data(jax.random.key(seed)),
    )
