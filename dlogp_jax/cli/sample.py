"""`dlogp-sample`: plain, selective-replacement and extrapolated decoding of a base/RL pair.

  dlogp-sample --config=configs/sample.py --config.base=DIR --config.rl=DIR --config.data=FILE \
      --config.mode=extrapolate --config.criterion=dlogp --config.threshold=-0.3 --config.gamma=0.05

The run and its resumable outputs (samples.jsonl, summary.json, run.json) are
`dlogp_jax.runs.sample`.
"""

from __future__ import annotations

from pathlib import Path

from dlogp_jax import runs
from dlogp_jax.cli import common


def run(config) -> Path:
    """Decodes `config.data` as `configs/sample.py` describes; returns the output directory."""
    return runs.sample(common.to_settings(runs.SampleSettings, config))


def entry():
    common.run_app(run, "sample")


if __name__ == "__main__":
    entry()
