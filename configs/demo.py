"""`dlogp-demo` configuration: the paper's four findings, end to end, in a world built on the spot.

  dlogp-demo                                        # default: <= 20 minutes on a 2-core CPU
  dlogp-demo --config=configs/demo.py:smoke         # tiny everything (CI), ~3 minutes
  dlogp-demo --config.workdir=runs/demo2 --config.stages=world,direction   # some stages only

Stages (each cached in the work directory; a re-run skips finished stages, a killed run resumes):
  world          task splits (parquet via `datasets`), char tokenizer, SFT'd base model
  rl             DAPO runs (`dlogp-train`) for every weighting method x seed
  direction      experiment 1: Δlog p / entropy / KL histograms on base and RL generations
  replacement    experiment 2: accuracy vs replacement rate per criterion (`dlogp-sample`)
  extrapolation  experiment 3: selective extrapolation over γ and τ grids, extrapolate_all
  reweighting    experiment 4: test accuracy over training steps per weighting method
  report         report.md, results.json, figures
A stage runs the stages it needs first (or reuses them). `stages` limits which experiments run.

The RL settings were chosen on the validation rows (the first `world.n_val` training rows, which
neither SFT nor RL trains on); the test split is only measured. Where the demo departs from the
paper's settings, and why: docs/method.md §6.
"""

import ml_collections

from dlogp_jax.config_args import parse_arg

STAGES = "world,rl,direction,replacement,extrapolation,reweighting,report"


def get_config(arg=None):
    args = parse_arg(arg, smoke=False)
    c = ml_collections.ConfigDict()
    c.workdir = "runs/demo"  # every stage's output, its cache (stages/) and the report
    c.stages = STAGES  # comma-separated subset (dependencies run or are reused automatically)
    c.mesh = "fsdp:-1"  # device mesh of every tool run, axis:size with -1 = the rest
    c.xla_cache = True  # jax compilation cache in workdir/xla_cache (shared with dlogp-train)

    # The world: task, tokenizer and SFT'd base (the flat fields of dlogp_jax.demo.WorldSettings).
    c.world = ml_collections.ConfigDict()
    c.world.seed = 0  # task split seed; also the SFT init/data seed
    c.world.n_train = 20_000  # training rows (the first n_val are held out as validation rows)
    c.world.n_val = 256  # validation rows: tune settings here, never trained on
    c.world.n_test = 256  # test rows: only measured
    c.world.min_steps = 2  # operations per problem, at least
    c.world.max_steps = 4  # operations per problem, at most
    c.world.max_value = 99  # every value of a correct chain lies in [0, max_value]
    c.world.max_operand = 9  # largest operand of + and -
    c.world.max_factor = 3  # largest factor of * (factors start at 2)
    c.world.hidden_size = 64  # D of the tiny Qwen2 base model
    c.world.num_layers = 2  # transformer blocks
    c.world.intermediate_size = 256  # F, the MLP width
    c.world.num_heads = 4  # query heads
    c.world.num_kv_heads = 2  # key/value heads (GQA)
    c.world.steps = 1500  # SFT steps
    c.world.batch_size = 32  # SFT sequences per step
    c.world.lr = 5e-3  # SFT peak learning rate (warmup, cosine decay to 10%)
    c.world.slip_prob = 0.85  # fraction of SFT traces with one arithmetic slip (after the ramp)
    c.world.slip_ramp_frac = 0.5  # fraction of SFT steps over which the slip fraction rises from 0
    c.world.eval_n = 8  # samples per problem of the base model's Avg@n (temperature 1)
    c.world.max_new_tokens = 64  # response length limit of every sampling run, in tokens

    # RL: one dlogp-train run per (method, seed); `methods[0]` seed `seeds[0]` is "the RL model"
    # of experiments 1-3. Settings tuned on the validation rows (see the module docstring).
    c.rl = ml_collections.ConfigDict()
    c.rl.methods = "none,reshape_reversed,reshape"  # token weights compared (loss.weight_method)
    c.rl.seeds = "0,1,2"  # training seeds per method
    c.rl.weight_c = 0.2  # c of reshape_reversed / focal (the paper: 0.2 for 7B)
    c.rl.reshape_c = 0.2  # c of reshape (the "over-dominate" baseline)
    c.rl.steps = 16  # training steps per run
    c.rl.lr = 1e-3  # peak learning rate (tiny model: far above the paper's 1e-6)
    c.rl.b2 = 0.99  # Adam β2
    c.rl.warmup_steps = 2  # training steps of linear warmup
    c.rl.n = 8  # responses per prompt (GRPO group)
    c.rl.train_prompts = 32  # groups per training step
    c.rl.gen_prompts = 48  # prompts per generation round
    c.rl.max_gen_rounds = 6  # generation rounds per step at most (dynamic sampling)
    c.rl.mini_batches = 2  # optimizer updates per training step
    c.rl.eval_every = 4  # training steps between test-accuracy evaluations
    c.rl.eval_n = 4  # samples per test prompt of those evaluations (Avg@n)
    c.rl.eval_prompts = 128  # test prompts per evaluation
    c.rl.dynamic_sampling = True  # keep only groups whose accuracy varies (DAPO)
    c.rl.workers = 2  # dlogp-train processes running side by side

    # Experiments 1-3: sampling on the test split with Avg@n.
    c.exp = ml_collections.ConfigDict()
    c.exp.n = 8  # samples per test prompt (Avg@n)
    c.exp.temperature = 1.0  # sampling temperature (the paper: 1.0)
    c.exp.top_p = 1.0  # nucleus mass (the paper: 0.7; docs/method.md §6 says why 1 here)
    c.exp.batch_prompts = 64  # prompts decoded together
    c.exp.seed = 0  # generation seed of every sampling run
    c.exp.criteria = "dlogp,entropy_base,kl_rl_base,random"  # replacement criteria compared
    c.exp.rates = "0.01,0.03,0.1,0.3"  # target replacement rates of the threshold sweep
    c.exp.gammas = "0.5,1.0,2.0"  # γ grid of selective extrapolation (τ at `extrap_rate`)
    c.exp.extrap_rate = 0.03  # the τ of the γ grid: Δlog p quantile giving this replacement rate
    c.exp.extrap_rates = "0.1"  # τ grid (at the γ chosen on validation), besides extrap_rate
    c.exp.all_gammas = "1.0"  # γ values of extrapolate_all (every token extrapolated)
    c.exp.val_n = 4  # samples per validation prompt when choosing γ

    if args.smoke:  # CI: seconds per stage, accuracies meaningless
        c.workdir = "runs/demo_smoke"
        c.world.n_train = 512
        c.world.n_val = 16
        c.world.n_test = 32
        c.world.min_steps = 1
        c.world.max_steps = 2
        c.world.max_value = 20
        c.world.max_operand = 5
        c.world.max_factor = 2
        c.world.hidden_size = 48
        c.world.intermediate_size = 96
        c.world.steps = 600
        c.world.batch_size = 16
        c.world.lr = 1e-2
        c.world.slip_prob = 0.5
        c.world.eval_n = 4
        c.world.max_new_tokens = 24
        c.rl.seeds = "0,1"
        c.rl.steps = 3
        c.rl.lr = 3e-3
        c.rl.n = 4
        c.rl.train_prompts = 4
        c.rl.gen_prompts = 8
        c.rl.max_gen_rounds = 3
        c.rl.eval_every = 1
        c.rl.eval_n = 2
        c.rl.mini_batches = 1
        c.rl.dynamic_sampling = False
        c.exp.n = 4
        c.exp.batch_prompts = 16
        c.exp.rates = "0.02,0.1,0.3"
        c.exp.gammas = "0.5,1.0"
        c.exp.extrap_rate = 0.1
        c.exp.extrap_rates = "0.3"
        c.exp.all_gammas = "0.5"
        c.exp.val_n = 2
    return c
