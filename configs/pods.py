"""Pod-sized presets: the paper's DAPO runs on Cloud TPU v5p slices, and a 32B base/RL pair for
`dlogp-score` / `dlogp-sample` with tensor parallelism.

  dlogp-train  --config=configs/pods.py:dapo_qwen2p5_math_7b_v5p64 --config.init_from=DIR ...
  dlogp-train  --config=configs/pods.py:dapo_qwen3_8b_base_v5p128 --config.init_from=DIR ...
  dlogp-score  --config=configs/pods.py:score_qwen2p5_32b_v5p32 --config.base=DIR --config.rl=DIR ...
  dlogp-sample --config=configs/pods.py:sample_qwen2p5_32b_v5p64 --config.base=DIR --config.rl=DIR ...

Each preset is the matching preset of configs/dapo.py, score.py or sample.py with the mesh, batch
and memory settings below (see docs/operators.md for the whole procedure). The algorithm settings
(docs/method.md §4) are unchanged; only how the work is laid out on the slice differs.

Slices (v5p: one JAX device per chip, 95 GB HBM per chip, 4 chips per host):
  v5p-32 = 16 chips / 4 hosts, v5p-64 = 32 chips / 8 hosts, v5p-128 = 64 chips / 16 hosts.

Meshes. `tensor` shards heads, KV heads, MLP width and vocabulary; `fsdp` shards the model width of
weights and optimizer state, and with `data` the batch. Every tensor size divides its axis (tested in
tests/configs/presets_test.py). For training, tensor = 4 = the chips of one host and data x fsdp = a
multiple of the hosts, so that each host's devices hold whole batch rows: the rollout feeds
host-local prompt shards (rl/rollout.py), which needs batch rows not to span hosts.

Memory per chip (GB = 1e9 bytes; P parameters; b sequences per chip per micro-batch; Lq = max
prompt + max response tokens; bf16 compute, fp32 master weights). "paper": the arithmetic below;
"XLA": the compiled peak (arguments + outputs - donated + temporaries) from
benchmarks/presets_memory.py, XLA:CPU on a simulated mesh of the slice's size, 2 and 3 layers
scaled linearly to full depth (an upper-leaning estimate: no TPU-specific memory passes).

  DAPO Qwen2.5-Math-7B, v5p-64, mesh fsdp:8,tensor:4 (P = 7.62e9, 28 layers, 28 q / 4 kv heads)
    params fp32 + grads fp32 + AdamW mu, nu fp32: 16 B x P / 32 chips               paper   3.8
    update, micro-batch 512/32 = 16 seqs -> b = 2, Lq = 2048 + 8192 = 10240:
      remat residuals (layer inputs), 28 x b x Lq x 3584 x 2 B                             4.1
      one layer's backward: attention probs of all 512-query blocks, fp32 + bf16,
      b x 7 local heads x Lq^2 x 6 B                                                       8.8
      MLP activations, 4 x b x Lq x 18944/4 x 2 B                                          0.8
      update total                                                          paper 17.5, XLA 31.8
    old-policy pass per micro-batch (16 seqs)                                         XLA   2.8
    old-policy pass over the whole 8192-sequence batch (before the fix)                XLA 818
    rollout round, 64 prompts x 16 = 1024 seqs -> 128 per chip (8-way fsdp):
      KV cache, 128 x 10240 slots x 28 layers x 1 kv head x 128 x 2 (k, v) x 2 B    paper  18.8
      rollout total (state + decode program)                                paper 22.6, XLA 59.7
  DAPO Qwen3-8B-Base, v5p-128, mesh fsdp:16,tensor:4 (P = 8.19e9, 36 layers, 32 q / 8 kv heads)
    params + grads + AdamW, 16 B x P / 64                                            paper   2.05
    update, micro-batch 512/32 = 16 seqs -> b = 1, Lq = 2048 + 20480 = 22528:
      remat residuals 36 x 1 x Lq x 4096 x 2 B = 6.6, attention probs 1 x 8 x Lq^2 x 6 B = 24.4
      update total                                                          paper 33.6, XLA 64.4
    old-policy pass per micro-batch / whole batch (today)                      XLA 2.8 / 1101
    rollout round, 16 prompts x 16 = 256 seqs -> 16 per chip:
      KV cache, 16 x 22528 x 36 x 2 kv heads x 128 x 2 x 2 B                         paper  13.3
      rollout total                                                         paper 15.3, XLA 30.7
      (32 prompts per round: XLA 83.1, too close to 95 to be the default)
  Qwen2.5-32B + DAPO-Qwen-32B (P = 32.76e9 each, 64 layers, 40 q / 8 kv heads), both bf16:
    score, v5p-32, mesh data:2,tensor:8: params 2 x 2 B x P / 8 = 16.4 (replicated over data);
      16 rows of <= 24576 tokens -> 8 per chip: hidden states of both models 4.0, one 512-query
      block of fp32 scores 2.0                                              paper 22.4, XLA 70.9
    sample (extrapolate: both KV caches), v5p-64, mesh data:4,tensor:8: params 16.4;
      1 prompt x n=32 -> 8 seqs per chip, Lq = 512 + 20000:
      2 x 8 x Lq x 64 x 1 kv head x 128 x 2 x 2 B = 10.8                    paper 27.1, XLA 58.3

The round sizes below were computed for the static decoder (multi-process rollouts used it until
the paged engine ran on several processes; they now run paged, whose memory is `kv_pages`, and the
sizes are kept until measured on a pod): its decode programs hold 2-4.5x their KV cache (XLA), the
cache being repeated n times after the prefill and the layer scan emitting a new stacked cache
while reading the old one. Because that cache is allocated for the full Lq, the prompts per
generation round (`rollout.gen_prompts`) are sized to it: 64 / 16 prompts instead of verl's 1536, with `max_gen_rounds` raised so the prompt
budget per step stays 10 x 1536. Dynamic sampling takes the first 512 informative groups in data
order either way, but a step then runs many sequential decode loops of up to Lq steps: rollouts,
not memory, bound these runs (docs/operators.md, "Known limits"). The 32B sampling preset uses a
v5p-64 because at n = 32 x 20000 tokens a v5p-32 (16 seqs per chip) needs ~96 GB per chip.

dlogp-train keeps `param_dtype` (fp32) master weights under bf16 compute (with bf16 weights, AdamW
steps of lr 1e-6 round away), and runs the old-policy / reference log-prob passes per micro-batch
(a whole-batch pass would need the 818 / 1101 GB per chip above).
"""

import importlib.util
import os

from dlogp_jax.config_args import parse_arg

# Machine-readable description of every preset (benchmarks/presets_memory.py and the tests read it).
SLICES = {"v5p-32": (16, 4), "v5p-64": (32, 8), "v5p-128": (64, 16)}  # chips, hosts
HBM_BYTES_PER_CHIP = 95e9
# cli: the config file the preset starts from; base: that file's preset arg; model: the
# dlogp_jax.model.config preset of the model's shape; mesh: the device mesh over the slice's chips.
PRESETS = {
    "dapo_qwen2p5_math_7b_v5p64": dict(
        cli="dapo",
        base="qwen2p5_math_7b",
        slice="v5p-64",
        model="qwen2p5_math_7b",
        mesh="fsdp:8,tensor:4",
    ),
    "dapo_qwen3_8b_base_v5p128": dict(
        cli="dapo",
        base="qwen3_8b_base",
        slice="v5p-128",
        model="qwen3_8b",
        mesh="fsdp:16,tensor:4",
    ),
    "score_qwen2p5_32b_v5p32": dict(
        cli="score",
        base="",
        slice="v5p-32",
        model="qwen2p5_32b",
        mesh="data:2,tensor:8",
    ),
    "sample_qwen2p5_32b_v5p64": dict(
        cli="sample",
        base="paper",
        slice="v5p-64",
        model="qwen2p5_32b",
        mesh="data:4,tensor:8",
    ),
}


def _sibling(name: str):
    """configs/<name>.py as a module (config files are loaded by path, not as a package)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"dlogp_configs_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dapo_common(c, preset: dict) -> None:
    c.mesh = preset["mesh"]
    c.dtype = "bfloat16"  # compute (activations, KV cache)
    c.param_dtype = "float32"  # master weights + AdamW state
    c.reference = False  # no KL, no Δlog p-vs-init metrics: saves a frozen copy of the weights
    c.total_steps = 250  # the paper's curves stop at about 250 steps
    c.trainer.save_every = 10  # training steps between checkpoints
    c.trainer.keep_checkpoints = 3  # newest checkpoints kept
    c.trainer.export_every = 50  # training steps between HF exports
    c.trainer.grader_workers = 16  # grading processes per host
    c.trainer.chunk_tokens = 512  # tokens projected to the vocabulary at once
    c.trainer.remat = True  # recompute activations in the backward pass
    c.trainer.mini_batches = 16  # the paper's 16 updates of 32 prompts per step


def get_config(arg=None):
    args = parse_arg(arg, **dict.fromkeys(PRESETS, False))
    chosen = [name for name in PRESETS if args[name]]
    if len(chosen) != 1:
        raise ValueError(
            f"choose exactly one preset: configs/pods.py:NAME with NAME in {sorted(PRESETS)}"
        )
    name = chosen[0]
    preset = PRESETS[name]
    c = _sibling(preset["cli"]).get_config(preset["base"] or None)

    if name == "dapo_qwen2p5_math_7b_v5p64":
        _dapo_common(c, preset)
        c.workdir = "runs/dapo_qwen2p5_math_7b_v5p64"
        c.rollout.gen_prompts = 64  # prompts per round, sized to the KV cache (see above)
        c.rollout.max_gen_rounds = 240  # 240 x 64 = 10 x 1536 prompts per step at most
        c.trainer.micro_batches = 32  # 16 sequences per micro-batch: 2 per chip
    elif name == "dapo_qwen3_8b_base_v5p128":
        _dapo_common(c, preset)
        c.workdir = "runs/dapo_qwen3_8b_base_v5p128"
        c.rollout.gen_prompts = 16  # prompts per round, sized to the KV cache (see above)
        c.rollout.max_gen_rounds = 960  # 960 x 16 = 10 x 1536 prompts per step at most
        c.trainer.micro_batches = 32  # 16 sequences per micro-batch: 1 per chip
    elif name == "score_qwen2p5_32b_v5p32":
        c.mesh = preset["mesh"]
        c.dtype = "bfloat16"  # both 32B models in bf16: 16.4 GB of params per chip
        c.out = "runs/score_qwen2p5_32b"
        c.batch_size = 16  # rows per step: 8 per data replica
        c.length_bucket = 512  # pad lengths to multiples of 512 tokens
        c.max_length = 24576  # prompt + the paper's 20000-token responses
        c.chunk_tokens = 1024  # tokens projected to the vocabulary at once
    elif name == "sample_qwen2p5_32b_v5p64":
        c.mesh = preset["mesh"]
        c.dtype = "bfloat16"  # both 32B models in bf16: 16.4 GB of params per chip
        c.out = "runs/sample_qwen2p5_32b"
        c.batch_prompts = 1  # x n=32 (the paper's setting) = 32 sequences, 8 per data replica
        c.prompt_buckets = "128,256,512"  # AIME prompts are short
        c.grader_workers = 8  # math-verify processes
    return c
