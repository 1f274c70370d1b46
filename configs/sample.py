"""`dlogp-sample` configuration.

  dlogp-sample --config=configs/sample.py --config.base=DIR --config.rl=DIR --config.data=FILE \
      --config.mode=extrapolate --config.criterion=dlogp --config.threshold=-0.3 --config.gamma=0.05
  dlogp-sample --config=configs/sample.py:demo      # tiny checkpoints + prompts built on the spot
  dlogp-sample --config=configs/sample.py:paper     # the official run's sampling settings
"""

import ml_collections

from dlogp_jax.config_args import distributed, parse_arg


def get_config(arg=None):
    args = parse_arg(arg, demo=False, paper=False)
    c = ml_collections.ConfigDict()
    c.base = ""  # HF checkpoint directory of the base model (the driver)
    c.rl = ""  # HF checkpoint directory of the RL model (needed unless mode=single)
    c.data = ""  # .jsonl / .parquet with `prompt` (or `problem`) and optional `answer`
    c.out = "runs/sample"
    c.mode = "single"  # single | replace | extrapolate | extrapolate_all
    c.criterion = "dlogp"  # dlogp | entropy_base | entropy_rl | kl_rl_base | kl_base_rl | kl_sym | random | all | none
    c.threshold = -0.3  # τ: dlogp fires at Δlog p <= τ; entropy/KL at >= τ; random at U < τ
    c.gamma = 0.0  # γ of π_RL^(1+γ) / π_base^γ
    c.faithful = False  # the official top-K approximation instead of the exact full vocabulary
    c.faithful_top_k = 50
    c.temperature = 1.0  # 0 = greedy
    c.top_p = 1.0
    c.top_k = 0  # 0 = off
    c.max_new_tokens = 1024
    c.stop_tokens = ""  # comma-separated; "" = the tokenizer's eos + <|im_end|> + <|endoftext|>
    c.n = 4  # samples per prompt
    c.seed = 0
    c.chat_template = True  # one user turn in the tokenizer's chat template
    c.prompt_suffix = ""  # appended to each prompt before templating
    c.batch_prompts = 8  # prompts decoded together (batch = batch_prompts * n sequences)
    c.prompt_buckets = "64,128,256,512,1024,2048,4096"  # left-pad prompts to one of these lengths
    c.dtype = "float32"  # "bfloat16" on accelerators
    c.mesh = "fsdp:-1"
    c.grader_workers = 2  # processes running math-verify (0 = in process)
    c.demo = args.demo
    c.distributed = distributed()
    if args.paper:  # PAPER.md §4.1: T = 1, top-p 0.7, Qwen prompt suffix, n = 32
        c.top_p, c.n, c.max_new_tokens = 0.7, 32, 20000
        c.prompt_suffix = (
            "\nPlease reason step by step, and put your final answer within \\boxed{}."
        )
    if args.demo:
        c.out = "runs/sample_demo"
        c.mode, c.criterion, c.threshold, c.gamma = "extrapolate", "dlogp", -0.5, 0.1
        c.max_new_tokens, c.n, c.batch_prompts = 24, 2, 4
    return c
