"""The engine's only contact with `dlogp_jax.sampling`: step functions, RNG, records, outputs.

Legend: B sequence slots, M max_new_tokens, V vocabulary rows.

The engine runs the sampler's step functions unchanged (`sampling.steps.make_step_fn`, every mode
and criterion, exact and faithful) and derives each sequence's key exactly as the static decoder
does: fold_in(fold_in(fold_in(key(seed), prompt_index), sample_index), step), `step` counted within
the sequence, so a sample does not depend on the slot or round that served it. When the sampler's
record layout or signatures change, this module is the one place to adapt.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from dlogp_jax.model.config import ModelConfig
from dlogp_jax.sampling import FINISH_CACHE, FINISH_LENGTH, FINISH_STOP, DecodeOutput, DecodeSpec
from dlogp_jax.sampling.steps import Knobs, StepFn, StepOutput, make_step_fn, record_padding

__all__ = [
    "FINISH_CACHE",
    "FINISH_LENGTH",
    "FINISH_STOP",
    "RECORDS",
    "DecodeOutput",
    "DecodeSpec",
    "Knobs",
    "StepFn",
    "StepOutput",
    "check_models",
    "empty_records",
    "knobs_of",
    "make_step_fn",
    "output",
    "record_fill",
    "sequence_keys",
    "write_records",
]

# The per-token records are the StepOutput fields (the static decoder's `records` pytree); a
# record that is not float32 names its dtype here.
RECORDS = tuple(f.name for f in dataclasses.fields(StepOutput))
_DTYPES = {"token": jnp.int32, "proposed": jnp.int32, "selected": bool}


def check_models(spec: DecodeSpec, config_base: ModelConfig, params_rl, config_rl) -> None:
    """The static decoder's argument checks (`sampling.generate`), with the same messages."""
    if params_rl is not None and config_rl is None:
        raise ValueError("params_rl given without config_rl.")
    rl_rows = None if params_rl is None else config_rl.vocab_size
    spec.check_models(config_base.vocab_size, rl_rows)


def knobs_of(spec: DecodeSpec) -> tuple[Knobs, DecodeSpec]:
    """(traced threshold/γ, the spec without them): a sweep over τ and γ compiles once."""
    knobs = Knobs(jnp.float32(spec.threshold), jnp.float32(spec.gamma))
    return knobs, spec.replace(threshold=0.0, gamma=0.0)


def sequence_keys(base_key, prompt_index, sample_index, step) -> jax.Array:
    """[B] PRNG keys of each sequence's current step (the static decoder's derivation)."""
    fold = jax.random.fold_in
    return jax.vmap(lambda p, j, t: fold(fold(fold(base_key, p), j), t))(
        prompt_index, sample_index, step
    )


def record_fill(name: str, pad_id: int):
    """The value of record `name` (a StepOutput field) after a sequence's end."""
    return getattr(record_padding(pad_id), name)


def empty_records(spec: DecodeSpec, rows: int) -> dict[str, jax.Array]:
    """{name: [rows, M]} records filled with their end-of-sequence value."""
    m = spec.max_new_tokens
    return {
        name: jnp.full((rows, m), record_fill(name, spec.pad_id), _DTYPES.get(name, jnp.float32))
        for name in RECORDS
    }


def write_records(records: dict, out: StepOutput, live, step) -> dict:
    """Writes each live row's step output at its own column `step[b]`; other rows are untouched."""
    b, m = records["token"].shape
    col = jnp.where(live, step, m)  # m is out of range: dropped
    rows = jnp.arange(b)
    new = {}
    for name in RECORDS:
        value = getattr(out, name).astype(records[name].dtype)
        new[name] = records[name].at[rows, col].set(value, mode="drop")
    return new


def output(
    records: dict[str, np.ndarray],
    length: np.ndarray,
    reason: np.ndarray,
    prompt_index: np.ndarray,
    sample_index: np.ndarray,
    num_steps: int,
) -> DecodeOutput:
    """The static decoder's DecodeOutput from host arrays ([B, M] records, [B] the rest)."""
    rate = records["selected"].sum(-1) / np.maximum(length, 1)
    return DecodeOutput(
        records=StepOutput(**{k: jnp.asarray(v) for k, v in records.items()}),
        length=jnp.asarray(length, jnp.int32),
        finish_reason=jnp.asarray(reason, jnp.int32),
        replacement_rate=jnp.asarray(rate, jnp.float32),
        prompt_index=jnp.asarray(prompt_index, jnp.int32),
        sample_index=jnp.asarray(sample_index, jnp.int32),
        num_steps=jnp.asarray(num_steps, jnp.int32),
    )
