"""`dlogp-merge` configuration: weight-space extrapolation (ExPO), θ = θ_RL + α·(θ_RL − θ_base),
written as an HF checkpoint directory to sample and score like any other (docs/method.md §3, §6).

  dlogp-merge --config=configs/merge.py --config.base=/ckpt/Qwen2.5-32B \
      --config.rl=/ckpt/DAPO-Qwen-32B --config.alpha=0.3 --config.out=/ckpt/expo_0.3
  dlogp-sample --config=configs/sample.py:paper --config.base=/ckpt/expo_0.3 --config.data=...
"""

import ml_collections


def get_config(arg=None):
    c = ml_collections.ConfigDict()
    c.base = ""  # HF checkpoint directory of the base model
    c.rl = ""  # HF checkpoint directory of the RL model (same architecture and tokenizer)
    c.out = "runs/merge"  # output HF directory (weights, config.json, tokenizer, merge.json)
    c.alpha = 0.3  # α of θ_RL + α(θ_RL − θ_base): 0 = the RL model, > 0 extrapolates past it
    c.dtype = "bfloat16"  # dtype of the written weights: float32 | bfloat16 | float16
    return c
