"""`dlogp-view`: one self-contained HTML page of a dlogp-score or dlogp-sample output's tokens.

  dlogp-view --config=configs/view.py --config.input=runs/score [--config.out=view.html]

The page and its checks are `dlogp_jax.runs.view`.
"""

from __future__ import annotations

from pathlib import Path

from dlogp_jax import runs
from dlogp_jax.cli import common


def settings(config) -> runs.ViewSettings:
    """The validated `runs.ViewSettings` of a config (bad fields end with one line)."""
    return common.to_settings(runs.ViewSettings, config)


def run(config) -> Path:
    """Writes the viewer of `config.input` as `configs/view.py` describes; returns the HTML path."""
    return runs.view(settings(config))


def entry():
    common.run_app(run, "view", settings_fn=settings, doc=__doc__)


if __name__ == "__main__":
    entry()
