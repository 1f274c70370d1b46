"""Mesh specs, logical-axis rules, and sharded loading/forward/scoring on the fake 8-device CPU mesh."""

import functools

import jax
import numpy as np
import pytest
from jax.sharding import AxisType
from jax.sharding import PartitionSpec as P

from dlogp_jax import logprobs, toy
from dlogp_jax.model import hf_weights, transformer
from dlogp_jax.sharding import (
    constrain,
    logical_to_spec,
    make_mesh,
    named_sharding,
    parse_mesh_spec,
    place,
    tree_shardings,
)

SPEC = "data:2,fsdp:2,tensor:2"
B, T = 4, 12
# The toy model: vocab 99 (odd: stays replicated), width 64, MLP 128, 4 heads, 2 kv heads.
GOLDEN = {
    "embed_vd": P(None, "fsdp"),
    "final_norm_d": P(None),
    "layers/attn_norm_ld": P(None, None),
    "layers/q_ldnh": P(None, "fsdp", "tensor", None),
    "layers/k_ldkh": P(None, "fsdp", "tensor", None),
    "layers/o_lnhd": P(None, "tensor", None, "fsdp"),
    "layers/gate_ldf": P(None, "fsdp", "tensor"),
    "layers/down_lfd": P(None, "tensor", "fsdp"),
    "layers/q_bias_lnh": P(None, "tensor", None),
}


@pytest.mark.parametrize(
    "spec, n, expected",
    [
        (SPEC, 8, (2, 2, 2)),
        ("fsdp:-1", 8, (1, 8, 1)),
        ("data:2,fsdp:-1", 8, (2, 4, 1)),
        (" tensor:2 , fsdp:-1 ", 8, (1, 4, 2)),
        ("tensor:-1", 1, (1, 1, 1)),
        ("", 1, (1, 1, 1)),
        ("data:2,fsdp:2", 8, (2, 2, 1)),  # fewer than available: make_mesh uses the first 4
    ],
)
def test_parse_mesh_spec(spec, n, expected):
    sizes = parse_mesh_spec(spec, n)
    assert tuple(sizes.values()) == expected and list(sizes) == ["data", "fsdp", "tensor"]


@pytest.mark.parametrize(
    "spec, n, match",
    [
        ("model:2", 2, "bad entry 'model:2'"),
        ("data:two", 2, "bad entry 'data:two'"),
        ("data:2,data:1", 2, "axis 'data' given twice"),
        ("data:-1,fsdp:-1", 8, "only one axis may be -1"),
        ("data:3,fsdp:-1", 8, "8 devices not divisible by 3"),
        ("data:4,fsdp:4", 8, "needs 16 devices but 8 are available"),
    ],
)
def test_parse_mesh_spec_errors(spec, n, match):
    with pytest.raises(ValueError, match=match):
        parse_mesh_spec(spec, n)


def test_make_mesh_auto_axes_and_device_subset():
    mesh = make_mesh(SPEC)
    assert dict(mesh.shape) == {"data": 2, "fsdp": 2, "tensor": 2}
    assert mesh.axis_types == (AxisType.Auto,) * 3
    small = make_mesh("fsdp:-1", devices=jax.devices()[:4])
    assert dict(small.shape) == {"data": 1, "fsdp": 4, "tensor": 1}
    assert set(small.devices.flat) == set(jax.devices()[:4])
    one = make_mesh("fsdp:1")  # a spec naming fewer devices than exist takes the first ones
    assert one.devices.size == 1 and one.devices.flat[0] == jax.devices()[0]


def test_logical_to_spec_rules_and_fallbacks():
    mesh = make_mesh(SPEC)
    assert logical_to_spec(("vocab", "embed")) == P("tensor", "fsdp")
    assert logical_to_spec(("act_batch", "act_len", None)) == P(("data", "fsdp"), None, None)
    # Not divisible: 99 rows over tensor=2, one kv head over tensor=2.
    assert logical_to_spec(("vocab", "embed"), (99, 64), mesh) == P(None, "fsdp")
    assert logical_to_spec(("embed", "kv_heads", "head_dim"), (64, 1, 16), mesh) == P(
        "fsdp", None, None
    )
    # Batch 2 fits data but not data*fsdp; batch 3 fits neither.
    assert logical_to_spec(("act_batch",), (2,), mesh) == P("data")
    assert logical_to_spec(("act_batch",), (3,), mesh) == P(None)
    # A mesh axis is used at most once per array.
    assert logical_to_spec(("embed", "embed"), (64, 64), mesh) == P("fsdp", None)
    with pytest.raises(KeyError, match="not_an_axis"):
        logical_to_spec(("not_an_axis",))
    sharding = named_sharding(mesh, ("embed", "mlp"), (64, 128))
    assert sharding.spec == P("fsdp", "tensor") and sharding.mesh is mesh


def test_constrain_is_noop_without_mesh():
    x = np.ones((4, 3), np.float32)
    assert constrain(x, ("act_batch", "act_len")) is x


@pytest.mark.parametrize(
    ("shape", "axes", "want"),
    [
        ((8, 3), None, P(("data", "fsdp"), None)),  # batch-first by default
        ((6, 3), None, P("data", None)),  # 6 rows fit data=2, not data*fsdp=4
        ((4, 6), ("embed", "mlp"), P("fsdp", "tensor")),
        ((4, 6), (None, None), P(None, None)),
    ],
)
def test_place_shards_by_logical_axes(shape, axes, want):
    mesh = make_mesh(SPEC)
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    y = place(x, mesh, axes)
    assert y.sharding.spec == want and y.sharding.mesh is mesh
    np.testing.assert_array_equal(np.asarray(y), x)
    for shard in y.addressable_shards:  # every device holds its own slice of x
        np.testing.assert_array_equal(np.asarray(shard.data), x[shard.index])


def test_place_without_mesh_is_device_put():
    x = np.arange(6).reshape(2, 3)
    y = place(x, None)
    assert isinstance(y, jax.Array) and y.sharding.is_fully_replicated
    assert y.devices() == {jax.devices()[0]}
    np.testing.assert_array_equal(np.asarray(y), x)


# --------------------------------------------------------------------- sharded model on the mesh
@pytest.fixture(scope="module")
def mesh():
    return make_mesh(SPEC)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    base, rl = toy.build_pair(tmp_path_factory.mktemp("pair"), seed=2)
    return hf_weights.load_params(base), hf_weights.load_params(rl), (base, rl)


@pytest.fixture(scope="module")
def sharded(pair, mesh):
    base, rl = pair[2]
    return hf_weights.load_params(base, mesh=mesh)[1], hf_weights.load_params(rl, mesh=mesh)[1]


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 99, (B, T)).astype(np.int32)
    lengths = np.asarray([T, 9, 5, 2])
    mask = np.arange(T)[None, :] < lengths[:, None]
    return tokens, np.where(mask, np.arange(T), 0).astype(np.int32), mask


def _flat(tree):
    return {
        "/".join(k.key for k in path): v for path, v in jax.tree_util.tree_leaves_with_path(tree)
    }


def test_load_params_on_mesh_golden_specs(pair, sharded, mesh):
    (config, params), _, _ = pair
    flat, flat_ref = _flat(sharded[0]), _flat(params)
    assert flat.keys() == flat_ref.keys()
    for name, spec in GOLDEN.items():
        assert flat[name].sharding.mesh == mesh
        assert flat[name].sharding.spec == spec, name
    for name, leaf in flat.items():
        np.testing.assert_array_equal(np.asarray(leaf), np.asarray(flat_ref[name]), err_msg=name)
    # A q_ldnh shard holds a quarter of the array: split 2 x 2 over fsdp and tensor.
    q = flat["layers/q_ldnh"]
    assert q.addressable_shards[0].data.shape == (2, 32, 2, 16)
    # Sharded init (eval_shape -> specs) places the same tree the same way.
    abstract = jax.eval_shape(functools.partial(transformer.init, config=config), jax.random.key(0))
    specs = _flat(tree_shardings(mesh, transformer.param_axes(config), abstract))
    assert {k: s.spec for k, s in specs.items()} == {k: v.sharding.spec for k, v in flat.items()}


def test_forward_on_mesh_equals_single_device(pair, sharded, mesh, batch):
    (config, params), _, _ = pair
    tokens, positions, mask = batch
    fwd = jax.jit(transformer.apply, static_argnames="config")
    ref, _ = fwd(params, tokens, positions, None, mask, config=config)
    with jax.set_mesh(mesh):
        got, _ = fwd(sharded[0], tokens, positions, None, mask, config=config)
    assert got.sharding.spec[0] == ("data", "fsdp")  # activations follow the batch rule
    ref, got = np.asarray(ref), np.asarray(got)
    assert np.max(np.abs(got - ref)) / np.max(np.abs(ref)) < 1e-4


@pytest.mark.parametrize("two_models", [False, True], ids=["one", "two"])
def test_score_tokens_on_mesh_equals_single_device(pair, sharded, mesh, batch, two_models):
    (config, params), (config_rl, params_rl), _ = pair
    tokens, positions, mask = batch
    kw = dict(config_base=config, vocab_limit=config.vocab_size, chunk_tokens=16)
    if two_models:
        kw["config_rl"] = config_rl
    ref = logprobs.score_tokens(
        params, tokens, positions, mask, params_rl if two_models else None, **kw
    )
    with jax.set_mesh(mesh):
        got = logprobs.score_tokens(
            sharded[0], tokens, positions, mask, sharded[1] if two_models else None, **kw
        )
    assert set(got) == set(ref) == set(logprobs.METRICS_TWO if two_models else logprobs.METRICS_ONE)
    for name in ref:
        np.testing.assert_allclose(
            np.asarray(got[name])[mask], np.asarray(ref[name])[mask], atol=1e-4, err_msg=name
        )
