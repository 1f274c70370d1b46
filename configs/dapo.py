"""`dlogp-train` configuration: DAPO + probability-based token reweighting (docs/method.md §4).

  dlogp-train --config=configs/dapo.py:tiny                 # CPU, ~1 minute, nothing to download
  dlogp-train --config=configs/dapo.py:qwen2p5_math_7b --config.init_from=/ckpt/Qwen2.5-Math-7B \
      --config.data=/data/dapo-math-17k.parquet --config.workdir=/gcs/bucket/runs/q7b
  dlogp-train --config=configs/dapo.py:qwen3_8b_base ...

Presets follow docs/method.md §4 (verl's DAPO recipe): lr 1e-6, 10 warmup steps, wd 0.1, clip
1.0, ε 0.2/0.28, dual clip 10, token-mean, n = 16, 512 prompts per step in 16 mini-batches of 32
prompts, gen batch 3x, overlong buffer 4096; reweighting `reshape_reversed` with c = 0.2 (7B) /
0.1 (8B).
Set `--config.loss.weight_method=none` for the DAPO baseline.
"""

import ml_collections

from dlogp_jax.config_args import distributed, parse_arg


def get_config(arg=None):
    args = parse_arg(arg, tiny=False, qwen2p5_math_7b=False, qwen3_8b_base=False)
    c = ml_collections.ConfigDict()

    # Policy, data and layout.
    c.workdir = "runs/dapo"  # checkpoints/, metrics.jsonl, tb/, hf/, config.json; re-run resumes
    c.init_from = ""  # HF checkpoint directory of the initial policy ("" = random tiny model)
    c.data = ""  # jsonl / parquet / save_to_disk dir (DAPO-Math-17k layout or problem/answer)
    c.toy_task = False  # use the built-in toy task instead of `data`
    c.chat_template = True  # render prompts with the tokenizer's chat template
    c.prompt_format = "{content}"  # applied to the last user message
    c.max_prompt_len = 2048  # tokens; longer prompts are refused (the paper: 2048)
    c.dtype = "float32"  # compute dtype ("bfloat16" on accelerators)
    c.param_dtype = "float32"  # master weights and AdamW state (keep fp32: lr 1e-6 steps)
    c.export_dtype = "bfloat16"  # HF exports (hf/): bfloat16 to serve (vllm serve) | float32 exact
    c.hub_repo = ""  # upload hf/final to this HF Hub repo after training ("" = off; needs a token)
    c.hub_private = True  # create the hub repo private (an existing repo keeps its visibility)
    c.mesh = "fsdp:-1"  # device mesh, axis:size with -1 = the rest, e.g. "fsdp:8,tensor:4"
    c.reference = (
        False  # keep the initial policy to log Δlog p vs init (and k3 KL when kl_coef > 0)
    )
    c.total_steps = 100  # training steps (the paper's curves stop at about 250)

    # Held-out Avg@n every `every` steps and at step 0 (data="" or every=0: off).
    c.eval = ml_collections.ConfigDict()
    c.eval.data = ""  # held-out prompts with answers (e.g. AIME 2024), same layouts as `data`
    c.eval.every = 0  # training steps between evaluations (verl: 5); 0 = off
    c.eval.n = 4  # samples per prompt (Avg@n; the paper: 32)
    c.eval.temperature = 1.0  # sampling temperature of the evaluation (the official val: 1.0)
    c.eval.top_p = 0.7  # nucleus mass of the evaluation (the official val_top_p: 0.7)
    # by_source: each row's rollout reward (DAPO `Answer:` matching for math_dapo / aime rows);
    # "accuracy" (last box, else Answer: line, math-verify) or a reward name for every row.
    c.eval.reward = "by_source"
    c.eval.max_prompts = 0  # evaluate the first this many prompts; 0 = all
    c.eval.seed = 1234  # generation seed, fixed across evaluations so curves compare like with like

    # Rollouts and rewards (docs/method.md §4).
    c.rollout = ml_collections.ConfigDict()
    c.rollout.n = 16  # responses per prompt: the GRPO group size (the paper: 16)
    c.rollout.train_prompts = 512  # groups per training step (verl train_batch_size: 512)
    c.rollout.gen_prompts = 1536  # prompts per generation round (verl gen_batch_size: 3 x 512)
    c.rollout.max_gen_rounds = 10  # rounds per step before giving up on filling train_prompts
    c.rollout.dynamic_sampling = True  # keep only groups whose accuracy varies (DAPO)
    c.rollout.temperature = 1.0  # sampling temperature of the rollouts (the paper: 1.0)
    c.rollout.top_p = 1.0  # nucleus mass of the rollouts (the paper: 1.0)
    c.rollout.max_response_len = 8192  # tokens (the paper: 8192 for 7B, 20480 for 8B)
    c.rollout.overlong_buffer = 4096  # penalty from max_response_len - this many tokens; 0 = off
    c.rollout.overlong_factor = 1.0  # the overlong penalty at max_response_len is -factor
    c.rollout.default_reward = "dapo_answer"  # reward (rewards.REWARDS) of unlisted data sources
    # data_source prefix -> reward, "prefix:reward,..." (verl grades math_dapo and aime* alike).
    c.rollout.rewards_by_source = "math_dapo:dapo_answer,aime:dapo_answer"
    # Dynamic sampling short of train_prompts after max_gen_rounds: "fail" (stop the run) or
    # "train" on the groups it has (none: the step makes no update), with a warning.
    c.rollout.unfilled = "fail"
    # Decoder of rollouts and evaluation (as dlogp-sample's; README "Sampling engine").
    c.rollout.engine = "paged"  # paged (continuous batching over KV pages) | static
    c.rollout.kv_pages = 0  # KV pages per model; 0 = auto: 1/2 of the free device memory
    c.rollout.page_size = 16  # tokens per KV page
    c.rollout.max_seqs = 0  # sequences decoded together; 0 = auto: min(queued, 256; CPU 64)

    # Policy loss and token weights (docs/method.md §4).
    c.loss = ml_collections.ConfigDict()
    c.loss.clip_low = 0.2  # ε_low of clip-higher: ratio >= 1 - ε_low
    c.loss.clip_high = 0.28  # ε_high of clip-higher: ratio <= 1 + ε_high
    c.loss.clip_dual = 10.0  # dual clip: negative-advantage losses bounded by clip_dual * |A|
    c.loss.aggregation = "token_mean"  # token_mean | seq_mean_token_mean | seq_mean_token_sum
    # Advantage weights from p_old: reshape_reversed (the paper's) | reshape | focal | none (DAPO).
    c.loss.weight_method = "reshape_reversed"
    c.loss.weight_c = 0.2  # c of the weights (the paper: 0.2 for 7B, 0.1 for 8B)
    c.loss.kl_coef = 0.0  # k3 KL to the initial policy; 0 = off (DAPO)

    # AdamW (docs/method.md §4).
    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.lr = 1e-6  # peak learning rate (the paper: 1e-6)
    c.optimizer.warmup_steps = 10  # training steps of linear warmup, then constant (the paper: 10)
    c.optimizer.b1 = 0.9  # Adam β1
    c.optimizer.b2 = 0.999  # Adam β2
    c.optimizer.eps = 1e-8  # Adam ε
    c.optimizer.weight_decay = 0.1  # decoupled weight decay (the paper: 0.1)
    c.optimizer.grad_clip = 1.0  # global gradient-norm clip (the paper: 1.0)

    # The step loop (trainer.eval_every is set from eval.every).
    c.trainer = ml_collections.ConfigDict()
    c.trainer.mini_batches = 16  # optimizer updates per training step (the paper: 16 x 32 prompts)
    c.trainer.micro_batches = 16  # gradient-accumulation slices of each mini-batch (memory knob)
    c.trainer.seed = 0  # data order, generation seeds and random init
    c.trainer.save_every = 10  # training steps between checkpoints
    c.trainer.keep_checkpoints = 3  # newest checkpoints kept
    c.trainer.export_every = 50  # training steps between HF exports; 0 = only at the end
    c.trainer.chunk_tokens = 512  # tokens projected to the vocabulary at once (memory knob)
    c.trainer.remat = True  # recompute activations in the backward pass (memory knob)
    c.trainer.grader_workers = 8  # processes grading rollouts (0 = in process)
    c.trainer.log_every = 1  # training steps between progress lines
    # jax.profiler trace of steps start_step .. start_step + num_steps - 1 into tb/ (docs/operators.md).
    c.profile = ml_collections.ConfigDict()
    c.profile.start_step = (
        0  # first traced training step (1-based; 1 includes compilation); 0 = off
    )
    c.profile.num_steps = 2  # training steps traced from start_step

    # Metrics besides metrics.jsonl and tb/: Weights & Biases (docs/operators.md has the tags).
    c.logging = ml_collections.ConfigDict()
    c.logging.wandb = False  # log to W&B too (pip install 'dlogp_jax[wandb]'); process 0 only
    c.logging.wandb_project = "dlogp_jax"  # W&B project
    c.logging.wandb_entity = ""  # W&B team or user ("" = your default entity)
    c.logging.wandb_run_name = ""  # W&B run name ("" = the workdir's name)
    c.logging.wandb_mode = "offline"  # offline (no network; `wandb sync` later) | online | disabled
    c.distributed = distributed()  # multi-host settings (config_args.distributed)

    if args.qwen2p5_math_7b:  # 4 x v5p-16 class slice; response 8192
        c.dtype = "bfloat16"
        c.mesh = "fsdp:-1"
        c.workdir = "runs/dapo_qwen2p5_math_7b"
        c.rollout.max_response_len = 8192
        c.loss.weight_c = 0.2
    if args.qwen3_8b_base:  # response 20480, overlong penalty from 16384
        c.dtype = "bfloat16"
        c.mesh = "fsdp:-1"
        c.workdir = "runs/dapo_qwen3_8b_base"
        c.rollout.max_response_len = 20480
        c.loss.weight_c = 0.1
    if args.tiny:  # CPU smoke run: random tiny model, built-in toy task
        c.workdir = "runs/dapo_tiny"
        c.toy_task = True
        c.total_steps = 20
        c.max_prompt_len = 64
        c.rollout.n = 8
        c.rollout.train_prompts = 4
        c.rollout.gen_prompts = 8
        c.rollout.max_gen_rounds = 4
        c.rollout.max_response_len = 8
        c.rollout.overlong_buffer = 0
        c.rollout.default_reward = "toy_first_digit"
        c.rollout.unfilled = "train"  # a learned toy task leaves few informative groups
        c.optimizer.lr = 3e-3
        c.optimizer.warmup_steps = 2
        c.optimizer.weight_decay = 0.0
        c.trainer.mini_batches = 2
        c.trainer.micro_batches = 1
        c.trainer.save_every = 5
        c.trainer.export_every = 0
        c.trainer.grader_workers = 0
        c.trainer.remat = False
        c.reference = True
    return c
