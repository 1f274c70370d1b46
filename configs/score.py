"""`dlogp-score` configuration.

  dlogp-score --config=configs/score.py --config.base=DIR --config.rl=DIR --config.data=FILE \
      --config.out=DIR
  dlogp-score --config=configs/score.py:demo     # tiny checkpoints + data built on the spot
"""

import ml_collections

from dlogp_jax.config_args import distributed, parse_arg


def get_config(arg=None):
    args = parse_arg(arg, demo=False)
    c = ml_collections.ConfigDict()
    c.base = ""  # HF checkpoint directory of the base model
    c.rl = ""  # HF checkpoint directory of the RL model ("" = score the base model alone)
    c.data = ""  # .jsonl / .parquet: prompt+response text, or prompt_ids+response_ids
    c.out = "runs/score"
    c.chat_template = False  # wrap `prompt` in the tokenizer's chat template (one user turn)
    c.dtype = "float32"  # "bfloat16" on accelerators
    c.mesh = "fsdp:-1"  # e.g. "data:2,fsdp:2,tensor:2"
    c.batch_size = 8
    c.length_bucket = 64  # pad lengths to multiples of this (fewer recompilations)
    c.chunk_tokens = 1024  # tokens projected to the vocabulary at once (memory knob)
    c.max_length = 16384  # longer rows are refused
    c.top_k = 20  # most negative / positive Δlog p tokens listed in summary.json
    c.demo = args.demo  # build tiny checkpoints and data under `out` first
    c.distributed = distributed()
    if args.demo:
        c.out = "runs/score_demo"
    return c
