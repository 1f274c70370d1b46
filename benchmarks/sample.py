"""Decoding throughput: `dlogp_jax.sampling.generate` vs a PyTorch/transformers two-model loop.

Measures generated tokens per second (batch × new tokens / wall time of one call, after a warm-up
call that compiles) for:

  * jax extrapolate:  `generate(mode="extrapolate", criterion="dlogp")`, two models in lock-step in one
    compiled `lax.while_loop`, criteria and re-draws exact over the full vocabulary;
  * jax extrapolate (faithful): the same with the official top-50 approximation;
  * torch extrapolate: `third_party/torch_decode_reference.decode_pair`, the official algorithm on
    transformers models with KV caches: sampling and top-K on the device (torch), criterion and mixing
    per sequence on the host in Python/NumPy, as `extrapolate/extrapolate.py` does;
  * single-model sampling on both sides (`mode="single"` vs `decode_single`).

Models: random Qwen2-shaped checkpoints (vocabulary 151,936, untied output layer as Qwen2.5-7B/32B, GQA, q/k/v biases), about
30M and 100M parameters (mostly the embedding and output matrices), fp32; the RL model is the base
model with a perturbed output layer. Both
sides load the same checkpoints, written with `dlogp_jax.model.hf_weights.export_params` to a temporary
directory. The output layer is scaled so the next-token distributions are peaked (logit std ≈ 3) as in
trained models, not near-uniform. Settings as the official runs: temperature 1, top-p 0.7, K = 50.

Both sides draw the top-p nucleus differently: torch sorts the vocabulary (as vLLM and HF do), the JAX
sampler finds the same cut by bisection (`sampling/strategies.py`). Throughput is measured on whatever
CPU/accelerator JAX and torch see; figures are printed, not asserted.

Run:
    python benchmarks/sample.py            # both sizes, batch 16, 128 new tokens
    python benchmarks/sample.py --quick    # tiny smoke run
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from dlogp_jax.model import hf_weights, transformer
from dlogp_jax.model.config import ModelConfig, RopeConfig
from dlogp_jax.sampling import DecodeSpec, generate, left_pad

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from third_party import torch_decode_reference as ref  # noqa: E402

VOCAB = 151_936
LOGIT_STD = 3.0
RL_NOISE = 0.3  # RL output layer = base + RL_NOISE × its std × N(0, 1)
SIZES = {  # name: (hidden, intermediate, layers, heads, kv_heads)
    "30M": (96, 512, 4, 4, 2),
    "100M": (320, 1024, 4, 8, 2),
    "quick": (64, 128, 2, 4, 2),
}


def config_for(size: str, vocab: int) -> ModelConfig:
    d, f, n_layers, n, k = SIZES[size]
    return ModelConfig(
        model_type="qwen2",
        vocab_size=vocab,
        hidden_size=d,
        intermediate_size=f,
        num_layers=n_layers,
        num_heads=n,
        num_kv_heads=k,
        head_dim=d // n,
        qkv_bias=True,
        tie_embeddings=False,
        rope=RopeConfig(theta=1e6),
    )


def write_pair(out: Path, config: ModelConfig, seed: int = 0):
    """Random base and RL (= base + output-layer noise) checkpoints; returns their directories."""
    k_base, k_noise = jax.random.split(jax.random.key(seed))
    base = transformer.init(k_base, config)
    # A larger output layer peaks the next-token distributions (logit std ≈ LOGIT_STD) as in trained
    # models. (Untied: with tied random embeddings a large scale makes every token repeat its input.)
    scale = LOGIT_STD / (0.02 * config.hidden_size**0.5)
    base["lm_head_dv"] = base["lm_head_dv"] * scale
    rl = dict(base)
    noise = RL_NOISE * 0.02 * scale * jax.random.normal(k_noise, base["lm_head_dv"].shape)
    rl["lm_head_dv"] = base["lm_head_dv"] + noise
    return (
        hf_weights.export_params(out / "base", base, config),
        hf_weights.export_params(out / "rl", rl, config),
    )


def timed(fn, repeats: int = 1):
    fn()  # warm-up (compilation on the JAX side)
    start = time.perf_counter()
    for _ in range(repeats):
        result = fn()
    return (time.perf_counter() - start) / repeats, result


def bench_size(size: str, args) -> dict[str, float]:
    vocab = args.vocab
    config = config_for(size, vocab)
    rng = np.random.default_rng(0)
    prompts = [
        list(rng.integers(0, vocab, size=rng.integers(args.prompt_len // 2, args.prompt_len + 1)))
        for _ in range(args.batch)
    ]
    tokens, mask = left_pad(prompts)
    n_tokens = args.batch * args.new_tokens
    common = dict(temperature=1.0, top_p=0.7, max_new_tokens=args.new_tokens, vocab_limit=vocab)
    extrapolate = DecodeSpec(
        mode="extrapolate", criterion="dlogp", threshold=args.threshold, gamma=args.gamma, **common
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        base_dir, rl_dir = write_pair(Path(tmp), config)
        _, params_base = hf_weights.load_params(base_dir, config)
        _, params_rl = hf_weights.load_params(rl_dir, config)
        print(
            f"\n== {size}: {config.num_params / 1e6:.1f}M parameters per model, vocab {vocab}, "
            f"batch {args.batch}, {args.new_tokens} new tokens, prompts <= {tokens.shape[1]} tokens"
        )

        def jax_run(spec, two=True):
            def run():
                rl = dict(params_rl=params_rl, config_rl=config) if two else {}
                out = generate(
                    params_base,
                    tokens,
                    mask,
                    np.arange(args.batch),
                    spec=spec,
                    config_base=config,
                    seed=0,
                    **rl,
                )
                return jax.block_until_ready(out)

            return run

        secs, out = timed(jax_run(extrapolate))
        results["jax extrapolate"] = n_tokens / secs
        print(
            f"jax   extrapolate (exact)     {n_tokens / secs:9.1f} tok/s  ({secs:.2f} s, "
            f"replacement rate {float(np.mean(out.replacement_rate)):.3f})"
        )
        secs, out = timed(jax_run(extrapolate.replace(faithful=True)))
        results["jax extrapolate faithful"] = n_tokens / secs
        print(
            f"jax   extrapolate (faithful)  {n_tokens / secs:9.1f} tok/s  ({secs:.2f} s, "
            f"replacement rate {float(np.mean(out.replacement_rate)):.3f})"
        )
        secs, _ = timed(jax_run(DecodeSpec(**common), two=False))
        results["jax single"] = n_tokens / secs
        print(f"jax   single                  {n_tokens / secs:9.1f} tok/s  ({secs:.2f} s)")

        import torch
        import transformers

        transformers.utils.logging.disable_progress_bar()
        torch.set_num_threads(args.torch_threads or torch.get_num_threads())
        model_base, model_rl = ref.load_torch_model(base_dir), ref.load_torch_model(rl_dir)

        def run(max_new_tokens):
            return ref.decode_pair(
                model_base,
                model_rl,
                prompts,
                max_new_tokens=max_new_tokens,
                criterion="dlogp",
                threshold=args.threshold,
                gamma=args.gamma,
                temperature=1.0,
                top_p=0.7,
                vocab_limit=vocab,
            )

        run(2)  # warm-up
        start = time.perf_counter()
        out = run(args.new_tokens)
        secs = time.perf_counter() - start
        results["torch extrapolate"] = n_tokens / secs
        print(
            f"torch extrapolate (official)  {n_tokens / secs:9.1f} tok/s  ({secs:.2f} s, "
            f"replacement rate {out['selected'].mean():.3f}, {torch.get_num_threads()} threads)"
        )
        single = lambda m: ref.decode_single(
            model_base, prompts, max_new_tokens=m, top_p=0.7, vocab_limit=vocab
        )
        single(2)
        start = time.perf_counter()
        single(args.new_tokens)
        secs = time.perf_counter() - start
        results["torch single"] = n_tokens / secs
        print(f"torch single                  {n_tokens / secs:9.1f} tok/s  ({secs:.2f} s)")

        # sanity: greedy single-model decoding agrees between the two implementations
        greedy = DecodeSpec(temperature=0, max_new_tokens=8, vocab_limit=vocab)
        ours = generate(
            params_base, tokens, mask, np.arange(args.batch), spec=greedy, config_base=config
        )
        theirs = ref.decode_single(
            model_base, prompts, max_new_tokens=8, temperature=0, vocab_limit=vocab
        )
        agree = float(np.mean(np.asarray(ours.tokens) == theirs))
        print(f"greedy parity (8 tokens x {args.batch}): {agree:.3f} of tokens equal")
    ratio = results["jax extrapolate"] / results["torch extrapolate"]
    ratio_single = results["jax single"] / results["torch single"]
    print(f"ratio jax/torch: extrapolate {ratio:.2f}x, single {ratio_single:.2f}x")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="30M,100M", help="comma-separated: 30M, 100M")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--prompt-len", type=int, default=32)
    parser.add_argument("--vocab", type=int, default=VOCAB)
    parser.add_argument("--threshold", type=float, default=-1.5, help="τ of the dlogp criterion")
    parser.add_argument("--gamma", type=float, default=0.1)
    parser.add_argument("--torch-threads", type=int, default=0, help="0: torch's default")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    args = parser.parse_args(argv)
    sizes = args.sizes.split(",")
    if args.quick:
        sizes, args.batch, args.new_tokens, args.prompt_len, args.vocab = ["quick"], 4, 8, 8, 1000
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({len(jax.devices())} devices)")
    for size in sizes:
        bench_size(size, args)


if __name__ == "__main__":
    main()
