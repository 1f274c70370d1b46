"""Decoding: one or two models in lock-step; single, replace, extrapolate and extrapolate_all modes.

Facade: re-exports the public API; implementations live in the submodules.
"""

from dlogp_jax.sampling.decode import (
    decode_loop,
    generate,
    left_pad,
    make_logits_fn,
    prefill,
)
from dlogp_jax.sampling.spec import MODES, DecodeSpec
from dlogp_jax.sampling.state import (
    FINISH_CACHE,
    FINISH_LENGTH,
    FINISH_REASONS,
    FINISH_STOP,
    DecodeOutput,
    DecodeState,
)
from dlogp_jax.sampling.steps import StepOutput, make_step_fn
from dlogp_jax.sampling.strategies import SamplingParams

__all__ = [
    "FINISH_CACHE",
    "FINISH_LENGTH",
    "FINISH_REASONS",
    "FINISH_STOP",
    "MODES",
    "DecodeOutput",
    "DecodeSpec",
    "DecodeState",
    "SamplingParams",
    "StepOutput",
    "decode_loop",
    "generate",
    "left_pad",
    "make_logits_fn",
    "make_step_fn",
    "prefill",
]
