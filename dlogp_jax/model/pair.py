"""Loading a base model and (optionally) an RL model that are scored or decoded together."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax.numpy as jnp

from dlogp_jax.errors import CheckpointError
from dlogp_jax.model import hf_weights
from dlogp_jax.model.config import ModelConfig
from dlogp_jax.model.tokenizer import check_same_tokenizer, load_tokenizer

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


@dataclasses.dataclass(frozen=True)
class ModelPair:
    """Base (and RL) params + configs sharing one tokenizer.

    Attributes:
      vocab_limit: len(tokenizer); embedding rows at or beyond it are padding, never sampled/scored.
    """

    config_base: ModelConfig
    params_base: Any
    tokenizer: Any
    vocab_limit: int
    config_rl: ModelConfig | None = None
    params_rl: Any = None

    @property
    def has_rl(self) -> bool:
        return self.params_rl is not None


def load_pair(base: str | Path, rl: str | Path | None = None, mesh=None, dtype: str = "float32"):
    """Loads `base` (and `rl`) checkpoint directories onto `mesh` in `dtype`.

    Args:
      base, rl: HF checkpoint directories; rl may be None/"" for one-model use.
      mesh: device mesh for the params (None: default device).
      dtype: "float32" or "bfloat16"/"float16": both the param and the compute dtype.
    Returns:
      ModelPair (config_rl and params_rl None without `rl`).
    Raises:
      CheckpointError: bad directory, different tokenizers, or a tokenizer larger than a model's
        embedding matrix.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r}: use one of {', '.join(DTYPES)}.")
    configs = {"base": hf_weights.read_config(base, dtype=dtype)}  # checks the directory first
    if rl:
        configs["rl"] = hf_weights.read_config(rl, dtype=dtype)
    tokenizer = load_tokenizer(base)
    vocab_limit = len(tokenizer)
    loaded = {}
    for name, path in (("base", base), ("rl", rl)):
        if not path:
            continue
        if name == "rl":
            check_same_tokenizer(tokenizer, load_tokenizer(path))
        config = configs[name]
        if config.vocab_size < vocab_limit:
            raise CheckpointError(
                f"{path}: the embedding has {config.vocab_size} rows but the tokenizer has "
                f"{vocab_limit} tokens; the checkpoint and its tokenizer do not belong together."
            )
        loaded[name] = hf_weights.load_params(path, config, mesh=mesh, dtype=DTYPES[dtype])
    (config_base, params_base) = loaded["base"]
    config_rl, params_rl = loaded.get("rl", (None, None))
    return ModelPair(
        config_base=config_base,
        params_base=params_base,
        tokenizer=tokenizer,
        vocab_limit=vocab_limit,
        config_rl=config_rl,
        params_rl=params_rl,
    )
