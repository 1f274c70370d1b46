"""What the decode loop carries and returns: `DecodeState`, `DecodeOutput`, and the records.

Legend: B = P·n sequences, M = max_new_tokens, V vocabulary rows.

The per-token records are one pytree with the structure of the step output (`steps.StepOutput`):
`record_buffers` allocates a [B, M] buffer per field from the step's shapes, `write_records` writes
column `step` of all of them with one `jax.tree.map`, and `DecodeOutput` hands them back. A mode
that records something new adds one StepOutput field and nothing else.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from dlogp_jax.sampling.steps import StepOutput, record_padding
from dlogp_jax.sharding import constrain

FINISH_STOP, FINISH_LENGTH, FINISH_CACHE = 1, 2, 3
FINISH_REASONS = {FINISH_STOP: "stop", FINISH_LENGTH: "length", FINISH_CACHE: "cache_full"}


@flax.struct.dataclass
class DecodeState:
    """Loop carry. `logits` are the next-token logits of each model (base first)."""

    step: jax.Array  # [] int32: tokens emitted so far
    logits: tuple  # ([B, V_base], [B, V_rl]?) fp32
    caches: tuple  # (KVCache, KVCache?)
    positions: jax.Array  # [B] int32 RoPE position of the next token
    base_key: jax.Array  # [] PRNG key of the seed
    prompt_index: jax.Array  # [B] int32
    sample_index: jax.Array  # [B] int32
    done: jax.Array  # [B] bool: emitted a stop token
    length: jax.Array  # [B] int32: tokens emitted (stop token included)
    records: StepOutput  # every StepOutput field as a [B, M] buffer; column t is step t


@flax.struct.dataclass
class DecodeOutput:
    """Decoded sequences, row i·n + j = prompt i, sample j. Entries after `length` are padding.

    Attributes:
      records: every `StepOutput` field as [B, M] (`pad_id` / 0 after the end); the per-token
        records are read through the properties below (a new StepOutput field: `records.<name>`).
      length: [B] int32 generated tokens, stop token included.
      finish_reason: [B] int32, FINISH_STOP / FINISH_LENGTH / FINISH_CACHE (see FINISH_REASONS).
      replacement_rate: [B] fp32 selected positions / length (0 for empty sequences).
      prompt_index, sample_index: [B] int32 which prompt (the caller's index) and which sample.
      num_steps: [] int32 loop iterations run.
    """

    records: StepOutput
    length: jax.Array
    finish_reason: jax.Array
    replacement_rate: jax.Array
    prompt_index: jax.Array
    sample_index: jax.Array
    num_steps: jax.Array

    @property
    def tokens(self) -> jax.Array:
        """[B, M] int32 emitted tokens (`pad_id` after the end)."""
        return self.records.token

    @property
    def proposed(self) -> jax.Array:
        """[B, M] int32 the driver's draw before the criterion (differs from tokens where a re-draw
        changed it)."""
        return self.records.proposed

    @property
    def logp_base(self) -> jax.Array:
        """[B, M] fp32 raw (temperature-1, full-vocabulary) log π_B of the emitted token."""
        return self.records.logp_base

    @property
    def logp_rl(self) -> jax.Array:
        """[B, M] fp32 raw log π_R of the emitted token (0 without an RL model)."""
        return self.records.logp_rl

    @property
    def dlogp(self) -> jax.Array:
        """[B, M] fp32 Δlog p of the proposed token."""
        return self.records.dlogp

    @property
    def selected(self) -> jax.Array:
        """[B, M] bool: the criterion fired (always in extrapolate_all, never in single)."""
        return self.records.selected


def batch_sharded(x: jax.Array) -> jax.Array:
    """x [B, ...] constrained to the batch sharding (a no-op without a mesh)."""
    return constrain(x, ("act_batch",) + (None,) * (x.ndim - 1))


def record_buffers(step_shapes: StepOutput, max_new: int, pad_id: int) -> StepOutput:
    """Empty records: one [B, M, ...] buffer per field of one step's [B, ...] records.

    Args:
      step_shapes: the step output's shapes (`jax.eval_shape` of the step function).
      max_new: M. pad_id: the fill of token-id records (see `steps.record_padding`).
    Returns:
      StepOutput of [B, M, ...] arrays, filled with each record's padding, batch-sharded.
    """

    def buffer(shape: jax.ShapeDtypeStruct, fill):
        b, *rest = shape.shape
        return batch_sharded(jnp.full((b, max_new, *rest), fill, shape.dtype))

    return jax.tree.map(buffer, step_shapes, record_padding(pad_id))


def write_records(state: DecodeState, out: StepOutput, pad_id: int) -> StepOutput:
    """The records of `state` with column `state.step` set to `out` (padding for finished rows).

    Args:
      state: the loop state; `done` [B] marks the finished rows.
      out: this step's StepOutput of [B, ...] arrays.
      pad_id: the value of token-id records in finished rows (other records get 0).
    Returns:
      StepOutput of [B, M, ...] arrays.
    """
    live = ~state.done

    def write(buffer, value, fill):
        live_rows = live.reshape(live.shape + (1,) * (value.ndim - 1))
        value = jnp.where(live_rows, value, jnp.asarray(fill, value.dtype))
        return buffer.at[:, state.step].set(value)

    return jax.tree.map(write, state.records, out, record_padding(pad_id))


def finish(state: DecodeState) -> DecodeOutput:
    """DecodeOutput ([B, M] records, [B] lengths, finish reasons, replacement rates) of the final state."""
    max_new = state.records.token.shape[1]
    reason = jnp.where(
        state.done,
        FINISH_STOP,
        jnp.where(state.length >= max_new, FINISH_LENGTH, FINISH_CACHE),
    ).astype(jnp.int32)
    rate = jnp.sum(state.records.selected, axis=-1) / jnp.maximum(state.length, 1)
    return DecodeOutput(
        records=state.records,
        length=state.length,
        finish_reason=reason,
        replacement_rate=rate.astype(jnp.float32),
        prompt_index=state.prompt_index,
        sample_index=state.sample_index,
        num_steps=state.step,
    )
