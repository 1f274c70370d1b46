"""The paged engine's two-model decode rate on an accelerator against its bandwidth roofline.

A random-weight pair with real Qwen2.5 shapes (`--model qwen2p5_0p5b` default, or qwen2p5_1p5b),
bf16 weights, KV and compute, decodes `--seqs` sequences of a 128-token prompt in lock-step
(mode `extrapolate`: both models every step) for `--max-new` tokens with no stop token, so every
slot stays live and the run measures the steady decode rate. One run compiles, a second is timed.

Roofline: each decode step must read both models' weights once and every live sequence's keys
and values in both caches (the mean live length over the run: prompt + max_new / 2). Its time at
the chip's HBM bandwidth is the bound; the fraction printed is roofline step time / measured
step time, against the chip's published bandwidth (`BANDWIDTH`, by device kind) and against the
copy bandwidth measured in the same run (a 2 GiB bf16 read-and-write). FLOPs are not the bound:
at B sequences a step does about B FLOPs per weight byte, under every chip's ridge point.

Run (one prepared script, as the device tool asks):
    python benchmarks/engine.py --accelerator                 # 0.5B pair, 256 seqs, 512 new
    python benchmarks/engine.py --accelerator --model qwen2p5_1p5b
    python benchmarks/engine.py --accelerator --quick         # CPU smoke run (tiny shapes)
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from dlogp_jax.engine import EngineConfig, run_paged
from dlogp_jax.model import transformer
from dlogp_jax.model.config import PRESETS, ModelConfig
from dlogp_jax.sampling import DecodeSpec

# Published HBM bandwidth (bytes/s) by `jax.Device.device_kind` prefix.
BANDWIDTH = {
    "NVIDIA H200": 4.8e12,
    "NVIDIA H100": 3.35e12,
    "NVIDIA A100": 2.0e12,
    "NVIDIA L4": 0.3e12,
    "TPU v5p": 2.765e12,
    "TPU v5 lite": 0.819e12,
    "TPU v4": 1.2e12,
    "TPU v6 lite": 1.64e12,
}
PROMPT = 128


def model_config(name: str, quick: bool) -> ModelConfig:
    """The pair's shapes in bf16 (tiny ones for the CPU smoke run)."""
    if quick:
        return PRESETS["tiny"](vocab_size=512, dtype="bfloat16")
    return PRESETS[name](dtype="bfloat16")


def copy_bandwidth(gib: float = 2.0, reps: int = 5) -> float:
    """Best bytes/s of `x + 1` over a `gib` GiB bf16 array (one read and one write)."""
    x = jnp.ones((int(gib * 2**30) // 2,), jnp.bfloat16)
    f = jax.jit(lambda a: a + 1)
    f(x).block_until_ready()
    best = math.inf
    for _ in range(reps):
        t = time.perf_counter()
        f(x).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return 2 * x.size * 2 / best


def published_bandwidth() -> tuple[str, float | None]:
    kind = jax.devices()[0].device_kind
    return kind, next((v for k, v in BANDWIDTH.items() if kind.startswith(k)), None)


def run(args) -> None:
    """Builds the pair, times the paged engine and prints tokens/s and roofline fractions."""
    config = model_config(args.model, args.quick)
    seqs, max_new = (8, 32) if args.quick else (args.seqs, args.max_new)
    k_base, k_rl = jax.random.split(jax.random.key(0))
    base = transformer.init(k_base, config, dtype=jnp.bfloat16)
    rl = transformer.init(k_rl, config, dtype=jnp.bfloat16)
    z = args.page_size
    per_seq = math.ceil((PROMPT + max_new) / z) + 1
    engine = EngineConfig(
        num_pages=seqs * per_seq + 2 * seqs + 1,  # every slot at full length: no waiting
        page_size=z,
        max_seqs=seqs,
        round_steps=args.round_steps,
    )
    spec = DecodeSpec(
        mode="extrapolate",
        criterion="dlogp",
        threshold=-0.1,
        gamma=0.1,
        max_new_tokens=max_new,
        stop_ids=(),  # no stop: every slot decodes max_new tokens
        pad_id=0,
        n=seqs,  # one prompt, n = seqs samples sharing its pages
    )
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, config.vocab_size, (1, PROMPT)).astype(np.int32)
    mask = np.ones_like(tokens, bool)
    models = dict(config_base=config, params_rl=rl, config_rl=config)

    def once():
        out, stats = run_paged(
            base, tokens, mask, np.arange(1), spec=spec, seed=0, engine=engine, **models
        )
        jax.block_until_ready(out.tokens)
        return out, stats

    once()  # compile
    start = time.perf_counter()
    out, stats = once()
    wall = time.perf_counter() - start
    generated = int(np.asarray(out.length).sum())
    weight_bytes = 2 * config.num_params * 2  # two models, bf16
    kv_per_token = 2 * 2 * config.num_layers * config.num_kv_heads * config.head_dim * 2
    live = PROMPT + max_new / 2  # mean live length over the run
    step_bytes = weight_bytes + seqs * live * kv_per_token
    step_time = wall / max(stats.decode_steps, 1)
    kind, published = published_bandwidth()
    measured = copy_bandwidth(0.0625 if args.quick else 2.0)
    print(f"device: {kind} ({jax.device_count()} local), platform {jax.default_backend()}")
    print(
        f"pair: 2 x {config.num_params / 1e6:.0f}M params ({'tiny' if args.quick else args.model}),"
        f" bf16; {seqs} sequences x {max_new} new tokens after a {PROMPT}-token prompt"
    )
    print(
        f"paged engine: {generated / wall:,.0f} tokens/s of the pair ({generated} tokens, "
        f"{stats.decode_steps} steps, {stats.rounds} rounds, {wall:.1f} s), "
        f"{step_time * 1e3:.2f} ms/step"
    )
    print(
        f"bytes per step: weights {weight_bytes / 1e9:.2f} GB + KV {seqs * live * kv_per_token / 1e9:.2f}"
        f" GB (mean live length {live:.0f})"
    )
    for name, bandwidth in (("published", published), ("measured copy", measured)):
        if bandwidth:
            roof = step_bytes / bandwidth
            print(
                f"roofline at {name} bandwidth {bandwidth / 1e12:.2f} TB/s: {roof * 1e3:.2f} ms/"
                f"step, {seqs / roof:,.0f} tokens/s; achieved {roof / step_time:.0%}"
            )
