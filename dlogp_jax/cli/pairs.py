"""`dlogp-pairs`: dlogp-sample outputs -> one dlogp-score input with the exact token ids, by group.

  dlogp-pairs --config=pairs --config.samples=runs/sample_base:base,runs/sample_rl:rl \
      --config.out=runs/responses.jsonl

The rows and how the prompts are rebuilt are `dlogp_jax.runs.pairs`.
"""

from __future__ import annotations

from pathlib import Path

from dlogp_jax import runs
from dlogp_jax.cli import common


def settings(config) -> runs.PairsSettings:
    """The validated `runs.PairsSettings` of a config (bad fields end with one line)."""
    return common.to_settings(runs.PairsSettings, config)


def run(config) -> Path:
    """Writes the dlogp-score input `configs/pairs.py` describes; returns its path."""
    return runs.pairs(settings(config))


def entry():
    common.run_app(run, "pairs", settings_fn=settings, doc=__doc__)


if __name__ == "__main__":
    entry()
