"""DAPO step benchmark: time per phase, tokens/s, and the update's model FLOPs utilisation (MFU).

A random Qwen2-shaped model (~30M parameters by default) runs one DAPO step's three phases as the
trainer does: rollout (the jitted sampler, n responses per prompt), the old-policy forward pass, and
the mini-batch updates (`dlogp_jax.rl.train_step.update`). MFU is the update's model FLOPs
(6·N·tokens for the dense layers + 12·L·D_attn·S per token for attention, forward + backward, the
rematerialized forward not counted) divided by its wall time and by a float32 matmul peak measured in
the same run on the same device.

  python benchmarks/train.py              # ~30M, CPU
  python benchmarks/train.py --hidden 896 --layers 24 --heads 14 --kv-heads 2 \
      --intermediate 4864 --vocab 151936 --dtype bfloat16   # ~0.5B on a GPU
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from dlogp_jax.model import transformer
from dlogp_jax.model.config import ModelConfig
from dlogp_jax.rl import dapo_loss, train_step
from dlogp_jax.rl.train_state import OptimizerConfig, create, make_optimizer
from dlogp_jax.sampling import DecodeSpec, generate


def matmul_peak(dtype, n: int = 2048, reps: int = 5) -> float:
    """Measured FLOP/s of an n x n x n matmul in `dtype` (best of reps)."""
    a = jnp.ones((n, n), dtype)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = min(_timed(lambda: f(a).block_until_ready()) for _ in range(reps))
    return 2 * n**3 / best


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def train_flops(cfg: ModelConfig, tokens: int, seq_len: int) -> float:
    """Forward+backward model FLOPs of `tokens` tokens (6·N_dense + attention), no remat."""
    dense = cfg.num_params - cfg.vocab_size * cfg.hidden_size * (1 if cfg.tie_embeddings else 2)
    dense += cfg.vocab_size * cfg.hidden_size  # the output projection is a matmul
    attn = 12 * cfg.num_layers * cfg.num_heads * cfg.head_dim * seq_len / 2  # causal: half
    return tokens * (6 * dense + attn)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocab", type=int, default=32768)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--intermediate", type=int, default=1408)
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--prompt-len", type=int, default=64)
    p.add_argument("--response-len", type=int, default=64)
    p.add_argument("--mini-batches", type=int, default=2)
    p.add_argument("--dtype", default="float32")
    args = p.parse_args()

    cfg = ModelConfig(
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
        dtype=args.dtype,
    )
    dtype = jnp.dtype(args.dtype)
    params = transformer.init(jax.random.key(0), cfg, dtype=dtype)
    opt = OptimizerConfig(lr=1e-5, warmup_steps=0)
    state = create(params, make_optimizer(opt, args.mini_batches), 0)
    step_cfg = train_step.StepConfig(
        model=cfg,
        loss=dapo_loss.LossConfig(),
        prompt_len=args.prompt_len,
        vocab_limit=args.vocab,
        chunk_tokens=512,
        micro_batches=1,
        remat=True,
        optimizer=opt,
        updates_per_step=args.mini_batches,
    )
    spec = DecodeSpec(mode="single", max_new_tokens=args.response_len, stop_ids=(), n=args.n)
    rng = np.random.default_rng(0)
    prompts = rng.integers(0, args.vocab, (args.prompts, args.prompt_len)).astype(np.int32)
    mask = np.ones_like(prompts, bool)
    b = args.prompts * args.n
    print(
        f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}"
    )
    print(
        f"model: {cfg.num_params / 1e6:.1f}M params (L={cfg.num_layers} D={cfg.hidden_size} "
        f"V={cfg.vocab_size}), {args.dtype}; batch {b} sequences x ({args.prompt_len} prompt + "
        f"{args.response_len} response) tokens, {args.mini_batches} mini-batches"
    )

    def rollout():
        out = generate(
            state.params, prompts, mask, np.arange(args.prompts), spec=spec, config_base=cfg, seed=1
        )
        return np.asarray(out.tokens)

    def batch_from(responses):
        tokens = np.concatenate([np.repeat(prompts, args.n, 0), responses], 1)
        return {
            "tokens": tokens,
            "mask": np.ones_like(tokens, bool),
            "resp_mask": np.ones(responses.shape, np.float32),
            "adv": rng.standard_normal(responses.shape).astype(np.float32),  # random: timing only
        }

    def old_logp(batch):
        lp, _ = train_step.forward_logprobs(state.params, batch["tokens"], batch["mask"], step_cfg)
        batch["logp_old"] = np.asarray(lp)
        batch["weights"] = np.asarray(1 + 0.2 * (1 - np.exp(batch["logp_old"])), np.float32)
        return batch

    def updates(st, batch):
        per = b // args.mini_batches
        for i in range(args.mini_batches):
            st, m = train_step.update(
                st, {k: v[i * per : (i + 1) * per] for k, v in batch.items()}, step_cfg
            )
        jax.block_until_ready(m)
        return st

    # Warm-up (compilation) of all three phases.
    batch = old_logp(batch_from(rollout()))
    state = updates(state, batch)
    t0 = time.perf_counter()
    responses = rollout()
    t1 = time.perf_counter()
    batch = old_logp(batch_from(responses))
    t2 = time.perf_counter()
    state = updates(state, batch)
    t3 = time.perf_counter()
    gen_tokens = responses.size
    seq = args.prompt_len + args.response_len
    flops = train_flops(cfg, b * seq, seq)
    peak = matmul_peak(dtype)
    mfu = flops / (t3 - t2) / peak
    print(f"\n{'phase':<22}{'seconds':>10}{'tokens/s':>14}")
    print(f"{'rollout (generate)':<22}{t1 - t0:>10.3f}{gen_tokens / (t1 - t0):>14.1f}")
    print(f"{'old log-probs':<22}{t2 - t1:>10.3f}{b * seq / (t2 - t1):>14.1f}")
    print(f"{'updates':<22}{t3 - t2:>10.3f}{b * seq / (t3 - t2):>14.1f}")
    print(f"{'whole step':<22}{t3 - t0:>10.3f}{gen_tokens / (t3 - t0):>14.1f}  (response tokens)")
    print(
        f"\nupdate model FLOPs {flops / 1e9:.1f} GFLOP in {t3 - t2:.3f}s = "
        f"{flops / (t3 - t2) / 1e9:.1f} GFLOP/s; measured {args.dtype} matmul peak "
        f"{peak / 1e9:.1f} GFLOP/s; MFU {100 * mfu:.1f}%"
    )


if __name__ == "__main__":
    main()
