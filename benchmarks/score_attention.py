"""Dense scoring attention on CPU: the causal blocked path vs every query block scoring all keys.

Two-model teacher-forced scoring (the final hidden states of a base and an RL model, one jitted
program, B = 1) of a random Qwen2-shaped pair (D = 512, 8 layers, 8 heads, 2 kv heads, F = 1408,
~25M parameters per model without the embedding; V = 4096: the vocabulary projection is not what
is measured here) at T = 512 .. 8192, with the two attention paths of `layers.attention`:

  * all keys (before): query blocks of 512 each score all T keys, masked above the diagonal;
  * causal (after, the default for scoring and training): block i reads keys [0, 512 (i + 1)).

Both run in the same process, alternating per T, after one compile-and-run each; the table
prints tokens/s of each, their ratio, the max abs difference of the hidden states, and the fp32
matmul peak measured in the same run (machines differ: compare ratios).

Run:
    python benchmarks/score_attention.py
    python benchmarks/score_attention.py --seqs 512,2048 --reps 1   # shorter
    python benchmarks/score_attention.py --quick                      # smoke run (seconds)
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.engine import matmul_peak
from dlogp_jax.model import layers, transformer
from dlogp_jax.model.config import ModelConfig


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seqs", default="512,1024,2048,4096,8192", help="comma-separated T")
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--reps", type=int, default=2, help="timed runs per path and T (best kept)")
    p.add_argument("--quick", action="store_true", help="tiny smoke run")
    args = p.parse_args(argv)
    if args.quick:
        args.seqs, args.hidden, args.layers, args.reps = "256,1024", 64, 2, 1
    return args


def pair(args):
    config = ModelConfig(
        vocab_size=4096,
        hidden_size=args.hidden,
        intermediate_size=args.hidden * 11 // 4,
        num_layers=args.layers,
        num_heads=8,
        num_kv_heads=2,
        head_dim=args.hidden // 8,
        tie_embeddings=True,
        qkv_bias=True,
    )
    keys = jax.random.split(jax.random.key(0), 2)
    return config, [transformer.init(k, config) for k in keys]


def scorer(config, causal: bool):
    """jit(params pair, tokens [1, T]) -> both models' [1, T, D] hidden states, with the
    scoring attention path forced to `causal` (the model code passes causal=True)."""

    def attention(q, k, v, mask, q_block=512, *, causal_=causal, **_):
        return original(q, k, v, mask, q_block, causal=causal_)

    original = layers.attention

    @jax.jit
    def run(params, tokens):
        positions = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)
        layers.attention = attention  # trace-time swap; restored below
        try:
            return tuple(
                transformer.hidden_states(p, tokens, positions, config=config)[0] for p in params
            )
        finally:
            layers.attention = original

    return run


def timed(fn, *a, reps: int) -> tuple[float, tuple]:
    out = jax.block_until_ready(fn(*a))  # compile + one run
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn(*a))
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv=None):
    args = parse_args(argv)
    config, params = pair(args)
    peak = matmul_peak()
    before, after = scorer(config, causal=False), scorer(config, causal=True)
    print(f"machine: {jax.devices()[0].platform}, fp32 matmul peak {peak:.0f} GFLOP/s (2048³)")
    print(f"pair: 2 × (D={config.hidden_size}, L={config.num_layers}, N=8, K=2), B=1, fp32")
    print(f"{'T':>6} {'all keys tok/s':>15} {'causal tok/s':>13} {'ratio':>6} {'max|Δh|':>9}")
    rng = np.random.default_rng(0)
    for t in (int(x) for x in args.seqs.split(",")):
        tokens = jnp.asarray(rng.integers(0, config.vocab_size, (1, t)), jnp.int32)
        sec_b, out_b = timed(before, params, tokens, reps=args.reps)
        sec_a, out_a = timed(after, params, tokens, reps=args.reps)
        diff = max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(out_a, out_b))
        print(f"{t:6d} {t / sec_b:15.0f} {t / sec_a:13.0f} {sec_b / sec_a:6.2f} {diff:9.1e}")


if __name__ == "__main__":
    main()
