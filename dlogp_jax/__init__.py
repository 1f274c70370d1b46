"""dlogp_jax: the direction of RLVR updates (Δlog p) in JAX.

Facade: re-exports the public API; implementations live in the submodules. The runs (`score`,
`sample`, `train`, `grade` and their settings) are the notebook API; the model, metric and decoding
functions below them are the library.
"""

from dlogp_jax.logprobs import pair_metrics, score_tokens, token_logprobs
from dlogp_jax.model.config import ModelConfig, preset
from dlogp_jax.model.hf_weights import CheckpointError, export_params, load_params, read_config
from dlogp_jax.model.kv_cache import KVCache, init_cache
from dlogp_jax.model.pair import ModelPair, load_pair
from dlogp_jax.model.tokenizer import load_tokenizer
from dlogp_jax.model.transformer import apply, hidden_states, init
from dlogp_jax.runs import (
    GradeSettings,
    PlotSettings,
    SampleSettings,
    ScoreSettings,
    TrainSettings,
    ViewSettings,
    grade,
    plot,
    sample,
    samples_to_score_rows,
    score,
    train,
    view,
)
from dlogp_jax.sampling import DecodeSpec, generate
from dlogp_jax.sharding import make_mesh

__all__ = [
    "CheckpointError",
    "DecodeSpec",
    "GradeSettings",
    "KVCache",
    "ModelConfig",
    "ModelPair",
    "PlotSettings",
    "SampleSettings",
    "ScoreSettings",
    "TrainSettings",
    "ViewSettings",
    "apply",
    "export_params",
    "generate",
    "grade",
    "hidden_states",
    "init",
    "init_cache",
    "load_pair",
    "load_params",
    "load_tokenizer",
    "make_mesh",
    "pair_metrics",
    "plot",
    "preset",
    "read_config",
    "sample",
    "samples_to_score_rows",
    "score",
    "score_tokens",
    "token_logprobs",
    "train",
    "view",
]
