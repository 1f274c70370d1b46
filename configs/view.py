"""`dlogp-view` configuration: one self-contained HTML page showing every response token coloured
by Δlog p (or entropy / KL), with both models' log-probs, alternatives and the sampler's choices.

  dlogp-view --config=configs/view.py --config.input=runs/score      # a dlogp-score output
  dlogp-view --config=configs/view.py --config.input=runs/replace    # a dlogp-sample output
"""

import ml_collections


def get_config(arg=None):
    del arg  # no presets
    c = ml_collections.ConfigDict()
    c.input = ""  # a dlogp-score output (tokens.parquet, summary.json) or dlogp-sample output
    c.out = ""  # the HTML file to write ("" = <input>/view.html)
    c.criterion = "dlogp"  # the threshold control's first metric (dlogp, entropy_*, kl_*)
    c.threshold = -0.3  # its first τ: dlogp selects Δlog p <= τ, entropy and KL >= τ
    c.tokenizer = ""  # checkpoint whose tokenizer decodes a sample output ("" = run.json's base)
    c.title = ""  # page title ("" = the input directory)
    c.max_responses = 0  # keep the first N responses (0 = all; a huge page loads slowly)
    return c
