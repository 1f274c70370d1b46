"""`dlogp-score` configuration: per-token log p, entropy, Δlog p and KL of text under one or two
models (exact, full vocabulary, temperature 1: docs/method.md §1).

  dlogp-score --config=configs/score.py --config.base=DIR --config.rl=DIR --config.data=FILE \
      --config.out=DIR
  dlogp-score --config=configs/score.py:demo     # tiny checkpoints + data built on the spot
"""

import ml_collections

from dlogp_jax.config_args import distributed, parse_arg


def get_config(arg=None):
    args = parse_arg(arg, demo=False)
    c = ml_collections.ConfigDict()

    # Inputs and outputs.
    c.base = ""  # HF checkpoint directory of the base model
    c.rl = ""  # HF checkpoint directory of the RL model ("" = score the base model alone)
    c.data = ""  # .jsonl / .parquet: prompt+response text, or prompt_ids+response_ids
    c.out = "runs/score"  # output directory (tokens.parquet, summary.json, histograms.png)
    c.chat_template = False  # wrap `prompt` in the tokenizer's chat template (one user turn)
    # Whose chat template: base | rl (the official runs) | "" (the base's; refused if they differ).
    c.template_from = ""

    # Numerics and layout.
    c.dtype = "float32"  # params and compute: float32 | bfloat16 (on accelerators) | float16
    c.mesh = "fsdp:-1"  # device mesh, axis:size with -1 = the rest, e.g. "data:2,fsdp:2,tensor:2"
    c.batch_size = 8  # rows scored together (length-sorted batches)
    c.length_bucket = 64  # pad lengths to multiples of this many tokens (fewer recompilations)
    c.chunk_tokens = 1024  # tokens projected to the vocabulary at once (memory knob)
    c.max_length = 16384  # prompt + response tokens at most; longer rows are refused

    # Report.
    c.top_k = 20  # most negative / positive Δlog p tokens listed in summary.json
    c.top_alternatives = 0  # each model's K most probable tokens per position (dlogp-view: 5)
    c.demo = args.demo  # build tiny checkpoints and data under `out` first
    c.distributed = distributed()  # multi-host settings (config_args.distributed)

    if args.demo:
        c.out = "runs/score_demo"
    return c
