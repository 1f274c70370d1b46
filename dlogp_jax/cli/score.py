"""`dlogp-score`: per-token log p, entropy, Δlog p and KL (both ways) of text under one or two models.

  dlogp-score --config=configs/score.py --config.base=DIR --config.rl=DIR --config.data=FILE

The run and its outputs (tokens.parquet, summary.json, histograms.png) are `dlogp_jax.runs.score`.
"""

from __future__ import annotations

from pathlib import Path

from dlogp_jax import runs
from dlogp_jax.cli import common


def settings(config) -> runs.ScoreSettings:
    """The validated `runs.ScoreSettings` of a config (bad fields end with one line)."""
    return common.to_settings(runs.ScoreSettings, config)


def run(config) -> Path:
    """Scores `config.data` as `configs/score.py` describes; returns the output directory."""
    return runs.score(settings(config))


def entry():
    common.run_app(run, "score", settings_fn=settings, doc=__doc__)


if __name__ == "__main__":
    entry()
