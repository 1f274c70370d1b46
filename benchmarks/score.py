"""Throughput of teacher-forced two-model scoring: `score_tokens` (JAX) vs a plain PyTorch reference.

Measures tokens/s (B*T input tokens per call) for computing all seven per-token metrics (logp_base,
logp_rl, dlogp, entropy_base, entropy_rl, kl_rl_base, kl_base_rl) of a (base, RL) model pair:

  * JAX:   `dlogp_jax.logprobs.score_tokens` (one jitted program: both forwards, vocabulary
    projection `chunk_tokens` positions at a time);
  * torch: `third_party/torch_reference.torch_pair_metrics` (two `transformers` forwards, full
    `[B, T, V]` logits, `log_softmax`), the way the metrics are usually written.

Both sides load the same weights: a random Qwen2-shaped pair (default V=151,936, D=512, 8 layers,
8 heads, 2 kv heads, F=1408, tied embeddings, ~100M params; RL = base with every weight perturbed)
is exported once with `dlogp_jax.model.hf_weights.export_params` into a temporary directory, then
read back by `hf_weights.load_params` and by `transformers.AutoModelForCausalLM`. Everything is fp32
on CPU. Each side is warmed up (JAX compiles) before timing; timed repetitions alternate between the
two sides so that background load affects both alike. The script also prints the max abs difference
of every metric between the two implementations, and XLA's compiled memory figures for the JAX call.

Threads: torch uses `torch.set_num_threads(--threads)` (default: the CPUs this process may use); XLA
gets the same count through `XLA_FLAGS=--xla_cpu_multi_thread_eigen=true
intra_op_parallelism_threads=N`, set before jax is imported.

Run:
    python benchmarks/score.py              # defaults above (B=4, T=512)
    python benchmarks/score.py --quick      # tiny smoke run (seconds)
    python benchmarks/score.py --batch 8 --seq 1024 --reps 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

GIB = 1 << 30


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--vocab", type=int, default=151936)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--intermediate", type=int, default=1408)
    p.add_argument("--chunk", type=int, default=1024, help="score_tokens chunk_tokens")
    p.add_argument("--noise", type=float, default=0.5, help="RL perturbation, relative to std")
    p.add_argument("--reps", type=int, default=3, help="timed repetitions per side")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.batch, args.seq, args.vocab, args.hidden, args.layers = 2, 64, 4096, 64, 2
        args.heads, args.kv_heads, args.intermediate, args.chunk, args.reps = 4, 2, 128, 64, 2
    return args


def set_xla_threads(n: int) -> None:
    """XLA reads XLA_FLAGS once, when the backend starts: call before importing jax."""
    flags = os.environ.get("XLA_FLAGS", "")
    extra = f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={n}"
    os.environ["XLA_FLAGS"] = f"{flags} {extra}".strip()


def build_pair(out_dir: Path, args):
    """Random Qwen2-shaped base model and a perturbed copy, exported as HF checkpoint dirs."""
    import jax

    from dlogp_jax.model import hf_weights, transformer
    from dlogp_jax.model.config import ModelConfig

    std = 0.02
    config = ModelConfig(
        model_type="qwen2",
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_layers=args.layers,
        num_heads=args.heads,
        num_kv_heads=args.kv_heads,
        head_dim=args.hidden // args.heads,
        qkv_bias=True,
        tie_embeddings=True,
        dtype="float32",
    )
    k_base, k_noise = jax.random.split(jax.random.key(args.seed))
    base = transformer.init(k_base, config, std=std)
    leaves, treedef = jax.tree.flatten(base)
    keys = jax.random.split(k_noise, len(leaves))
    rl = jax.tree.unflatten(
        treedef,
        [x + args.noise * std * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)],
    )
    base_dir = hf_weights.export_params(out_dir / "base", base, config)
    rl_dir = hf_weights.export_params(out_dir / "rl", rl, config)
    return config, base_dir, rl_dir


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv=None):
    args = parse_args(argv)
    set_xla_threads(args.threads)

    import functools

    import jax
    import numpy as np
    import torch
    import transformers

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from dlogp_jax.logprobs import METRICS_TWO, score_tokens
    from dlogp_jax.model import hf_weights
    from third_party.torch_reference import load_torch_model, torch_pair_metrics

    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    b, t, v = args.batch, args.seq, args.vocab

    with tempfile.TemporaryDirectory(prefix="dlogp_bench_") as tmp:
        config, base_dir, rl_dir = build_pair(Path(tmp), args)
        cfg_b, params_b = hf_weights.load_params(base_dir)
        cfg_r, params_r = hf_weights.load_params(rl_dir)
        torch_b = load_torch_model(base_dir)
        torch_r = load_torch_model(rl_dir)

    rng = np.random.default_rng(args.seed)
    tokens_np = rng.integers(0, v, size=(b, t), dtype=np.int64)
    tokens = jax.numpy.asarray(tokens_np, jax.numpy.int32)
    positions = jax.numpy.broadcast_to(jax.numpy.arange(t, dtype=jax.numpy.int32), (b, t))
    mask = jax.numpy.ones((b, t), bool)
    tokens_pt = torch.from_numpy(tokens_np)
    mask_pt = torch.ones_like(tokens_pt)

    static = dict(config_base=cfg_b, config_rl=cfg_r, vocab_limit=v, chunk_tokens=args.chunk)
    jax_args = (params_b, tokens, positions, mask, params_r)

    def run_jax():
        return jax.block_until_ready(score_tokens(*jax_args, **static))

    run_torch = functools.partial(torch_pair_metrics, torch_b, torch_r, tokens_pt, mask_pt, v)

    # warm-up: the first JAX call traces and compiles; torch's first call allocates
    out_jax, first_jax = timed(run_jax)
    out_torch, first_torch = timed(run_torch)

    times_jax, times_torch = [], []
    for _ in range(args.reps):
        times_jax.append(timed(run_jax)[1])
        times_torch.append(timed(run_torch)[1])

    n_tok = b * t
    print(
        f"backend: jax {jax.__version__} ({jax.default_backend()}), torch {torch.__version__}, "
        f"threads={args.threads} (torch.set_num_threads, XLA intra_op_parallelism_threads)"
    )
    print(
        f"model pair: qwen2-shaped L={config.num_layers} D={config.hidden_size} "
        f"N={config.num_heads} K={config.num_kv_heads} F={config.intermediate_size} V={v} tied, "
        f"fp32, {config.num_params / 1e6:.1f}M params each; RL = base + {args.noise} * std noise"
    )
    print(
        f"batch: B={b} T={t} ({n_tok} tokens per call), chunk_tokens={args.chunk}, "
        f"reps={args.reps} (after warm-up)"
    )
    print(f"warm-up call: JAX {first_jax:.2f}s (includes compilation), torch {first_torch:.2f}s")
    print()
    print(f"{'implementation':<34s} {'median s':>9s} {'best s':>8s} {'tokens/s':>10s}")
    med_j, med_t = statistics.median(times_jax), statistics.median(times_torch)
    rows = [
        ("JAX score_tokens", times_jax, med_j),
        ("torch reference (full logits)", times_torch, med_t),
    ]
    for name, ts, med in rows:
        print(f"{name:<34s} {med:9.3f} {min(ts):8.3f} {n_tok / med:10.1f}")
    print(f"speed-up JAX / torch (median tokens/s): {med_t / med_j:.2f}x")

    mem = score_tokens.lower(*jax_args, **static).compile().memory_analysis()
    print()
    print("memory (estimates)")
    print(f"  JAX compiled temp (XLA buffer assignment)   {mem.temp_size_in_bytes / GIB:8.3f} GiB")
    print(
        f"  JAX arguments (both params + inputs)        {mem.argument_size_in_bytes / GIB:8.3f} GiB"
    )
    print(
        f"  one [B, T, V] fp32 logits tensor (torch holds several)  {b * t * v * 4 / GIB:.3f} GiB"
    )

    print()
    print("agreement, positions 1..T-1 (max abs diff JAX vs torch; max |value| for scale)")
    print(f"{'metric':<14s} {'max abs diff':>13s} {'max |torch|':>12s}")
    for k in METRICS_TWO:
        a = np.asarray(out_jax[k], np.float64)[:, 1:]
        r = out_torch[k].double().numpy()[:, 1:]
        print(f"{k:<14s} {np.max(np.abs(a - r)):13.3e} {np.max(np.abs(r)):12.4f}")


if __name__ == "__main__":
    main()
