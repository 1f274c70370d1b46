"""`dlogp-plot`: the paper's figures from finished runs, as PNG, PDF and SVG.

  dlogp-plot train RUN...     # training curves of dlogp-train workdirs (Fig. 5 layout)
  dlogp-plot sample OUT...    # accuracy vs replacement rate (Fig. 1c / 2) and per setting (Fig. 4)
  dlogp-plot --config=configs/plot.py --config.kind=train --config.inputs=a,b --config.out=figs

The figures and their checks are `dlogp_jax.runs.plot`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dlogp_jax import runs
from dlogp_jax.cli import common


def settings(config, args: Sequence[str] = ()) -> runs.PlotSettings:
    """The validated `runs.PlotSettings` of a config and the words KIND DIR... (which override
    kind and inputs)."""
    values = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    if args:
        if values.get("inputs"):
            common.fail("give the inputs either as words (dlogp-plot KIND DIR...) or in --config.")
        values.update(kind=args[0], inputs=",".join(args[1:]))
    return common.to_settings(runs.PlotSettings, values)


def run(config, args: Sequence[str] = ()) -> list[Path]:
    """Writes the figures `configs/plot.py` describes; `args` = KIND DIR... (overrides kind and
    inputs). Returns the written files."""
    return runs.plot(settings(config, args))


def entry():
    common.run_app(run, "plot", positional=True, settings_fn=settings, doc=__doc__)


if __name__ == "__main__":
    entry()
