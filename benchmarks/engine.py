"""Paged engine vs static decoder on a long-tailed length workload, at equal KV memory.

Workload: a random Qwen2-shaped base/RL pair with a near-uniform next-token distribution over
V = 100 rows and 2 stop ids, so each step stops a sequence with probability ~1/50: lengths are
geometric (mean ~50) and capped at max_new_tokens = 512, the long tail of reasoning traces in
miniature. 16 prompts of 8-32 tokens, n = 4 samples each (64 sequences), mode `extrapolate`
(two models in lock-step), seed 0 for both engines.

  * static: `sampling.generate` on batches of `--static-batch` sequences (2 prompts × 4); each
    batch reserves prompt + 512 KV slots per sequence and runs until its longest sequence ends.
  * paged: `engine.run_paged` with the same KV budget in pages (static batch × (Tp + 512) tokens
    per model), `--max-seqs` slots, page size 16, rounds of 16 steps.

Printed (not asserted): useful (generated) tokens/s of each and their ratio, sequences decoded
concurrently, the fraction of computed token slots that were real tokens, peak KV bytes, whether
the samples are identical, and the fp32 matmul peak of this machine measured in the same run
(machines differ: compare ratios). Each engine runs once to compile, then once timed.

Run:
    python benchmarks/engine.py            # the workload above
    python benchmarks/engine.py --quick    # small smoke run
    python benchmarks/engine.py --accelerator [--model qwen2p5_1p5b]  # GPU/TPU: the pair's
        # tokens/s against its bandwidth roofline (benchmarks/engine_accelerator.py)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from dlogp_jax import toy
from dlogp_jax.engine import EngineConfig, run_paged
from dlogp_jax.model import transformer
from dlogp_jax.sampling import DecodeSpec, generate, left_pad
from dlogp_jax.sampling.batches import fixed_batches

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from benchmarks import engine_accelerator  # noqa: E402

VOCAB = 100
STOPS = (0, 1)  # 2 of 100 near-uniform rows: P(stop) ≈ 1/50 per step


def matmul_peak(n: int = 2048, reps: int = 3) -> float:
    """Best fp32 GFLOP/s of an n³ matmul."""
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def build(args):
    config = toy.tiny_config(
        VOCAB,
        hidden_size=args.width,
        intermediate_size=2 * args.width,
        num_layers=args.layers,
        num_heads=4,
        num_kv_heads=2,
        head_dim=args.width // 4,
    )
    k_base, k_noise = jax.random.split(jax.random.key(0))
    base = transformer.init(k_base, config)  # std 0.02: near-uniform next-token distributions
    rl = dict(base)
    rl["embed_vd"] = base["embed_vd"] + 0.02 * jax.random.normal(k_noise, base["embed_vd"].shape)
    rng = np.random.default_rng(0)
    prompts = [rng.integers(2, VOCAB, rng.integers(8, 33)).tolist() for _ in range(args.prompts)]
    spec = DecodeSpec(
        mode="extrapolate",
        criterion="dlogp",
        threshold=-0.02,
        gamma=0.5,
        max_new_tokens=args.max_new,
        stop_ids=STOPS,
        pad_id=0,
        n=args.n,
    )
    return config, base, rl, prompts, spec


def run_static(config, base, rl, prompts, spec, per_batch: int, prompt_len: int):
    """All prompts through `generate`, `per_batch` prompts (× n sequences) per call."""
    tokens, lengths, steps = [], [], 0
    for batch, real in fixed_batches(list(enumerate(prompts)), per_batch):
        index = [i for i, _ in batch]
        tok, mask = left_pad([p for _, p in batch], pad_id=0, buckets=(prompt_len,))
        models = dict(config_base=config, params_rl=rl, config_rl=config)
        out = generate(base, tok, mask, np.asarray(index), spec=spec, seed=0, **models)
        keep = real * spec.n
        tokens.append(np.asarray(out.tokens)[:keep])
        lengths.append(np.asarray(out.length)[:keep])
        steps += int(out.num_steps)
    return np.concatenate(tokens), np.concatenate(lengths), steps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--max-new", type=int, default=512)
    ap.add_argument("--static-batch", type=int, default=8, help="static sequences per call")
    ap.add_argument("--max-seqs", type=int, default=32, help="paged sequence slots")
    ap.add_argument("--page-size", type=int, default=16)
    ap.add_argument("--round-steps", type=int, default=16)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--accelerator", action="store_true", help="Qwen-shaped pair vs roofline")
    ap.add_argument("--model", default="qwen2p5_0p5b", help="--accelerator: qwen2p5_0p5b|1p5b")
    ap.add_argument("--seqs", type=int, default=256, help="--accelerator: sequences decoded")
    args = ap.parse_args(argv)
    if args.accelerator:
        return engine_accelerator.run(args)
    if args.quick:
        args.prompts, args.max_new, args.width, args.layers = 4, 64, 64, 2
        args.static_batch, args.max_seqs = 4, 8
    config, base, rl, prompts, spec = build(args)
    prompt_len = 32  # static prompts are left-padded to one bucket
    per_batch = args.static_batch // args.n
    slots = prompt_len + args.max_new
    kv_tokens = args.static_batch * slots  # per model
    engine = EngineConfig(
        num_pages=kv_tokens // args.page_size,
        page_size=args.page_size,
        max_seqs=args.max_seqs,
        round_steps=args.round_steps,
    )
    tokens_p, mask_p = left_pad(prompts, pad_id=0, buckets=(prompt_len,))
    index = np.arange(len(prompts))
    peak = matmul_peak()

    models = dict(config_base=config, params_rl=rl, config_rl=config)
    runs = {
        "static": lambda: run_static(config, base, rl, prompts, spec, per_batch, prompt_len),
        "paged": lambda: run_paged(
            base, tokens_p, mask_p, index, spec=spec, seed=0, engine=engine, **models
        ),
    }
    timings = {}
    for name, fn in runs.items():
        fn()  # compile
        t = time.perf_counter()
        timings[name] = (fn(), time.perf_counter() - t)
    (s_tokens, s_len, s_steps), s_time = timings["static"]
    (p_out, stats), p_time = timings["paged"]
    p_len, p_tokens = np.asarray(p_out.length), np.asarray(p_out.tokens)
    useful = int(s_len.sum())
    per_token = 2 * config.num_layers * config.num_kv_heads * config.head_dim * 4 * 2  # 2 models
    s_rate, p_rate = useful / s_time, int(p_len.sum()) / p_time
    s_conc = args.static_batch
    p_mean = p_len.sum() / max(stats.decode_steps, 1)
    print(f"machine: {jax.devices()[0].platform}, fp32 matmul peak {peak:.0f} GFLOP/s (2048³)")
    lengths = f"mean {s_len.mean():.0f} median {np.median(s_len):.0f} max {s_len.max()}"
    print(f"workload: {len(prompts)} prompts × n={args.n}, max_new {args.max_new}, {lengths}")
    print(f"KV budget per model: {kv_tokens} tokens ({engine.num_pages} pages of {args.page_size})")
    mib = lambda tokens: f"{tokens * per_token / 2**20:.1f} MiB"
    s_real = useful / (s_conc * s_steps)
    print(
        f"static: {s_rate:8.0f} useful tok/s, {s_conc} concurrent, {s_real:.0%} of slots real, "
        f"peak KV {mib(kv_tokens)}"
    )
    p_peak = mib(stats.peak_pages_used * args.page_size)
    print(
        f"paged:  {p_rate:8.0f} useful tok/s, {stats.peak_live_seqs} concurrent (mean "
        f"{p_mean:.1f}), {stats.rounds} rounds, peak KV {p_peak}"
    )
    conc = stats.peak_live_seqs / s_conc
    print(f"ratios paged/static: {p_rate / s_rate:.2f}× useful tok/s, {conc:.2f}× concurrent")
    same = np.array_equal(s_tokens, p_tokens) and np.array_equal(s_len, p_len)
    print(f"identical samples: {same}")


if __name__ == "__main__":
    main()
