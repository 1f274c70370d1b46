"""The runs: score, sample, train, grade and merge as functions of a frozen settings dataclass.

Each run owns its outputs (run files, resume, atomic writes, grading); the CLIs in `dlogp_jax.cli`
only turn a config into settings and call these. Facade: implementations live in the submodules;
the training sections that are library configs (`RolloutConfig`, `LossConfig`, `OptimizerConfig`)
are re-exported here so that one import builds any settings.
"""

from dlogp_jax.rl.dapo_loss import LossConfig
from dlogp_jax.rl.rollout import RolloutConfig
from dlogp_jax.rl.train_state import OptimizerConfig
from dlogp_jax.runs._grade import grade
from dlogp_jax.runs._merge import merge
from dlogp_jax.runs._pairs import pairs
from dlogp_jax.runs._plot import plot
from dlogp_jax.runs._sample import make_spec, sample, samples_to_score_rows
from dlogp_jax.runs._score import score, token_table
from dlogp_jax.runs._train import init_policy, train
from dlogp_jax.runs._view import view
from dlogp_jax.runs.plan import plan
from dlogp_jax.runs.runtime import init_runtime, is_writer
from dlogp_jax.runs.settings import (
    Distributed,
    EvalSettings,
    GradeSettings,
    LoggingSettings,
    MergeSettings,
    PairsSettings,
    PlotSettings,
    ProfileSettings,
    SampleSettings,
    ScoreSettings,
    TrainerSettings,
    TrainSettings,
    ViewSettings,
    config_dict,
    from_dict,
)

__all__ = [
    "Distributed",
    "EvalSettings",
    "GradeSettings",
    "LoggingSettings",
    "LossConfig",
    "MergeSettings",
    "OptimizerConfig",
    "PairsSettings",
    "PlotSettings",
    "ProfileSettings",
    "RolloutConfig",
    "SampleSettings",
    "ScoreSettings",
    "TrainSettings",
    "TrainerSettings",
    "ViewSettings",
    "config_dict",
    "from_dict",
    "grade",
    "init_policy",
    "init_runtime",
    "is_writer",
    "make_spec",
    "pairs",
    "plan",
    "merge",
    "plot",
    "sample",
    "samples_to_score_rows",
    "score",
    "token_table",
    "train",
    "view",
]
