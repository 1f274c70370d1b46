"""configs/pods.py: every preset builds abstract params with shardings on an abstract mesh of its
slice's size (no devices, nothing allocated), every parameter is split the way the mesh intends (no
dimension silently left replicated), the per-chip params + optimizer bytes match the docstring's
arithmetic, and the batch sizes divide over hosts, mesh and micro-batches."""

import functools
import math

import jax
import jax.numpy as jnp
import pytest

from benchmarks.presets_memory import (
    abstract_mesh,
    abstract_opt_state,
    arithmetic,
    load_pods,
    shard_bytes,
)
from dlogp_jax.model import transformer
from dlogp_jax.model.config import preset as model_preset
from dlogp_jax.rl.train_state import OptimizerConfig
from dlogp_jax.sharding import LOGICAL_RULES, logical_to_spec, parse_mesh_spec, tree_shardings
from tests.cli.configs import get_config

PODS = load_pods()
NAMES = sorted(PODS.PRESETS)
CHIPS_PER_HOST = 4  # v5p
GB = 1e9


def _setup(name):
    desc = PODS.PRESETS[name]
    config = get_config("pods", name)
    chips, hosts = PODS.SLICES[desc["slice"]]
    return desc, config, chips, hosts


def test_the_four_presets_exist_and_others_are_refused():
    assert NAMES == [
        "dapo_qwen2p5_math_7b_v5p64",
        "dapo_qwen3_8b_base_v5p128",
        "sample_qwen2p5_32b_v5p64",
        "score_qwen2p5_32b_v5p32",
    ]
    with pytest.raises(ValueError, match="choose exactly one preset"):
        get_config("pods", None)
    with pytest.raises(ValueError, match="unknown config arg"):
        get_config("pods", "dapo_llama_v5p8")


@pytest.mark.parametrize("name", NAMES)
def test_preset_builds_sharded_abstract_params_on_its_slice(name):
    desc, c, chips, _ = _setup(name)
    sizes = parse_mesh_spec(c.mesh, chips)
    assert math.prod(sizes.values()) == chips and c.mesh == desc["mesh"]
    mesh = abstract_mesh(c.mesh, chips)
    model = model_preset(desc["model"], dtype=c.dtype)
    param_dtype = jnp.float32 if desc["cli"] == "dapo" else jnp.bfloat16
    shapes = jax.eval_shape(
        functools.partial(transformer.init, config=model, dtype=param_dtype), jax.random.key(0)
    )
    axes = transformer.param_axes(model)
    shardings = tree_shardings(mesh, axes, shapes)
    flat_axes = jax.tree.leaves(axes, is_leaf=lambda x: isinstance(x, tuple))
    for ax, s, sh in zip(flat_axes, jax.tree.leaves(shapes), jax.tree.leaves(shardings)):
        intended = logical_to_spec(ax, None, mesh)  # the rules without the divisibility fallback
        assert sh.spec == intended, (ax, s.shape, sh.spec, intended)
        for dim, part in zip(s.shape, sh.spec):
            ways = math.prod(sizes[a] for a in ((part,) if isinstance(part, str) else part or ()))
            assert dim % ways == 0, (ax, s.shape, sh.spec)
    used = {
        a
        for sh in jax.tree.leaves(shardings)
        for p in sh.spec
        if p
        for a in (p if isinstance(p, tuple) else (p,))
    }
    # every weight-sharding mesh axis in use splits some parameter (`data` only splits batches)
    assert {a for a, n in sizes.items() if n > 1 and a != "data"} <= used
    assert set(LOGICAL_RULES) >= {a for ax in flat_axes for a in ax if a}


def _state_bytes_per_chip(name):
    desc, c, chips, _ = _setup(name)
    mesh = abstract_mesh(c.mesh, chips)
    model = model_preset(desc["model"])
    dtype = jnp.float32 if desc["cli"] == "dapo" else jnp.bfloat16
    shapes = jax.eval_shape(
        functools.partial(transformer.init, config=model, dtype=dtype), jax.random.key(0)
    )
    shardings = tree_shardings(mesh, transformer.param_axes(model), shapes)
    params = jax.tree.map(
        lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh), shapes, shardings
    )
    if desc["cli"] != "dapo":
        return model, chips, shard_bytes(params), 0
    opt = abstract_opt_state(params, OptimizerConfig(**c.optimizer), c.trainer.mini_batches)
    return model, chips, shard_bytes(params), shard_bytes(opt)


@pytest.mark.parametrize(
    "name, expected_gb",
    [
        ("dapo_qwen2p5_math_7b_v5p64", 3.8),
        ("dapo_qwen3_8b_base_v5p128", 2.05),
        ("score_qwen2p5_32b_v5p32", 16.4),
        ("sample_qwen2p5_32b_v5p64", 16.4),
    ],
)
def test_per_chip_params_and_optimizer_bytes(name, expected_gb):
    model, chips, params, opt = _state_bytes_per_chip(name)
    if opt:  # DAPO: fp32 params + fp32 grads + AdamW mu, nu: 16 B per parameter, evenly sharded
        assert opt == pytest.approx(2 * params, rel=1e-3)
        total = 2 * params + opt
        assert total == pytest.approx(16 * model.num_params / chips, rel=0.01)
    else:  # base + RL in bf16, replicated over `data`
        total = 2 * params
        assert total == pytest.approx(2 * 2 * model.num_params / 8, rel=0.01)
    assert total / GB == pytest.approx(expected_gb, abs=0.05)  # the figure in configs/pods.py


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith("dapo_")])
def test_dapo_batches_divide_over_hosts_mesh_and_micro_batches(name):
    desc, c, chips, hosts = _setup(name)
    sizes = parse_mesh_spec(c.mesh, chips)
    batch_ways = sizes["data"] * sizes["fsdp"]
    r, t = c.rollout, c.trainer
    assert r.gen_prompts % hosts == 0  # prompt_batches: each host takes an equal slice
    assert r.gen_prompts % batch_ways == 0  # prefill batch sharded over data x fsdp
    assert sizes["tensor"] <= CHIPS_PER_HOST and batch_ways % hosts == 0  # rows within a host
    seqs = r.train_prompts * r.n
    assert seqs % t.mini_batches == 0 and (seqs // t.mini_batches) % t.micro_batches == 0
    assert (seqs // t.mini_batches // t.micro_batches) % batch_ways == 0  # whole sequences per chip
    assert r.max_gen_rounds * r.gen_prompts >= 10 * 1536  # verl's prompt budget per step
    assert c.dtype == "bfloat16" and c.param_dtype == "float32"
    assert (r.n, r.train_prompts, t.mini_batches) == (16, 512, 16)  # the paper's recipe kept
    rows = dict(arithmetic(name))
    assert rows["update total (state + the three above)"] < 0.5 * PODS.HBM_BYTES_PER_CHIP
    assert rows["rollout total (state + KV cache)"] < 0.5 * PODS.HBM_BYTES_PER_CHIP


@pytest.mark.parametrize("name", ["score_qwen2p5_32b_v5p32", "sample_qwen2p5_32b_v5p64"])
def test_32b_pair_batches_divide_and_fit(name):
    desc, c, chips, _ = _setup(name)
    sizes = parse_mesh_spec(c.mesh, chips)
    batch_ways = sizes["data"] * sizes["fsdp"]
    model = model_preset(desc["model"])
    tp = sizes["tensor"]
    assert model.num_kv_heads % tp == 0 and model.num_heads % tp == 0  # tensor-parallel heads
    rows = arithmetic(name)
    assert rows[-1][1] < 0.7 * PODS.HBM_BYTES_PER_CHIP
    if desc["cli"] == "score":
        assert c.batch_size % batch_ways == 0 and c.max_length >= 20000 + 512
    else:
        assert (c.batch_prompts * c.n) % batch_ways == 0  # decode rows split over data x fsdp
        assert (c.n, c.top_p, c.max_new_tokens) == (32, 0.7, 20000)  # configs/sample.py:paper
