"""Batched decoding with one or two models: prefill, then one `lax.while_loop`.

Legend: P prompts, Tp prompt length (left-padded), n samples per prompt, B = P·n sequences,
M = max_new_tokens, S cache slots, V vocabulary rows.

`generate` prefills the P unique prompts once per model, repeats each prompt's cache n times
(prompt-major: prompt i, sample j is row i·n + j), then runs the loop. Each iteration asks the step
function (`steps.make_step_fn`, one per mode) for a token from the current logits, records it, and
feeds it to the model(s) through `logits_fn`; with two models both KV caches advance in lock-step on
the same prefix inside one compiled program. The records are one pytree shaped like the step's
output (`steps.StepOutput`, one [B, M] buffer per field, sized with `jax.eval_shape`) and written
with one `jax.tree.map` per step, so a new record is one new StepOutput field. The loop stops at M
tokens, when every sequence has emitted a stop token, or when the cache has no slot for the next
token (a sequence holds at most S − Tp generated tokens). Everything after a stop token is `pad_id`
with zero records.

Randomness: sequence (prompt_index p, sample j) at step t uses the key
fold_in(fold_in(fold_in(key(seed), p), j), t), so its samples do not depend on the batch size, on
which other prompts share the batch, or on the device mesh. Deviation from the official code: it
calls vLLM once per token with the same `SamplingParams(seed)`, which replays the same sampling
noise at every step and for every sequence (docs/method.md §3, §6); we do not copy that, so results
differ from the paper's by sampling noise, not in distribution. Other deviations: criteria and
re-draws are exact over the full vocabulary unless `DecodeSpec.faithful` (then see
`extrapolation.TopKView`); the stop set is the caller's (`stop_ids`), where the official loop stops
on the base tokenizer's EOS only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dlogp_jax.model import transformer
from dlogp_jax.model.config import ModelConfig
from dlogp_jax.model.kv_cache import LOGICAL_AXES as CACHE_AXES
from dlogp_jax.model.kv_cache import KVCache, init_cache
from dlogp_jax.sampling.spec import DecodeSpec
from dlogp_jax.sampling.state import (
    DecodeOutput,
    DecodeState,
    batch_sharded,
    finish,
    record_buffers,
    write_records,
)
from dlogp_jax.sampling.steps import Knobs, StepFn, make_step_fn
from dlogp_jax.sharding import constrain
from dlogp_jax.types import Array, Bool, Int

# logits_fn(tokens [B], positions [B], caches) -> (tuple of [B, V] fp32 logits, caches)
LogitsFn = Callable[[jax.Array, jax.Array, tuple], tuple[tuple, tuple]]


def _constrain_cache(cache: KVCache) -> KVCache:
    return KVCache(
        k=constrain(cache.k, CACHE_AXES.k),
        v=constrain(cache.v, CACHE_AXES.v),
        key_mask=constrain(cache.key_mask, CACHE_AXES.key_mask),
        end_index=cache.end_index,
    )


def prompt_positions(prompt_mask: Bool[Array, "P Tp"]) -> Int[Array, "P Tp"]:
    """RoPE positions of left-padded prompts: 0 at each prompt's first real token (pads get 0)."""
    return jnp.maximum(jnp.cumsum(prompt_mask.astype(jnp.int32), axis=-1) - 1, 0)


def prefill(params, config: ModelConfig, tokens, mask, *, cache_length: int):
    """Runs the prompts into a fresh cache.

    Args:
      params, config: one model.
      tokens: [P, Tp] int left-padded prompts. mask: [P, Tp] bool, False at padding.
      cache_length: S >= Tp.
    Returns:
      ([P, V] fp32 logits of the token after each prompt, KVCache with end_index Tp).
    """
    cache = init_cache(config, tokens.shape[0], cache_length)
    h, cache = transformer.hidden_states(
        params, tokens, prompt_positions(mask), cache, mask, config=config
    )
    return transformer.logits_from_hidden(params, h[:, -1], config), cache


def make_logits_fn(models: Sequence[tuple]) -> LogitsFn:
    """`logits_fn` feeding one new token per sequence to each (params, config) in `models`."""

    def logits_fn(tokens, positions, caches):
        ones = jnp.ones((tokens.shape[0], 1), bool)
        logits, new_caches = [], []
        for (params, config), cache in zip(models, caches):
            h, cache = transformer.hidden_states(
                params, tokens[:, None], positions[:, None], cache, ones, config=config
            )
            logits.append(transformer.logits_from_hidden(params, h[:, 0], config))
            new_caches.append(_constrain_cache(cache))
        return tuple(batch_sharded(x) for x in logits), tuple(new_caches)

    return logits_fn


def step_keys(
    base_key: jax.Array, prompt_index: Int[Array, " B"], sample_index: Int[Array, " B"], step
) -> jax.Array:
    """[B] PRNG keys fold_in(fold_in(fold_in(base_key, prompt), sample), step) of one step."""
    fold = jax.random.fold_in
    return jax.vmap(lambda p, j: fold(fold(fold(base_key, p), j), step))(prompt_index, sample_index)


def decode_loop(
    state: DecodeState,
    logits_fn: LogitsFn,
    step_fn: StepFn,
    *,
    stop_ids: tuple[int, ...],
    pad_id: int,
) -> DecodeState:
    """The while loop: token from `step_fn`, record, feed through `logits_fn`, until a stop condition.

    Args:
      state: after prefill (records sized [B, M]; M = max_new_tokens).
      logits_fn: (tokens [B], positions [B], caches) -> (logits tuple, caches).
      step_fn: (logits_base, logits_rl or None, keys [B]) -> steps.StepOutput.
      stop_ids: tokens that end a sequence. pad_id: written after the end.
    Returns:
      The final state.
    """
    max_new = state.records.token.shape[1]
    stop = jnp.asarray(stop_ids or (-1,), jnp.int32)

    def cond(s: DecodeState):
        room = ~s.caches[0].is_full(1)
        return (s.step < max_new) & ~jnp.all(s.done) & room

    def body(s: DecodeState):
        keys = step_keys(s.base_key, s.prompt_index, s.sample_index, s.step)
        out = step_fn(s.logits[0], s.logits[1] if len(s.logits) > 1 else None, keys)
        live = ~s.done
        done = s.done | (live & jnp.any(out.token[:, None] == stop[None, :], axis=-1))
        logits, caches = logits_fn(out.token, s.positions, s.caches)
        return s.replace(
            step=s.step + 1,
            logits=logits,
            caches=caches,
            positions=s.positions + 1,
            done=done,
            length=s.length + live.astype(jnp.int32),
            records=write_records(s, out, pad_id),
        )

    return jax.lax.while_loop(cond, body, state)


def _repeat(x, n: int, axis: int = 0):
    return x if n == 1 else jnp.repeat(x, n, axis=axis)


def _repeat_cache(cache: KVCache, n: int) -> KVCache:
    return _constrain_cache(
        KVCache(
            k=_repeat(cache.k, n, 1),
            v=_repeat(cache.v, n, 1),
            key_mask=_repeat(cache.key_mask, n, 0),
            end_index=cache.end_index,
        )
    )


def init_state(
    logits,
    caches,
    *,
    prompt_mask: Bool[Array, "P Tp"],
    prompt_index: Int[Array, " P"],
    seed: jax.Array,
    spec: DecodeSpec,
    step_fn: StepFn,
) -> DecodeState:
    """The loop state for B = P·n sequences from the prefill of P prompts (repeated n times each).

    Args:
      logits: per model, [P, V] fp32 logits after each prompt (from `prefill`).
      caches: per model, the prefilled KVCache of the P prompts.
      prompt_mask: [P, Tp] bool. prompt_index: [P] int32 global prompt ids.
      seed: [] int32 seed. spec: n, max_new_tokens and pad_id are used.
      step_fn: the mode's step function; its output's shapes size the records (not run here).
    Returns:
      DecodeState with B = P·n rows, prompt-major (row i·n + j = prompt i, sample j).
    """
    n = spec.n
    p = prompt_mask.shape[0]
    b = p * n
    logits = tuple(batch_sharded(_repeat(x, n)) for x in logits)
    base_key = jax.random.key(seed)
    keys = jax.ShapeDtypeStruct((b,), base_key.dtype)
    step_shapes = jax.eval_shape(step_fn, logits[0], logits[1] if len(logits) > 1 else None, keys)
    return DecodeState(
        step=jnp.zeros((), jnp.int32),
        logits=logits,
        caches=tuple(_repeat_cache(c, n) for c in caches),
        positions=batch_sharded(_repeat(jnp.sum(prompt_mask, axis=-1, dtype=jnp.int32), n)),
        base_key=base_key,
        prompt_index=batch_sharded(_repeat(prompt_index.astype(jnp.int32), n)),
        sample_index=batch_sharded(jnp.tile(jnp.arange(n, dtype=jnp.int32), p)),
        done=batch_sharded(jnp.zeros((b,), bool)),
        length=batch_sharded(jnp.zeros((b,), jnp.int32)),
        records=record_buffers(step_shapes, spec.max_new_tokens, spec.pad_id),
    )


@functools.partial(jax.jit, static_argnames=("spec", "config_base", "config_rl", "cache_length"))
def _generate(
    params_base,
    params_rl,
    *,
    prompt_tokens: Int[Array, "P Tp"],
    prompt_mask: Bool[Array, "P Tp"],
    prompt_index: Int[Array, " P"],
    seed: jax.Array,
    knobs: Knobs,
    spec: DecodeSpec,
    config_base: ModelConfig,
    config_rl: ModelConfig | None,
    cache_length: int,
) -> DecodeOutput:
    """The compiled program of `generate` (validated arguments; see there)."""
    models = [(params_base, config_base)]
    if params_rl is not None:
        models.append((params_rl, config_rl))
    prefilled = [
        prefill(p, c, prompt_tokens, prompt_mask, cache_length=cache_length) for p, c in models
    ]
    logits, caches = zip(*prefilled)
    step_fn = make_step_fn(spec, knobs)
    state = init_state(
        logits,
        caches,
        prompt_mask=prompt_mask,
        prompt_index=prompt_index,
        seed=seed,
        spec=spec,
        step_fn=step_fn,
    )
    state = decode_loop(
        state, make_logits_fn(models), step_fn, stop_ids=spec.stop_ids, pad_id=spec.pad_id
    )
    return finish(state)


def generate(
    params_base,
    prompt_tokens: Int[Array, "P Tp"],
    prompt_mask: Bool[Array, "P Tp"],
    prompt_index: Int[Array, " P"],
    *,
    spec: DecodeSpec,
    config_base: ModelConfig,
    params_rl=None,
    config_rl: ModelConfig | None = None,
    seed: int | jax.Array = 0,
    cache_length: int | None = None,
) -> DecodeOutput:
    """Samples `spec.n` continuations of each prompt (compiled once per shapes, spec and configs).

    Args:
      params_base: base model params (the only model in `single` mode, unless params_rl is given,
        which then only scores the sampled tokens).
      prompt_tokens: [P, Tp] int32 prompts, left-padded (bucket Tp to limit recompilation).
      prompt_mask: [P, Tp] bool, False at padding; every prompt needs >= 1 real token.
      prompt_index: [P] int32 global index of each prompt (with `seed`, it names the random stream,
        so a prompt's samples are the same in any batch).
      spec: the decoding settings (mode, criterion, sampling, limits, n, ...). All are static
        except threshold and gamma, which are traced: a sweep over them compiles once.
      config_base: base ModelConfig. params_rl, config_rl: the RL model (required unless `single`).
      seed: int seed (traced: changing it does not recompile).
      cache_length: S, KV slots per sequence; default Tp + max_new_tokens.
    Returns:
      DecodeOutput with [P·n, max_new_tokens] records, row i·n + j = prompt i, sample j.
    Raises:
      ValueError: missing RL model, or vocabularies `spec.check_models` rejects, or no cache room.
    """
    if params_rl is not None and config_rl is None:
        raise ValueError("params_rl given without config_rl.")
    config_rl = config_rl if params_rl is not None else None
    spec.check_models(config_base.vocab_size, None if config_rl is None else config_rl.vocab_size)
    prompt_tokens = jnp.asarray(prompt_tokens, jnp.int32)
    cache_length = cache_length or prompt_tokens.shape[1] + spec.max_new_tokens
    if cache_length <= prompt_tokens.shape[1]:
        raise ValueError(
            f"cache_length={cache_length} leaves no room after {prompt_tokens.shape[1]} prompt tokens."
        )
    return _generate(
        params_base,
        params_rl,
        prompt_tokens=prompt_tokens,
        prompt_mask=jnp.asarray(prompt_mask, bool),
        prompt_index=jnp.asarray(prompt_index, jnp.int32),
        seed=jnp.asarray(seed, jnp.int32),
        knobs=Knobs(jnp.float32(spec.threshold), jnp.float32(spec.gamma)),
        spec=spec.replace(threshold=0.0, gamma=0.0),
        config_base=config_base,
        config_rl=config_rl,
        cache_length=cache_length,
    )


def left_pad(
    prompts: Sequence[Sequence[int]], pad_id: int = 0, buckets: Sequence[int] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Left-pads token lists to one length: the smallest bucket that fits, else the longest prompt.

    Returns:
      (tokens [P, Tp] int32, mask [P, Tp] bool) as NumPy arrays.
    """
    longest = max(len(p) for p in prompts)
    length = min((b for b in buckets if b >= longest), default=longest)
    tokens = np.full((len(prompts), length), pad_id, np.int32)
    mask = np.zeros((len(prompts), length), bool)
    for i, p in enumerate(prompts):
        if len(p):
            tokens[i, -len(p) :] = p
            mask[i, -len(p) :] = True
    return tokens, mask
