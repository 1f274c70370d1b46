"""Per-token log-probs, entropies and KL divergences, chunked so `[B, T, V]` fp32 logits never exist.

Legend: B batch, T positions, D width, V vocabulary, C tokens per chunk, M = B*T flattened tokens.

The hidden states `[B, T, D]` are flattened to M tokens and projected to the vocabulary C tokens at a
time inside `lax.map` (a sequential loop in one compiled program), so the live logits are `[C, V]` per
model. All reductions run in fp32. `vocab_limit` drops embedding rows beyond the tokenizer's vocabulary
(Qwen pads 151,665 real tokens to 151,936 or 152,064 rows): those rows never receive probability.

Metrics at position t describe the prediction of `tokens[:, t]` from the prefix `tokens[:, :t]`
(position 0 has no prediction and is reported as 0), at temperature 1, over the full vocabulary.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from dlogp_jax.model import transformer
from dlogp_jax.model.config import ModelConfig

METRICS_ONE = ("logp", "entropy")
METRICS_TWO = (
    "logp_base",
    "logp_rl",
    "dlogp",
    "entropy_base",
    "entropy_rl",
    "kl_rl_base",
    "kl_base_rl",
)


def _chunked(fn, xs: tuple[jax.Array, ...], chunk_tokens: int, remat: bool = False):
    """Applies fn to row-chunks of the [M, ...] arrays xs; returns fn's outputs concatenated to [M]."""
    m = xs[0].shape[0]
    c = max(1, min(chunk_tokens, m))
    pad = -m % c
    padded = [jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)) for x in xs]
    chunks = [x.reshape(-1, c, *x.shape[1:]) for x in padded]
    if remat:  # backward recomputes each chunk's logits instead of storing them
        fn = jax.checkpoint(fn)
    out = jax.lax.map(lambda args: fn(*args), tuple(chunks))
    return jax.tree.map(lambda o: o.reshape(-1, *o.shape[2:])[:m], out)


def _log_softmax(h: jax.Array, w: jax.Array) -> jax.Array:
    """[C, D] x [D, V] -> [C, V] fp32 log-probabilities."""
    logits = jnp.einsum("cd,dv->cv", h, w.astype(h.dtype), preferred_element_type=jnp.float32)
    return jax.nn.log_softmax(logits, axis=-1)


def _entropy(logp: jax.Array) -> jax.Array:
    return -jnp.sum(jnp.exp(logp) * logp, axis=-1)


def token_logprobs(
    h: jax.Array,
    w: jax.Array,
    targets: jax.Array,
    *,
    chunk_tokens: int = 1024,
    with_entropy: bool = False,
):
    """Log-prob of each target token (differentiable; backward recomputes logits per chunk).

    Args:
      h: [M, D] hidden states (already flattened).
      w: [D, V'] unembedding, already cut to the tokenizer's vocabulary.
      targets: [M] int token ids.
      chunk_tokens: C, tokens projected to the vocabulary at once.
      with_entropy: also return the full-distribution entropy.
    Returns:
      [M] fp32 log-probs, or ([M], [M]) with entropy.
    """

    def one(hc, tc):
        logp = _log_softmax(hc, w)
        lp = jnp.take_along_axis(logp, tc[:, None], axis=-1)[:, 0]
        return (lp, _entropy(logp)) if with_entropy else lp

    return _chunked(one, (h, targets), chunk_tokens, remat=True)


def pair_metrics(h_base, w_base, h_rl, w_rl, targets, *, chunk_tokens: int = 1024):
    """Two-model per-token metrics over the full vocabulary.

    Args:
      h_base, h_rl: [M, D_base], [M, D_rl] hidden states of the two models on the same tokens.
      w_base, w_rl: [D, V'] unembeddings cut to the same vocabulary V'.
      targets: [M] token ids.
      chunk_tokens: C.
    Returns:
      dict of [M] fp32 arrays named as METRICS_TWO.
    """

    def one(hb, hr, tc):
        lb, lr = _log_softmax(hb, w_base), _log_softmax(hr, w_rl)
        pb, pr = jnp.exp(lb), jnp.exp(lr)
        tb = jnp.take_along_axis(lb, tc[:, None], axis=-1)[:, 0]
        tr = jnp.take_along_axis(lr, tc[:, None], axis=-1)[:, 0]
        diff = lr - lb
        return {
            "logp_base": tb,
            "logp_rl": tr,
            "dlogp": tr - tb,
            "entropy_base": -jnp.sum(pb * lb, axis=-1),
            "entropy_rl": -jnp.sum(pr * lr, axis=-1),
            "kl_rl_base": jnp.sum(pr * diff, axis=-1),
            "kl_base_rl": -jnp.sum(pb * diff, axis=-1),
        }

    return _chunked(one, (h_base, h_rl, targets), chunk_tokens)


def _shifted(h: jax.Array, tokens: jax.Array):
    """Flattens [B, T, D] hidden states predicting tokens[:, 1:]; returns ([M, D], [M])."""
    b, t, d = h.shape
    return h[:, :-1].reshape(b * (t - 1), d), tokens[:, 1:].reshape(-1)


def _unshift(flat: jax.Array, b: int, t: int) -> jax.Array:
    return jnp.pad(flat.reshape(b, t - 1), ((0, 0), (1, 0)))


@functools.partial(
    jax.jit, static_argnames=("config_base", "config_rl", "vocab_limit", "chunk_tokens")
)
def score_tokens(
    params_base,
    tokens: jax.Array,
    positions: jax.Array,
    input_mask: jax.Array,
    params_rl=None,
    *,
    config_base: ModelConfig,
    config_rl: ModelConfig | None = None,
    vocab_limit: int,
    chunk_tokens: int = 1024,
) -> dict[str, jax.Array]:
    """Teacher-forced metrics of every token under one model or a (base, RL) pair.

    Args:
      params_base: base model params. params_rl: RL model params or None.
      tokens: [B, T] ids (right-padded). positions: [B, T]. input_mask: [B, T] bool, False at pads.
      config_base, config_rl: static model configs.
      vocab_limit: V', the tokenizer's vocabulary size (`len(tokenizer)`); rows beyond are dropped.
      chunk_tokens: C, tokens projected to the vocabulary at once.
    Returns:
      dict of [B, T] fp32 arrays: `logp`, `entropy` with one model; METRICS_TWO with two. Entry t
      scores tokens[:, t] given tokens[:, :t]; entry 0 is 0.
    """
    b, t = tokens.shape
    h_b, _ = transformer.hidden_states(
        params_base, tokens, positions, None, input_mask, config=config_base
    )
    w_b = transformer.unembed_matrix(params_base, config_base)[:, :vocab_limit]
    hb, targets = _shifted(h_b, tokens)
    if params_rl is None:
        lp, ent = token_logprobs(hb, w_b, targets, chunk_tokens=chunk_tokens, with_entropy=True)
        return {"logp": _unshift(lp, b, t), "entropy": _unshift(ent, b, t)}
    h_r, _ = transformer.hidden_states(
        params_rl, tokens, positions, None, input_mask, config=config_rl
    )
    w_r = transformer.unembed_matrix(params_rl, config_rl)[:, :vocab_limit]
    hr, _ = _shifted(h_r, tokens)
    out = pair_metrics(hb, w_b, hr, w_r, targets, chunk_tokens=chunk_tokens)
    return {k: _unshift(v, b, t) for k, v in out.items()}
