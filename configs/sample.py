"""`dlogp-sample` configuration: plain, selective-replacement and extrapolated decoding of a
base/RL pair (docs/method.md §2, §3).

  dlogp-sample --config=configs/sample.py --config.base=DIR --config.rl=DIR --config.data=FILE \
      --config.mode=extrapolate --config.criterion=dlogp --config.threshold=-0.3 --config.gamma=0.05
  dlogp-sample --config=configs/sample.py:demo      # tiny checkpoints + prompts built on the spot
  dlogp-sample --config=configs/sample.py:paper     # the official run's sampling settings
  dlogp-sample --config=sample:demo --config.thresholds=-0.3,-0.5 --config.gammas=0,0.1  # a sweep
"""

import ml_collections

from dlogp_jax.config_args import distributed, parse_arg


def get_config(arg=None):
    args = parse_arg(arg, demo=False, paper=False)
    c = ml_collections.ConfigDict()

    # Inputs and outputs.
    c.base = ""  # HF checkpoint directory of the base model (the driver: it proposes every token)
    c.rl = ""  # HF checkpoint directory of the RL model (needed unless mode=single)
    c.data = ""  # .jsonl / .parquet with `prompt` (or `problem`) and optional `answer`
    c.out = "runs/sample"  # output directory (samples.jsonl, summary.json, run.json)

    # Decoding mode (docs/method.md §2, §3).
    c.mode = "single"  # single | replace | extrapolate | extrapolate_all
    # Which positions are re-drawn (replace / extrapolate): dlogp | logp | entropy_base |
    # entropy_rl | kl_rl_base | kl_base_rl | kl_sym | random | all | none; the official names
    # neg_logp, entropy, assist_entropy, kl, kl_r, js, rand are accepted (extrapolation.py).
    c.criterion = "dlogp"
    c.threshold = -0.3  # τ: dlogp fires at Δlog p <= τ; entropy/KL at >= τ; random at U < τ
    c.gamma = 0.0  # γ of π_RL^(1+γ) / π_base^γ (0 = the RL model; the paper: 0.05-0.1)
    # A τ/γ sweep in one process (one model load, one compile): every pair of these lists, each
    # in out/points/tau=τ_gamma=γ/ with out/sweep.md as the table; "" = the single value above.
    c.thresholds = ""  # e.g. "-0.2,-0.3,-0.5"
    c.gammas = ""  # e.g. "0,0.05,0.1"
    c.faithful = False  # the official top-K approximation instead of the exact full vocabulary
    c.faithful_top_k = 50  # K of faithful mode (50 in the official runs)

    # Sampling filters (every draw: the base proposal and the re-draw).
    c.temperature = 1.0  # 0 = greedy (the paper: 1.0)
    c.top_p = 1.0  # nucleus mass, (0, 1] (the paper: 0.7, see `:paper`)
    c.top_k = 0  # keep the k most likely tokens; 0 = off
    c.max_new_tokens = 1024  # generated tokens per sequence at most (the paper: 20000)
    c.stop_tokens = ""  # comma-separated; "" = the tokenizer's eos + <|im_end|> + <|endoftext|>
    c.n = 4  # samples per prompt (the paper: 32, for Avg@32)
    c.seed = 0  # generation seed; with the prompt index it names each sample's random stream

    # Prompts.
    c.chat_template = True  # one user turn in a tokenizer's chat template (see template_from)
    # Whose chat template: base | rl (the official runs) | "" (the base's; refused if they differ).
    c.template_from = ""
    c.prompt_suffix = ""  # appended to each prompt before templating

    # Batching, numerics, grading.
    # Prompts per decode call, the unit of progress and resume (static: one batch of
    # batch_prompts * n sequences; paged: their sequences queued onto max_seqs slots).
    c.batch_prompts = 8
    c.prompt_buckets = "64,128,256,512,1024,2048,4096"  # left-pad prompts to one of these lengths
    # Decoder (README "Sampling engine"): paged = continuous batching over a KV page budget.
    c.engine = "paged"  # paged | static (one dense batch per call; the reference)
    c.kv_pages = 0  # KV pages per model (paged); 0 = auto: 1/2 of the free device memory
    c.page_size = 16  # tokens per KV page (paged)
    c.max_seqs = 0  # sequences decoded together (paged); 0 = auto: min(queued, 256; CPU 64)
    c.dtype = "float32"  # params and compute: float32 | bfloat16 (on accelerators) | float16
    c.mesh = "fsdp:-1"  # device mesh, axis:size with -1 = the rest, e.g. "data:4,tensor:8"
    c.grader_workers = 2  # processes running math-verify (0 = in process)
    c.demo = args.demo  # build tiny checkpoints and prompts under `out` first
    c.distributed = distributed()  # multi-host settings (config_args.distributed)

    if args.paper:  # docs/method.md §5: T = 1, top-p 0.7, the \boxed{} suffix, n = 32, RL template
        c.top_p = 0.7
        c.template_from = "rl"
        c.n = 32
        c.max_new_tokens = 20000
        c.prompt_suffix = (
            "\nPlease reason step by step, and put your final answer within \\boxed{}."
        )
    if args.demo:
        c.out = "runs/sample_demo"
        c.mode = "extrapolate"
        c.criterion = "dlogp"
        c.threshold = -0.5
        c.gamma = 0.1
        c.max_new_tokens = 24
        c.n = 2
        c.batch_prompts = 4
    return c
