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


def settings(config) -> runs.SampleSettings:
    """The validated `runs.SampleSettings` of a config (bad fields end with one line)."""
    return common.to_settings(runs.SampleSettings, config)


def run(config) -> Path:
    """Decodes `config.data` as `configs/sample.py` describes; returns the output directory."""
    return runs.sample(settings(config))


def entry():
    common.run_app(run, "sample", settings_fn=settings, doc=__doc__)


if __name__ == "__main__":
    entry()
