"""`merge`: an ExPO checkpoint θ = θ_RL + α·(θ_RL − θ_base) as an HF directory (`dlogp-merge`).

Reads both checkpoints on the host (float32), checks that they share one architecture and one
tokenizer, writes `settings.out` (weights, config.json, the RL checkpoint's tokenizer) with
`hf_weights.export_params`, plus `merge.json` (base, rl, alpha, dtype). The output is an ordinary
checkpoint: `dlogp-sample --config.base=OUT` samples it, `dlogp-score` scores it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import ml_dtypes
import numpy as np
from absl import logging

from dlogp_jax import outputs
from dlogp_jax.errors import CheckpointError
from dlogp_jax.model import hf_weights
from dlogp_jax.model.merge import extrapolate_weights
from dlogp_jax.model.tokenizer import check_same_tokenizer, load_tokenizer
from dlogp_jax.runs.settings import MergeSettings

_DTYPES = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16, "float16": np.float16}


def merge(settings: MergeSettings) -> Path:
    """Writes the extrapolated checkpoint; returns its directory.

    Raises:
      CheckpointError: a bad directory, different tokenizers, or different architectures.
    """
    config_b = hf_weights.read_config(settings.base)
    config_r = hf_weights.read_config(settings.rl)
    if config_b != config_r:
        diff = {
            f.name: (getattr(config_b, f.name), getattr(config_r, f.name))
            for f in dataclasses.fields(config_b)
            if getattr(config_b, f.name) != getattr(config_r, f.name)
        }
        raise CheckpointError(
            f"the base and RL checkpoints differ in architecture {diff} (base, rl); ExPO needs "
            "one architecture."
        )
    tokenizer = load_tokenizer(settings.rl)
    check_same_tokenizer(load_tokenizer(settings.base), tokenizer)
    _, base = hf_weights.load_params(settings.base, config_b, dtype=np.float32)
    _, rl = hf_weights.load_params(settings.rl, config_r, dtype=np.float32)
    merged = extrapolate_weights(base, rl, settings.alpha)
    del base, rl
    out = hf_weights.export_params(
        settings.out, merged, config_r, tokenizer=tokenizer, dtype=_DTYPES[settings.dtype]
    )
    record = {"base": settings.base, "rl": settings.rl, "alpha": settings.alpha}
    outputs.write_json(out / "merge.json", {**record, "dtype": settings.dtype})
    logging.info("wrote θ_RL + %g·(θ_RL − θ_base) to %s", settings.alpha, out)
    return out
