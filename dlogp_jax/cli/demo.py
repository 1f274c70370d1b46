"""`dlogp-demo`: the paper's four findings end to end on a laptop CPU (see `dlogp_jax.demo`).

  dlogp-demo --config=configs/demo.py:smoke --config.workdir=runs/demo_smoke

The config (configs/demo.py) becomes a `DemoSettings`, checked before anything is written; the
pipeline is `dlogp_jax.demo.run`.
"""

from __future__ import annotations

from pathlib import Path

from dlogp_jax import demo
from dlogp_jax.cli import common


def run(config) -> Path:
    """Runs the demo with a `configs/demo.py` ConfigDict; returns the work directory.

    Raises:
      ValueError naming each bad field (nothing is written then).
    """
    return demo.run(settings(config))


def settings(config) -> demo.DemoSettings:
    """The validated `DemoSettings` of a `configs/demo.py` ConfigDict."""
    return demo.DemoSettings.from_dict(config.to_dict())


def entry():
    common.run_app(run, "demo", settings_fn=settings, doc=__doc__)


if __name__ == "__main__":
    entry()
