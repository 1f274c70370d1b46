"""dlogp-demo as a package: an embedded world, the pipeline over it, its stage cache and report.

The world (`task`, `sft`, `build`) is a synthetic verifiable arithmetic task and a tiny base model
trained on it; the pipeline (`pipeline`, with `rl_pool` and `experiments`) runs the paper's four
experiments on it (docs/method.md §5) through the sample / score / train tools (`tools`), with the
deviations of docs/method.md §6. From Python:

    from dlogp_jax import demo
    demo.run(demo.DemoSettings(workdir="runs/demo"))

Facade: re-exports the public API; implementations live in the submodules.
"""

from dlogp_jax.demo.build import build_base, write_data
from dlogp_jax.demo.pipeline import run
from dlogp_jax.demo.settings import DemoSettings, ExpSettings, RLSettings, WorldSettings
from dlogp_jax.demo.sft import (
    accuracy_summary,
    evaluate_accuracy,
    response_nll,
    sample_responses,
    train_sft,
)
from dlogp_jax.demo.task import (
    Chain,
    Difficulty,
    check,
    generate_splits,
    parse_problem,
    problem_text,
    random_chain,
    random_slip,
    solution_text,
    write_splits,
)

__all__ = [
    "Chain",
    "DemoSettings",
    "Difficulty",
    "ExpSettings",
    "RLSettings",
    "WorldSettings",
    "accuracy_summary",
    "build_base",
    "check",
    "evaluate_accuracy",
    "generate_splits",
    "parse_problem",
    "problem_text",
    "random_chain",
    "random_slip",
    "response_nll",
    "run",
    "sample_responses",
    "solution_text",
    "train_sft",
    "write_data",
    "write_splits",
]
