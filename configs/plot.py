"""`dlogp-plot` configuration: the paper's figures from finished runs, as PNG, PDF and SVG.

  dlogp-plot train RUN...                       # training curves (Fig. 5 layout), one line per run
  dlogp-plot sample OUT...                      # accuracy vs replacement rate (Fig. 1c/2), bars (Fig. 4)
  dlogp-plot --config=configs/plot.py --config.kind=train --config.inputs=runs/a,runs/b \
      --config.out=figures --config.labels=DAPO,weighted
"""

import ml_collections


def get_config(arg=None):
    del arg  # no presets
    c = ml_collections.ConfigDict()
    c.kind = "train"  # train: dlogp-train workdirs; sample: dlogp-sample output directories
    c.inputs = (
        ""  # comma-separated run / output directories (or positional: dlogp-plot KIND DIR...)
    )
    c.labels = ""  # comma-separated legend labels, one per input ("" = the directory names)
    c.out = ""  # directory of the figures ("" = the input, when there is one)
    c.formats = "png,pdf,svg"  # any of png, pdf, svg
    c.metrics = ""  # train: comma-separated metrics.jsonl keys to plot ("" = the usual set)
    c.title = ""  # figure title ("" = none)
    c.dpi = 150  # PNG resolution
    return c
