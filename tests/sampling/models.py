"""Shared test models: a tiny base/RL pair (base V=99 rows, RL V=106 rows: 7 padding rows), prompts
and a no-cache reference forward."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from dlogp_jax import toy
from dlogp_jax.model import transformer
from dlogp_jax.sampling import left_pad

VOCAB = 99  # the "tokenizer" length; the RL model has 7 extra embedding rows
PAD_ROWS = 7


@dataclasses.dataclass(frozen=True)
class Pair:
    config_base: object
    params_base: dict
    config_rl: object
    params_rl: dict


def build_pair() -> Pair:
    config = toy.tiny_config(VOCAB)
    k_base, k_noise, k_pad = jax.random.split(jax.random.key(7), 3)
    base = transformer.init(k_base, config, std=0.3)
    rl = dict(base)
    noise = 0.15 * jax.random.normal(k_noise, base["embed_vd"].shape)
    # Large random padding rows: their logits would often win if they were not cut off.
    pad = 3.0 * jax.random.normal(k_pad, (PAD_ROWS, config.hidden_size))
    rl["embed_vd"] = jnp.concatenate([base["embed_vd"] + noise, pad])
    return Pair(config, base, config.replace(vocab_size=VOCAB + PAD_ROWS), rl)


PROMPTS = ([5, 17, 42], [3, 9, 11, 60, 2, 8], [70])


def prompts(rows=PROMPTS):
    """Left-padded prompts: (tokens [P, Tp], mask [P, Tp]) NumPy arrays."""
    return left_pad(list(rows), pad_id=0)


@functools.partial(jax.jit, static_argnames=("config",))
def _last_logprobs(params, tokens, lengths, *, config):
    logits, _ = transformer.apply(
        params, tokens, jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape), config=config
    )
    last = jnp.take_along_axis(logits, (lengths - 1)[:, None, None], axis=1)[:, 0, :VOCAB]
    return jax.nn.log_softmax(last.astype(jnp.float32), axis=-1)


def full_logprobs(params, config, seqs, width=32) -> np.ndarray:
    """Reference: next-token raw log-probs [len(seqs), VOCAB] after each unpadded sequence, from a
    no-cache forward pass (right-padded to `width`; causal attention ignores the padding)."""
    tokens = np.zeros((len(seqs), width), np.int32)
    for i, s in enumerate(seqs):
        tokens[i, : len(s)] = s
    lengths = np.asarray([len(s) for s in seqs], np.int32)
    return np.asarray(_last_logprobs(params, tokens, lengths, config=config))
