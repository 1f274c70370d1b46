"""`dlogp-merge`: weight-space extrapolation (ExPO) of a base/RL pair into an HF checkpoint.

  dlogp-merge --config=configs/merge.py --config.base=DIR --config.rl=DIR --config.alpha=0.3

The run and its output directory are `dlogp_jax.runs.merge`.
"""

from __future__ import annotations

from pathlib import Path

from dlogp_jax import runs
from dlogp_jax.cli import common


def run(config) -> Path:
    """Merges as `configs/merge.py` describes; returns the output directory."""
    return runs.merge(common.to_settings(runs.MergeSettings, config))


def entry():
    common.run_app(run, "merge")


if __name__ == "__main__":
    entry()
