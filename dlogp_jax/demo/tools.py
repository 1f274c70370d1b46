"""The demo's one door to the tools it drives: dlogp-sample, dlogp-score, dlogp-train's config.

Every call from the demo into the tools goes through this module, so the demo depends on the runs
layer (`dlogp_jax.runs`) in one place and never on the CLIs. The sample and score runs happen in
this process (their compiled programs are reused from run to run); dlogp-train runs as separate
processes (`rl_pool`), and only its config is built here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from dlogp_jax import runs
from dlogp_jax.runs import settings as run_settings


def sample(**fields: Any) -> None:
    """One dlogp-sample run (resuming its partial output in `fields["out"]`).

    Args:
      fields: `runs.SampleSettings` fields (base, rl, data, out, n, mode, ...); the others keep
        their defaults (those of configs/sample.py).
    """
    runs.sample(runs.from_dict(runs.SampleSettings, fields))


def score(**fields: Any) -> None:
    """One dlogp-score run; `fields` as for `sample` (`runs.ScoreSettings` fields)."""
    runs.score(runs.from_dict(runs.ScoreSettings, fields))


def samples_to_score_rows(sample_runs: list[tuple[Path, str]]) -> list[dict[str, Any]]:
    """dlogp-score input rows (exact prompt and response ids) from dlogp-sample outputs.

    Args:
      sample_runs: (dlogp-sample output directory, group name) pairs.
    Returns:
      rows {"prompt_ids", "response_ids", "group", "prompt_index", "sample_index"}.
    """
    return runs.samples_to_score_rows(sample_runs)


def train_config(fields: dict[str, Any], sections: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """dlogp-train's config (the `runs.TrainSettings` defaults, i.e. configs/dapo.py's) with these
    settings, validated, as the plain dict a dlogp-train process loads.

    Args:
      fields: top-level fields (workdir, init_from, data, ...).
      sections: {section name: its fields} (rollout, loss, optimizer, trainer, eval).
    """
    # The defaults field by field: TrainSettings() itself is refused (it has no data yet).
    defaults = {
        f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
        for f in dataclasses.fields(runs.TrainSettings)
    }
    config = {name: run_settings.config_dict(value) for name, value in defaults.items()}
    config.update(fields)
    for name, section in sections.items():
        config[name] = {**config[name], **section}
    return run_settings.config_dict(runs.from_dict(runs.TrainSettings, config))


def init_runtime(mesh: str) -> None:
    """The tools' start-up: quiet library logs, `jax.distributed` when configured, the mesh."""
    runs.init_runtime(mesh)


def is_writer() -> bool:
    """Only process 0 writes reports, logs and exports."""
    return runs.is_writer()


def local_path(path: str, field: str) -> str:
    """`path` when it is a local path; ends the program naming `field` for a URL (`gs://...`)."""
    if problems := run_settings.local_path_problems(path, field):
        fail(problems[0])
    return path


def fail(message: str) -> None:
    """Ends the program with one clear error line (no traceback) and exit status 1."""
    raise SystemExit(f"error: {message}")
