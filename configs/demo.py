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
neither SFT nor RL trains on); the test split is only measured.
"""

import ml_collections

from dlogp_jax.config_args import parse_arg

STAGES = "world,rl,direction,replacement,extrapolation,reweighting,report"


def get_config(arg=None):
    args = parse_arg(arg, smoke=False)
    c = ml_collections.ConfigDict()
    c.workdir = "runs/demo"
    c.stages = STAGES  # comma-separated subset (dependencies run or are reused automatically)
    c.mesh = "fsdp:-1"

    # The world: task, tokenizer and SFT'd base (fields of dlogp_jax.world.WorldSettings).
    c.world = ml_collections.ConfigDict(dict(
        seed=0, n_train=20_000, n_val=256, n_test=256, min_steps=2, max_steps=4, max_value=99,
        max_operand=9, max_factor=3, hidden_size=64, num_layers=2, intermediate_size=256,
        num_heads=4, num_kv_heads=2, steps=1500, batch_size=32, lr=5e-3, slip_prob=0.85,
        slip_ramp_frac=0.5, eval_n=8, max_new_tokens=64,
    ))  # fmt: skip

    # RL: one dlogp-train run per (method, seed); `methods[0]` seed `seeds[0]` is "the RL model"
    # of experiments 1-3. Settings tuned on the validation rows (see the module docstring).
    c.rl = ml_collections.ConfigDict(dict(
        methods="none,reshape_reversed,reshape", seeds="0,1,2", weight_c=0.2, reshape_c=0.2,
        steps=16, lr=1e-3, b2=0.99, warmup_steps=2, n=8, train_prompts=32, gen_prompts=48,
        max_gen_rounds=6, mini_batches=2, eval_every=4, eval_n=4, eval_prompts=128,
        dynamic_sampling=True, workers=2,
    ))  # fmt: skip

    # Experiments 1-3: sampling on the test split with Avg@n.
    c.exp = ml_collections.ConfigDict(dict(
        n=8, temperature=1.0, top_p=1.0, batch_prompts=64, seed=0,
        criteria="dlogp,entropy_base,kl_rl_base,random",
        rates="0.01,0.03,0.1,0.3",  # target replacement rates of the threshold sweep
        gammas="0.5,1.0,2.0",  # γ grid of selective extrapolation (τ at `extrap_rate`)
        extrap_rate=0.03,  # the τ of the γ grid: Δlog p quantile giving this replacement rate
        extrap_rates="0.1",  # τ grid (at the γ chosen on validation), besides extrap_rate
        all_gammas="1.0",  # extrapolate_all
        val_n=4,  # samples per validation prompt when choosing γ
    ))  # fmt: skip

    if args.smoke:  # CI: seconds per stage, accuracies meaningless
        c.workdir = "runs/demo_smoke"
        c.world.update(n_train=512, n_val=16, n_test=32, min_steps=1, max_steps=2, max_value=20,
                       max_operand=5, max_factor=2, hidden_size=48, intermediate_size=96,
                       steps=600, batch_size=16, lr=1e-2, slip_prob=0.5, eval_n=4,
                       max_new_tokens=24)  # fmt: skip
        c.rl.update(seeds="0,1", steps=3, lr=3e-3, n=4, train_prompts=4, gen_prompts=8, max_gen_rounds=3,
                    eval_every=1, eval_n=2, mini_batches=1,
                    dynamic_sampling=False)  # fmt: skip
        c.exp.update(n=4, batch_prompts=16, rates="0.02,0.1,0.3", gammas="0.5,1.0",
                     extrap_rate=0.1, extrap_rates="0.3", all_gammas="0.5", val_n=2)  # fmt: skip
    return c
