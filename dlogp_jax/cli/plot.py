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


def run(config, args: Sequence[str] = ()) -> list[Path]:
    """Writes the figures `configs/plot.py` describes; `args` = KIND DIR... (overrides kind and
    inputs). Returns the written files."""
    values = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    if args:
        if values.get("inputs"):
            common.fail("give the inputs either as words (dlogp-plot KIND DIR...) or in --config.")
        values.update(kind=args[0], inputs=",".join(args[1:]))
    return runs.plot(common.to_settings(runs.PlotSettings, values))


def entry():
    common.run_app(run, "plot", positional=True)


if __name__ == "__main__":
    entry()
