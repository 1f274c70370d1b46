"""`dlogp-train`: DAPO with probability-based token weights, sharded and preemption-safe.

  dlogp-train --config=configs/dapo.py:tiny                 # CPU, ~1 minute, nothing to download

The run and its work directory (checkpoints, metrics, HF exports; resumed on re-run) are
`dlogp_jax.runs.train`.
"""

from __future__ import annotations

from dlogp_jax import runs
from dlogp_jax.cli import common
from dlogp_jax.rl.rollout import NotEnoughGroups
from dlogp_jax.rl.train_state import TrainState


def settings(config) -> runs.TrainSettings:
    """The validated `runs.TrainSettings` of a config (bad fields end with one line)."""
    return common.to_settings(runs.TrainSettings, config)


def run(config) -> TrainState:
    """Trains as `configs/dapo.py` describes; returns the final TrainState."""
    return runs.train(settings(config))


def entry():
    common.run_app(run, "dapo", (NotEnoughGroups,), settings_fn=settings, doc=__doc__)


if __name__ == "__main__":
    entry()
