"""Memory model of the paged engine at the paper's scale (arithmetic only: no arrays, seconds).

For the Qwen2.5-Math-7B pair and the Qwen2.5-32B pair (bf16 weights and KV, both models of the
pair), on H100 (80 GB, 3.35 TB/s), H200 (141 GB, 4.8 TB/s) and TPU v5p (95 GB, 2.765 TB/s) chips,
with AIME-like lengths (prompt 200 tokens; new tokens lognormal with median 6,000 and σ = 0.6,
capped at max_new = 20,000; seeded draws) and n = 32 samples per prompt:

  * static (`sampling.generate`): every sequence reserves prompt + max_new KV slots per model,
    its n samples each copy the prompt's cache, a batch runs until its longest sequence ends,
    and every step reads all prompt + max_new slots;
  * paged (`engine.run_paged`): a sequence in flight holds its live tokens rounded up to pages
    (Z = 16), the n samples share the prompt pages, and slots refill as sequences end, so at
    steady state the mean KV of an in-flight sequence is the length-biased mean
    E[L²] / (2 E[L]) + prompt / n (long sequences are in flight longer); attention reads only
    live pages.

Per chip: HBM × 0.9 (workspace, activations and fragmentation reserve) minus the chip's share
of the pair's weights is the KV budget; weights and KV heads are split over a tensor-parallel
group of `tp` chips (1 for the 7B pair; 4 for the 32B pair, whose 131 GB of weights fit no
single chip with room for a cache). Sequences that fit = budget / KV per sequence (per chip).

Bandwidth roofline of one decode step of the pair (both models, lock-step): every step reads
the chip's weights once plus the KV each sequence attends to (static: all reserved slots;
paged: live tokens), at the chip's HBM bandwidth; tokens/s per chip = sequences / step time ×
useful fraction (static: E[L] / E[longest of a batch of B]; paged: 1). FLOPs are not the bound
at these batch sizes (arithmetic intensity ≈ B FLOP per weight byte, well under the chips'
ridge points), so this is the rate an engine can approach, not a measurement.

Run:
    python benchmarks/engine_memory.py          # the table in docs/operators.md
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dlogp_jax.model.config import preset

GB = 1e9
RESERVE = 0.9  # fraction of HBM usable for weights + KV
PROMPT, N, MAX_NEW, MEDIAN, SIGMA, PAGE = 200, 32, 20_000, 6_000, 0.6, 16
BYTES = 2  # bf16


@dataclasses.dataclass(frozen=True)
class Chip:
    name: str
    hbm: float  # bytes
    bandwidth: float  # bytes/s


CHIPS = (
    Chip("H100", 80 * GB, 3.35e12),
    Chip("H200", 141 * GB, 4.8e12),
    Chip("v5p", 95 * GB, 2.765e12),
)
PAIRS = (("Qwen2.5-Math-7B pair", "qwen2p5_math_7b", 1), ("Qwen2.5-32B pair", "qwen2p5_32b", 4))


def lengths(draws: int = 200_000, seed: int = 0) -> np.ndarray:
    """[draws] new-token counts: lognormal(median 6k, σ 0.6), capped at 20k."""
    rng = np.random.default_rng(seed)
    return np.minimum(np.round(MEDIAN * np.exp(SIGMA * rng.standard_normal(draws))), MAX_NEW)


def static_utilization(new: np.ndarray, batch: int, seed: int = 1) -> float:
    """E[L] / E[max L over a batch]: the computed token slots that are real tokens."""
    rng = np.random.default_rng(seed)
    batches = rng.choice(new, size=(2_000, max(batch, 1)))
    return float(new.mean() / batches.max(axis=1).mean())


def kv_per_token(config) -> float:
    """Bytes of k and v per token of one model."""
    return 2 * config.num_layers * config.num_kv_heads * config.head_dim * BYTES


def rows():
    """One dict per (pair, chip): sequences per chip and roofline tokens/s, static and paged."""
    new = lengths()
    mean_paged = float((new**2).mean() / (2 * new.mean())) + PROMPT / N + PAGE / 2
    out = []
    for label, name, tp in PAIRS:
        config = preset(name)
        weights = 2 * config.num_params * BYTES / tp  # both models, this chip's share
        per_token = 2 * kv_per_token(config) / tp  # both models
        for chip in CHIPS:
            budget = chip.hbm * RESERVE - weights
            static_seq = (PROMPT + MAX_NEW) * per_token
            paged_seq = mean_paged * per_token
            b_static = max(int(budget // static_seq), 0)
            b_paged = max(int(budget // paged_seq), 0)
            step_static = (weights + b_static * static_seq) / chip.bandwidth
            step_paged = (weights + b_paged * paged_seq) / chip.bandwidth
            util = static_utilization(new, b_static) if b_static else 0.0
            out.append(
                dict(
                    pair=label,
                    chip=chip.name,
                    tp=tp,
                    weights_gb=weights / GB,
                    budget_gb=budget / GB,
                    static_seqs=b_static,
                    paged_seqs=b_paged,
                    static_tok_s=b_static / step_static * util if b_static else 0.0,
                    paged_tok_s=b_paged / step_paged,
                    static_util=util,
                )
            )
    return out, new, mean_paged


def main():
    table, new, mean_paged = rows()
    print(
        f"lengths: prompt {PROMPT}, new tokens median {np.median(new):.0f}, mean {new.mean():.0f}, "
        f"capped at {MAX_NEW} ({100 * (new >= MAX_NEW).mean():.1f}% hit the cap), n = {N}; "
        f"static reserves {PROMPT + MAX_NEW} slots per sequence, paged holds {mean_paged:.0f} on "
        f"average in flight ({(PROMPT + MAX_NEW) / mean_paged:.1f}x fewer)"
    )
    head = (
        "| pair | chip | tp | weights/chip GB | KV budget/chip GB | seqs/chip static | paged | "
        "ratio | tok/s/chip static (useful) | paged | ratio |"
    )
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for r in table:
        seq_ratio = r["paged_seqs"] / r["static_seqs"] if r["static_seqs"] else float("inf")
        tok_ratio = r["paged_tok_s"] / r["static_tok_s"] if r["static_tok_s"] else float("inf")
        print(
            f"| {r['pair']} | {r['chip']} | {r['tp']} | {r['weights_gb']:.1f} | "
            f"{r['budget_gb']:.1f} | {r['static_seqs'] / r['tp']:.1f} | "
            f"{r['paged_seqs'] / r['tp']:.1f} | {seq_ratio:.1f}x | {r['static_tok_s'] / r['tp']:.0f} "
            f"({100 * r['static_util']:.0f}% useful) | {r['paged_tok_s'] / r['tp']:.0f} | "
            f"{tok_ratio:.1f}x |"
        )


if __name__ == "__main__":
    main()
