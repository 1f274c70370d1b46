"""`dlogp-train` configuration: DAPO + probability-based token reweighting.

  dlogp-train --config=configs/dapo.py:tiny                 # CPU, ~1 minute, nothing to download
  dlogp-train --config=configs/dapo.py:qwen2p5_math_7b --config.init_from=/ckpt/Qwen2.5-Math-7B \
      --config.data=/data/dapo-math-17k.parquet --config.workdir=/gcs/bucket/runs/q7b
  dlogp-train --config=configs/dapo.py:qwen3_8b_base ...

Presets follow PAPER.md §5-6 (verl's DAPO recipe): lr 1e-6, 10 warmup steps, wd 0.1, clip 1.0,
ε 0.2/0.28, dual clip 10, token-mean, n = 16, 512 prompts per step in 16 mini-batches of 32 prompts,
gen batch 3x, overlong buffer 4096; reweighting `reshape_reversed` with c = 0.2 (7B) / 0.1 (8B).
Set `--config.loss.weight_method=none` for the DAPO baseline.
"""

import ml_collections

from dlogp_jax.config_args import distributed, parse_arg


def get_config(arg=None):
    args = parse_arg(arg, tiny=False, qwen2p5_math_7b=False, qwen3_8b_base=False)
    c = ml_collections.ConfigDict()
    c.workdir = "runs/dapo"
    c.init_from = ""  # HF checkpoint directory of the initial policy ("" = random tiny model)
    c.data = ""  # jsonl / parquet / save_to_disk dir (DAPO-Math-17k layout or problem/answer)
    c.toy_task = False  # use the built-in toy task instead of `data`
    c.chat_template = True
    c.prompt_format = "{content}"  # applied to the last user message
    c.max_prompt_len = 2048
    c.dtype = "float32"  # compute dtype ("bfloat16" on accelerators)
    c.param_dtype = "float32"  # master weights and AdamW state (keep fp32: lr 1e-6 steps)
    c.mesh = "fsdp:-1"
    c.reference = (
        False  # keep the initial policy to log Δlog p vs init (and k3 KL when kl_coef > 0)
    )
    c.total_steps = 100
    c.eval = ml_collections.ConfigDict(
        dict(
            data="",
            every=0,
            n=4,
            temperature=1.0,
            max_prompts=0,
            seed=1234,
        )
    )  # held-out Avg@n every `every` steps and at step 0 (data="" or every=0: off)

    c.rollout = ml_collections.ConfigDict(dict(
        n=16, train_prompts=512, gen_prompts=1536, max_gen_rounds=10, dynamic_sampling=True,
        temperature=1.0, top_p=1.0, max_response_len=8192, overlong_buffer=4096,
        overlong_factor=1.0, default_reward="dapo_answer",
        rewards_by_source="math_dapo:dapo_answer,aime:dapo_answer",
    ))  # fmt: skip
    c.loss = ml_collections.ConfigDict(dict(
        clip_low=0.2, clip_high=0.28, clip_dual=10.0, aggregation="token_mean",
        weight_method="reshape_reversed", weight_c=0.2, kl_coef=0.0,
    ))  # fmt: skip
    c.optimizer = ml_collections.ConfigDict(dict(
        lr=1e-6, warmup_steps=10, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.1, grad_clip=1.0,
    ))  # fmt: skip
    c.trainer = ml_collections.ConfigDict(dict(
        mini_batches=16, micro_batches=16, seed=0, save_every=10, keep_checkpoints=3,
        export_every=50, chunk_tokens=512, remat=True, grader_workers=8, log_every=1,
    ))  # trainer.eval_every is set from eval.every  # fmt: skip
    c.distributed = distributed()

    if args.qwen2p5_math_7b:  # 4 x v5p-16 class slice; response 8192
        c.dtype, c.mesh, c.workdir = "bfloat16", "fsdp:-1", "runs/dapo_qwen2p5_math_7b"
        c.rollout.max_response_len = 8192
        c.loss.weight_c = 0.2
    if args.qwen3_8b_base:  # response 20480, overlong penalty from 16384
        c.dtype, c.mesh, c.workdir = "bfloat16", "fsdp:-1", "runs/dapo_qwen3_8b_base"
        c.rollout.max_response_len = 20480
        c.loss.weight_c = 0.1
    if args.tiny:  # CPU smoke run: random tiny model, built-in toy task
        c.workdir, c.toy_task, c.total_steps, c.max_prompt_len = "runs/dapo_tiny", True, 20, 64
        c.rollout.update(n=8, train_prompts=4, gen_prompts=8, max_gen_rounds=4,
                         max_response_len=8, overlong_buffer=0, default_reward="toy_first_digit")  # fmt: skip
        c.optimizer.update(lr=3e-3, warmup_steps=2, weight_decay=0.0)
        c.trainer.update(mini_batches=2, micro_batches=1, save_every=5, export_every=0,
                         grader_workers=0, remat=False)  # fmt: skip
        c.reference = True
    return c
