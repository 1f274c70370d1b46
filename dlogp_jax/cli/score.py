"""`dlogp-score`: per-token log p, entropy, Δlog p and KL (both ways) of text under one or two models.

  dlogp-score --config=configs/score.py --config.base=DIR --config.rl=DIR --config.data=FILE

The run and its outputs (tokens.parquet, summary.json, histograms.png) are `dlogp_jax.runs.score`.
"""

from __future__ import annotations

from pathlib import Path

from dlogp_jax import runs
from dlogp_jax.cli import common


def run(config) -> Path:
    """Scores `config.data` as `configs/score.py` describes; returns the output directory."""
    return runs.score(common.to_settings(runs.ScoreSettings, config))


def entry():
    common.run_app(run, "score")


if __name__ == "__main__":
    entry()
