"""The demo world: a synthetic verifiable arithmetic task and a supervised trainer for its base model.

Facade: re-exports the public API; implementations live in the submodules.
"""

from dlogp_jax.world.build import WorldSettings, build_base, write_data
from dlogp_jax.world.sft import (
    accuracy_summary,
    evaluate_accuracy,
    response_nll,
    sample_responses,
    train_sft,
)  # fmt: skip
from dlogp_jax.world.task import (
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
)  # fmt: skip

__all__ = [
    "Chain", "Difficulty", "WorldSettings", "accuracy_summary", "build_base", "check",
    "evaluate_accuracy", "generate_splits", "parse_problem", "problem_text", "random_chain",
    "random_slip", "response_nll", "sample_responses", "solution_text", "train_sft",
    "write_data", "write_splits",
]  # fmt: skip
