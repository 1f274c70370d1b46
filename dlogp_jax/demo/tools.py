"""The demo's one door to the tools it drives: dlogp-sample, dlogp-score, dlogp-train's config.

Every call from the demo into the tools' code goes through this module, so the demo depends on the
tools' Python API in one place. The sample and score runs happen in this process (their compiled
programs are reused from run to run); dlogp-train runs as separate processes (`rl_pool`), and only
its config is built here.

For now the tools are reached through their CLI modules (`dlogp_jax.cli.sample.run(config)` and
friends, with `configs/<tool>.py`'s defaults); the rest of the demo passes plain fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ml_collections

from dlogp_jax.cli import common
from dlogp_jax.cli import sample as cli_sample
from dlogp_jax.cli import score as cli_score


def _config(tool: str, fields: dict[str, Any]) -> ml_collections.ConfigDict:
    """`configs/<tool>.py`'s default config with `fields` set."""
    config = common.load_config(tool)
    config.update(**fields)
    return config


def sample(**fields: Any) -> None:
    """One dlogp-sample run (resuming its partial output in `fields["out"]`).

    Args:
      fields: dlogp-sample settings (configs/sample.py names: base, rl, data, out, n, mode, ...);
        the others keep their defaults.
    """
    cli_sample.run(_config("sample", fields))


def score(**fields: Any) -> None:
    """One dlogp-score run; `fields` as for `sample` (configs/score.py names)."""
    cli_score.run(_config("score", fields))


def samples_to_score_rows(runs: list[tuple[Path, str]]) -> list[dict[str, Any]]:
    """dlogp-score input rows (exact prompt and response ids) from dlogp-sample outputs.

    Args:
      runs: (dlogp-sample output directory, group name) pairs.
    Returns:
      rows {"prompt_ids", "response_ids", "group", "prompt_index", "sample_index"}.
    """
    return cli_sample.samples_to_score_rows(runs)


def train_config(fields: dict[str, Any], sections: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """dlogp-train's config (configs/dapo.py's defaults) with these settings, as a plain dict.

    Args:
      fields: top-level fields (workdir, init_from, data, ...).
      sections: {section name: its fields} (rollout, loss, optimizer, trainer, eval).
    """
    config = _config("dapo", fields)
    for name, section in sections.items():
        config[name].update(**section)
    return config.to_dict()


def init_runtime(mesh: str) -> None:
    """The tools' start-up: quiet library logs, `jax.distributed` when configured, the mesh."""
    common.init_runtime(ml_collections.ConfigDict({"mesh": mesh}))


def is_writer() -> bool:
    """Only process 0 writes reports, logs and exports."""
    return common.is_writer()


def local_path(path: str, field: str) -> str:
    """`path` when it is a local path; ends the program naming `field` for a URL (`gs://...`)."""
    return common.local_path(path, field)


def fail(message: str) -> None:
    """Ends the program with one clear error line (no traceback) and exit status 1."""
    common.fail(message)
