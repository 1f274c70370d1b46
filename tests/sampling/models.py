"""Shared test models: a tiny base/RL pair (base V=99 rows, RL V=106 rows: 7 padding rows), prompts
and a no-cache reference forward."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from dlogp_jax import toy
from dlogp_jax.model import transformer

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


def prompts():
    """Three prompts of different lengths, left-padded to 6: (tokens [3, 6], mask [3, 6])."""
    from dlogp_jax.sampling import left_pad

    return left_pad([[5, 17, 42], [3, 9, 11, 60, 2, 8], [70]], pad_id=0)


def full_logprobs(params, config, seq, vocab=VOCAB) -> np.ndarray:
    """Next-token raw log-probs [V] after the unpadded sequence `seq`, no cache (reference)."""
    tokens = jnp.asarray([seq], jnp.int32)
    positions = jnp.arange(len(seq))[None]
    logits, _ = transformer.apply(params, tokens, positions, config=config)
    return np.asarray(jax.nn.log_softmax(logits[0, -1, :vocab].astype(jnp.float32)))
