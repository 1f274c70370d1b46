"""`dlogp-train`: DAPO with probability-based token weights, sharded and preemption-safe.

  dlogp-train --config=configs/dapo.py:tiny                 # CPU, ~1 minute, nothing to download

Exit status: 0 done, 1 a user error (one line), 75 stopped by SIGTERM / SIGINT after saving (re-run
to resume). The run and its work directory (checkpoints, metrics, HF exports; resumed on re-run) are
`dlogp_jax.runs.train`.
"""

from __future__ import annotations

from dlogp_jax import runs
from dlogp_jax.cli import common
from dlogp_jax.rl.rollout import NotEnoughGroups
from dlogp_jax.rl.train_state import TrainState
from dlogp_jax.rl.trainer import EXIT_INTERRUPTED


def run(config) -> TrainState:
    """Trains as `configs/dapo.py` describes; returns the final TrainState."""
    return runs.train(common.to_settings(runs.TrainSettings, config))


def main(config) -> None:
    """`run`, then exit status `trainer.EXIT_INTERRUPTED` (75) when SIGTERM / SIGINT stopped the
    run before `total_steps` (it saved; a scheduler should retry: a re-run resumes)."""
    state = run(config)
    if int(state.step) < config.total_steps:
        raise SystemExit(EXIT_INTERRUPTED)


def entry():
    common.run_app(main, "dapo", (NotEnoughGroups,))


if __name__ == "__main__":
    entry()
