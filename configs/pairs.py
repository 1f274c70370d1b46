"""`dlogp-pairs` configuration: `dlogp-sample` outputs -> one `dlogp-score` input with the exact
token ids, each sample labelled with the group (e.g. which model wrote it).

  dlogp-pairs --config=pairs --config.samples=runs/sample_base:base,runs/sample_rl:rl \
      --config.out=runs/responses.jsonl
  dlogp-score --config=score --config.base=DIR --config.rl=DIR --config.data=runs/responses.jsonl
"""

import ml_collections


def get_config(arg=None):
    del arg  # no presets
    c = ml_collections.ConfigDict()
    c.samples = ""  # comma-separated DIR:GROUP, each DIR a dlogp-sample output (run.json, samples)
    c.out = "runs/pairs.jsonl"  # the dlogp-score input to write (.jsonl)
    return c
