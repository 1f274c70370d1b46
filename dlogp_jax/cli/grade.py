"""`dlogp-grade`: grade responses from any engine against their answers.

  dlogp-grade --config=configs/grade.py --config.data=FILE --config.grader=boxed_math_verify

The run and its outputs (graded.jsonl, summary.json: Avg@n with a t-interval, pass@k, maj@k,
timeouts) are `dlogp_jax.runs.grade`.
"""

from __future__ import annotations

from pathlib import Path

from dlogp_jax import runs
from dlogp_jax.cli import common


def settings(config) -> runs.GradeSettings:
    """The validated `runs.GradeSettings` of a config (bad fields end with one line)."""
    return common.to_settings(runs.GradeSettings, config)


def run(config) -> Path:
    """Grades `config.data` as `configs/grade.py` describes; returns the output directory."""
    return runs.grade(settings(config))


def entry():
    common.run_app(run, "grade", settings_fn=settings, doc=__doc__)


if __name__ == "__main__":
    entry()
