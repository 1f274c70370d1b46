"""Per-chip memory of the pod presets (configs/pods.py): arithmetic, and XLA's compiled figures.

Two estimates per preset, printed as one table per preset:

  * arithmetic: the docstring arithmetic of configs/pods.py (params, gradients, AdamW state, remat
    residuals, attention probabilities kept for the backward pass, KV cache), computed from the
    model shapes; the per-chip params + optimizer bytes come from the real sharding of every leaf
    (`jax.eval_shape` + `tree_shardings` on an `AbstractMesh` of the slice's size);
  * compiled: `jax.jit(f).lower(*abstract args).compile().memory_analysis()` of the program the
    preset runs, for the CPU backend with as many simulated devices as the slice has chips (a
    subprocess with --xla_force_host_platform_device_count=CHIPS), so the figures are per device
    after SPMD partitioning. Every argument is a ShapeDtypeStruct with its NamedSharding: nothing is
    allocated. The programs: the DAPO `update` (one mini-batch, all micro-batches), the old-policy
    `forward_logprobs` on one micro-batch (what a per-micro-batch pass would run) and on the whole
    step batch (what dlogp-train runs today), one rollout round (`generate`: prefill + decode loop
    for gen_prompts x n sequences); for the 32B pair `score_tokens` on one batch and the
    extrapolating two-model `generate`.

Depth scaling: compiling 28-64 layers at full width on CPU is slow, so each program is compiled at
2 and 3 layers and extrapolated linearly, m(L) = m(2) + (L - 2) (m(3) - m(2)); everything that
grows with depth (weights, optimizer state, KV cache, remat residuals) is linear in L, and the
per-layer scratch of a scanned layer is the same at any depth. (Not 1 layer: XLA removes a
loop of trip count 1, which changes the buffer assignment.)
Peak = arguments + outputs - aliased (donated) + temporaries.

Caveats: CPU buffer assignment is not TPU's (no TPU-specific fusion or memory-space assignment;
XLA:CPU may upcast bf16 matmuls to f32), so read the compiled figures as an upper-leaning estimate of
the same arrays, not a TPU measurement.

Run:
    python benchmarks/presets_memory.py                        # all presets (a few minutes)
    python benchmarks/presets_memory.py --preset score_qwen2p5_32b_v5p32
    python benchmarks/presets_memory.py --no-compile           # arithmetic only (seconds)
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GB = 1e9
QWEN_STOPS = (151643, 151645)  # <|endoftext|>, <|im_end|> of Qwen2.5 / Qwen3 (pad: the first)


def load_pods():
    spec = importlib.util.spec_from_file_location(
        "dlogp_configs_pods", ROOT / "configs" / "pods.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------ shared helpers
def abstract_mesh(spec: str, chips: int):
    from jax.sharding import AbstractMesh, AxisType

    from dlogp_jax.sharding import MESH_AXES, parse_mesh_spec

    sizes = parse_mesh_spec(spec, chips)
    return AbstractMesh(
        tuple(sizes[a] for a in MESH_AXES), MESH_AXES, axis_types=(AxisType.Auto,) * 3
    )


def abstract_params(model, mesh, dtype):
    """ShapeDtypeStructs of the params tree with their NamedShardings on `mesh`."""
    import jax

    from dlogp_jax.model import transformer
    from dlogp_jax.sharding import tree_shardings

    shapes = jax.eval_shape(
        functools.partial(transformer.init, config=model, dtype=dtype), jax.random.key(0)
    )
    shardings = tree_shardings(mesh, transformer.param_axes(model), shapes)
    return jax.tree.map(
        lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh), shapes, shardings
    )


def shard_bytes(tree) -> int:
    """Bytes of one device's shards of a tree of sharded ShapeDtypeStructs."""
    import jax
    import numpy as np

    return sum(
        math.prod(x.sharding.shard_shape(x.shape)) * np.dtype(x.dtype).itemsize
        for x in jax.tree.leaves(tree)
    )


def abstract_opt_state(params, opt_cfg, updates_per_step: int):
    """The AdamW state of `params`, each leaf sharded like the param of its shape (mu, nu)."""
    import jax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from dlogp_jax.rl.train_state import make_optimizer

    mesh = jax.tree.leaves(params)[0].sharding.mesh
    by_shape = {p.shape: p.sharding for p in jax.tree.leaves(params)}
    state = jax.eval_shape(make_optimizer(opt_cfg, updates_per_step).init, params)

    def place(x):
        sharding = by_shape[x.shape] if x.ndim else NamedSharding(mesh, P())
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)

    return jax.tree.map(place, state)


def preset_setup(name: str):
    """(pods module, preset dict, ConfigDict, ModelConfig at full depth, chips, hosts)."""
    from dlogp_jax.model.config import preset as model_preset

    pods = load_pods()
    desc = pods.PRESETS[name]
    config = pods.get_config(name)
    chips, hosts = pods.SLICES[desc["slice"]]
    model = model_preset(desc["model"], dtype="bfloat16")
    return pods, desc, config, model, chips, hosts


# ------------------------------------------------------------------------------ arithmetic
def arithmetic(name: str) -> list[tuple[str, float]]:
    """Rows (what, bytes per chip) of the paper arithmetic; sharded leaves measured exactly."""
    import jax.numpy as jnp

    from dlogp_jax.rl.train_state import OptimizerConfig
    from dlogp_jax.sharding import parse_mesh_spec

    pods, desc, c, m, chips, hosts = preset_setup(name)
    mesh = abstract_mesh(c.mesh, chips)
    sizes = parse_mesh_spec(c.mesh, chips)
    batch_ways, tp = sizes["data"] * sizes["fsdp"], sizes["tensor"]
    kv_local = max(m.num_kv_heads // tp, 1) if m.num_kv_heads % tp == 0 else m.num_kv_heads
    q_local = m.num_heads // tp if m.num_heads % tp == 0 else m.num_heads
    rows = []
    if desc["cli"] == "dapo":
        params = abstract_params(m, mesh, jnp.float32)
        opt = abstract_opt_state(params, OptimizerConfig(**c.optimizer), c.trainer.mini_batches)
        p_bytes = shard_bytes(params)
        lq = c.max_prompt_len + c.rollout.max_response_len
        seqs_mini = c.rollout.train_prompts * c.rollout.n // c.trainer.mini_batches
        b = seqs_mini // c.trainer.micro_batches // batch_ways
        resid = m.num_layers * b * lq * m.hidden_size * 2
        attn = b * q_local * lq * lq * (4 + 2)
        mlp = 4 * b * lq * (m.intermediate_size // tp) * 2
        seqs_gen = c.rollout.gen_prompts * c.rollout.n // batch_ways
        kv = seqs_gen * lq * m.num_layers * kv_local * m.head_dim * 2 * 2
        state = 2 * p_bytes + shard_bytes(opt)
        rows += [
            ("params fp32 (sharded leaves)", p_bytes),
            ("grads fp32", p_bytes),
            ("AdamW mu + nu fp32 (sharded leaves)", shard_bytes(opt)),
            (f"update: remat residuals (b={b}, Lq={lq})", resid),
            ("update: attention probs of one layer (fp32 + bf16)", attn),
            ("update: MLP activations of one layer", mlp),
            ("update total (state + the three above)", state + resid + attn + mlp),
            (f"rollout: KV cache ({seqs_gen} seqs/chip x {lq} slots)", kv),
            ("rollout total (state + KV cache)", state + kv),
        ]
    else:
        params = abstract_params(m, mesh, jnp.bfloat16)
        p_bytes = 2 * shard_bytes(params)
        rows.append(("base + RL params bf16 (sharded leaves)", p_bytes))
        if desc["cli"] == "sample":
            lq = max(int(b) for b in c.prompt_buckets.split(",")) + c.max_new_tokens
            seqs = c.batch_prompts * c.n // batch_ways
            kv = 2 * seqs * lq * m.num_layers * kv_local * m.head_dim * 2 * 2
            rows += [
                (f"sample: both KV caches ({seqs} seqs/chip x {lq} slots)", kv),
                ("sample total (params + KV caches)", p_bytes + kv),
            ]
        else:
            rows_chip = c.batch_size // batch_ways
            hidden = 2 * rows_chip * c.max_length * m.hidden_size * 2
            scores = rows_chip * kv_local * (q_local // kv_local) * 512 * c.max_length * 4
            rows += [
                (
                    f"score: hidden states of both models ({rows_chip} rows x {c.max_length})",
                    hidden,
                ),
                ("score: one 512-query block of fp32 attention scores", scores),
                ("score total (params + the two above)", p_bytes + hidden + scores),
            ]
    return rows


# ------------------------------------------------------------------------------ compiled (worker)
def _memory(compiled) -> dict[str, int]:
    ma = compiled.memory_analysis()
    out = {
        "arguments": ma.argument_size_in_bytes,
        "outputs": ma.output_size_in_bytes,
        "aliased": ma.alias_size_in_bytes,
        "temporaries": ma.temp_size_in_bytes,
    }
    out["peak"] = out["arguments"] + out["outputs"] - out["aliased"] + out["temporaries"]
    return out


def _batch_struct(shape, dtype, mesh):
    import jax

    from dlogp_jax.sharding import named_sharding

    sharding = named_sharding(mesh, ("act_batch",) + (None,) * (len(shape) - 1), shape)
    return jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)


def _train_programs(c, model, mesh):
    """{program: (jitted fn, args, kwargs)} of a DAPO preset, for the given (reduced) model."""
    import jax
    import jax.numpy as jnp

    from dlogp_jax.rl import train_step
    from dlogp_jax.rl.dapo_loss import LossConfig
    from dlogp_jax.rl.rollout import RolloutConfig
    from dlogp_jax.rl.train_state import OptimizerConfig, TrainState
    from dlogp_jax.runs import TrainerSettings, from_dict
    from dlogp_jax.sampling import DecodeSpec
    from dlogp_jax.sampling.decode import _generate

    trainer = from_dict(TrainerSettings, c.trainer.to_dict())
    rollout = from_dict(RolloutConfig, c.rollout.to_dict())
    loss, opt = LossConfig(**c.loss), OptimizerConfig(**c.optimizer)
    params = abstract_params(model, mesh, jnp.float32)
    state = TrainState(
        step=jax.ShapeDtypeStruct((), jnp.int32, sharding=jax.NamedSharding(mesh, jax.P())),
        params=params,
        opt_state=abstract_opt_state(params, opt, trainer.mini_batches),
        rng=jax.ShapeDtypeStruct((2,), jnp.uint32, sharding=jax.NamedSharding(mesh, jax.P())),
    )
    tp, m = c.max_prompt_len, rollout.max_response_len
    vocab_limit = 151665  # len(tokenizer) of Qwen2.5 / Qwen3
    cfg = train_step.StepConfig(
        model=model,
        loss=loss,
        prompt_len=tp,
        vocab_limit=vocab_limit,
        chunk_tokens=trainer.chunk_tokens,
        micro_batches=trainer.micro_batches,
        remat=trainer.remat,
        optimizer=opt,
        updates_per_step=trainer.mini_batches,
    )

    def batch(b, with_step_inputs):
        out = {
            "tokens": _batch_struct((b, tp + m), jnp.int32, mesh),
            "mask": _batch_struct((b, tp + m), jnp.bool_, mesh),
        }
        if with_step_inputs:
            for k in ("resp_mask", "adv", "weights", "logp_old"):
                out[k] = _batch_struct((b, m), jnp.float32, mesh)
        return out

    total = rollout.train_prompts * rollout.n
    mini = total // trainer.mini_batches
    micro = mini // trainer.micro_batches
    spec = DecodeSpec(
        mode="single",
        temperature=rollout.temperature,
        top_p=rollout.top_p,
        max_new_tokens=m,
        stop_ids=QWEN_STOPS,
        pad_id=QWEN_STOPS[0],
        vocab_limit=vocab_limit,
        n=rollout.n,
    )
    p = rollout.gen_prompts
    gen_args = (params, None)
    gen_kw = dict(
        **_prompt_structs(p, tp, mesh),
        spec=spec,
        config_base=model,
        config_rl=None,
        cache_length=tp + m,
    )
    b_micro, b_all = batch(micro, False), batch(total, False)
    forward = train_step.forward_logprobs
    return {
        f"update (mini-batch of {mini} seqs)": (
            train_step.update,
            (state, batch(mini, True)),
            {"cfg": cfg},
        ),
        f"old-logp pass, one micro-batch ({micro} seqs)": (
            forward,
            (params, b_micro["tokens"], b_micro["mask"]),
            {"cfg": cfg},
        ),
        f"old-logp pass, whole step batch ({total} seqs, today)": (
            forward,
            (params, b_all["tokens"], b_all["mask"]),
            {"cfg": cfg},
        ),
        f"rollout round ({p} prompts x {rollout.n})": (_generate, gen_args, gen_kw),
    }


def _prompt_structs(p: int, tp: int, mesh) -> dict:
    """Abstract keyword inputs of `_generate`: prompt tokens [P, Tp], prompt mask [P, Tp], prompt
    index [P], seed [] and the traced knobs (τ, γ)."""
    import jax
    import jax.numpy as jnp

    from dlogp_jax.sampling.steps import Knobs

    scalar = lambda dtype: jax.ShapeDtypeStruct(
        (), dtype, sharding=jax.NamedSharding(mesh, jax.P())
    )
    return dict(
        prompt_tokens=_batch_struct((p, tp), jnp.int32, mesh),
        prompt_mask=_batch_struct((p, tp), jnp.bool_, mesh),
        prompt_index=_batch_struct((p,), jnp.int32, mesh),
        seed=scalar(jnp.int32),
        knobs=Knobs(threshold=scalar(jnp.float32), gamma=scalar(jnp.float32)),
    )


def _pair_programs(c, model, mesh, cli):
    import jax.numpy as jnp

    from dlogp_jax import logprobs
    from dlogp_jax.sampling import DecodeSpec
    from dlogp_jax.sampling.decode import _generate

    params = abstract_params(model, mesh, jnp.bfloat16)
    vocab_limit = 151665
    if cli == "score":
        b, t = c.batch_size, c.max_length
        args = (
            params,
            _batch_struct((b, t), jnp.int32, mesh),
            _batch_struct((b, t), jnp.int32, mesh),
            _batch_struct((b, t), jnp.bool_, mesh),
            params,
        )
        kw = dict(
            config_base=model,
            config_rl=model,
            vocab_limit=vocab_limit,
            chunk_tokens=c.chunk_tokens,
        )
        return {f"score_tokens, two models ({b} rows x {t})": (logprobs.score_tokens, args, kw)}
    tp = max(int(x) for x in c.prompt_buckets.split(","))
    spec = DecodeSpec(
        mode="extrapolate",
        criterion="dlogp",
        threshold=-0.3,
        gamma=0.05,
        temperature=c.temperature,
        top_p=c.top_p,
        max_new_tokens=c.max_new_tokens,
        stop_ids=QWEN_STOPS,
        pad_id=QWEN_STOPS[0],
        vocab_limit=vocab_limit,
        n=c.n,
    )
    p = c.batch_prompts
    args = (params, params)
    kw = dict(
        **_prompt_structs(p, tp, mesh),
        spec=spec,
        config_base=model,
        config_rl=model,
        cache_length=tp + c.max_new_tokens,
    )
    return {f"generate, extrapolate, two models ({p} prompts x {c.n})": (_generate, args, kw)}


def worker(name: str, layers: tuple[int, ...]) -> None:
    """Runs in a subprocess with CHIPS simulated devices; prints one JSON line per program."""
    import jax

    from dlogp_jax.sharding import make_mesh

    _, desc, c, full, chips, _ = preset_setup(name)
    if jax.device_count() != chips:
        raise SystemExit(f"worker needs {chips} devices, has {jax.device_count()}")
    mesh = make_mesh(c.mesh)
    results: dict[str, dict[int, dict]] = {}
    for n_layers in layers:
        model = full.replace(num_layers=n_layers)
        if desc["cli"] == "dapo":
            programs = _train_programs(c, model, mesh)
        else:
            programs = _pair_programs(c, model, mesh, desc["cli"])
        for prog, (fn, args, kw) in programs.items():
            start = time.perf_counter()
            with jax.set_mesh(mesh):
                compiled = fn.lower(*args, **kw).compile()
            mem = _memory(compiled)
            mem["compile_s"] = round(time.perf_counter() - start, 1)
            results.setdefault(prog, {})[n_layers] = mem
            print(json.dumps({"program": prog, "layers": n_layers, **mem}), flush=True)
    print(json.dumps({"done": True, "full_layers": full.num_layers}), flush=True)


def compiled(name: str, layers=(2, 3)) -> tuple[int, dict[str, dict]]:
    """Runs the worker in a subprocess; returns (full depth, {program: {layers: memory}})."""
    _, _, _, full, chips, _ = preset_setup(name)
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={chips}"
    env["JAX_PLATFORMS"] = "cpu"
    cmd = [sys.executable, __file__, "--worker", name, "--layers", ",".join(map(str, layers))]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(f"worker for {name} failed:\n{proc.stderr[-4000:]}")
    out: dict[str, dict] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{") and '"program"' in line:
            row = json.loads(line)
            out.setdefault(row.pop("program"), {})[row.pop("layers")] = row
    return full.num_layers, out


def scaled(by_layers: dict, full_layers: int) -> dict[str, float]:
    """Linear extrapolation from the two compiled depths to `full_layers`."""
    (l0, m0), (l1, m1) = sorted(by_layers.items())
    keys = ("arguments", "outputs", "aliased", "temporaries", "peak")
    return {k: m0[k] + (full_layers - l0) * (m1[k] - m0[k]) / (l1 - l0) for k in keys}


# ------------------------------------------------------------------------------ report
def report(name: str, compile_programs: bool) -> None:
    pods, desc, c, m, chips, hosts = preset_setup(name)
    hbm = pods.HBM_BYTES_PER_CHIP
    print(
        f"\n## {name}: {desc['slice']} ({chips} chips, {hosts} hosts), mesh {c.mesh}, "
        f"{m.num_params / 1e9:.2f}B params, {m.num_layers} layers"
    )
    print("\narithmetic (per chip)")
    for what, b in arithmetic(name):
        print(f"  {what:<62} {b / GB:8.2f} GB  ({100 * b / hbm:5.1f}% of {hbm / GB:.0f} GB)")
    if not compile_programs:
        return
    start = time.perf_counter()
    full_layers, progs = compiled(name)
    depths = sorted(next(iter(progs.values())))
    print(
        f"\ncompiled, CPU backend, {chips} simulated devices, {depths[0]} and {depths[1]} layers "
        f"scaled to {full_layers} (per device; {time.perf_counter() - start:.0f} s)"
    )
    print(
        f"  {'program':<54} {'args':>7} {'out':>7} {'alias':>7} {'temp':>7} {'peak':>7} "
        f"| peak at {depths[0]}, {depths[1]} layers  GB"
    )
    for prog, by_layers in progs.items():
        s = scaled(by_layers, full_layers)
        flag = "" if s["peak"] <= hbm else "  > HBM"
        raw = ", ".join(f"{by_layers[d]['peak'] / GB:.2f}" for d in depths)
        figures = " ".join(
            f"{s[k] / GB:7.2f}" for k in ("arguments", "outputs", "aliased", "temporaries", "peak")
        )
        print(f"  {prog:<54} {figures} | {raw}{flag}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", action="append", help="preset name (repeatable); default: all")
    ap.add_argument("--no-compile", action="store_true", help="arithmetic only")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--layers", default="2,3", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, tuple(int(x) for x in args.layers.split(",")))
        return
    names = args.preset or list(load_pods().PRESETS)
    print("Per-chip memory of configs/pods.py presets (GB = 1e9 bytes; v5p HBM 95 GB per chip)")
    for name in names:
        report(name, not args.no_compile)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
