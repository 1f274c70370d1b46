"""Weight-space extrapolation (ExPO, Zheng et al. 2024): θ = θ_RL + α·(θ_RL − θ_base).

The baseline a reviewer asks for next to decode-time extrapolation (docs/method.md §3): instead of
mixing the two models' *distributions* at every token, move the RL model's *weights* further along
the base → RL direction once, and sample / score the result like any checkpoint (`dlogp-merge`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def extrapolate_weights(params_base, params_rl, alpha: float):
    """θ_RL + α·(θ_RL − θ_base), leaf by leaf, in float32, cast back to the RL leaf's dtype.

    Args:
      params_base, params_rl: params trees of the same structure and leaf shapes (as from
        `hf_weights.load_params`), NumPy or JAX arrays.
      alpha: α; 0 returns the RL weights, 1 doubles the RL update, −1 gives the base weights.
    Returns:
      the extrapolated tree (same structure and dtypes as params_rl).
    Raises:
      ValueError: the trees differ in structure or in a leaf's shape (naming the leaf).
    """
    paths_b = jax.tree_util.tree_flatten_with_path(params_base)[0]
    paths_r, treedef = jax.tree_util.tree_flatten_with_path(params_rl)
    names_b = [jax.tree_util.keystr(p) for p, _ in paths_b]
    names_r = [jax.tree_util.keystr(p) for p, _ in paths_r]
    if names_b != names_r:
        raise ValueError(
            f"the base and RL weights have different parameters: {sorted(set(names_b) ^ set(names_r))[:5]}."
        )
    out = []
    for name, (_, b), (_, r) in zip(names_r, paths_b, paths_r):
        if b.shape != r.shape:
            raise ValueError(
                f"weight {name}: base shape {tuple(b.shape)} != RL shape {tuple(r.shape)}; "
                "ExPO needs two checkpoints of one architecture and vocabulary size."
            )
        out.append(_extrapolate_leaf(b, r, alpha))
    return jax.tree_util.tree_unflatten(treedef, out)


def _extrapolate_leaf(b, r, alpha: float):
    """One leaf in float32 (bf16 differences of nearby weights would lose most of their bits)."""
    xp = jnp if isinstance(r, jax.Array) else np
    r32, b32 = xp.asarray(r, xp.float32), xp.asarray(b, xp.float32)
    return (r32 + alpha * (r32 - b32)).astype(r.dtype)
