"""`checkpoint.Checkpointer`: round trip into target shardings, keep-last-K, newest-step resume."""

import os

import jax
import numpy as np
import pytest

from dlogp_jax import checkpoint
from dlogp_jax.checkpoint import Checkpointer, abstract_like
from dlogp_jax.rl.train_state import OptimizerConfig, TrainState, create, make_optimizer
from dlogp_jax.sharding import make_mesh, place

OPT = OptimizerConfig(lr=1e-3, warmup_steps=0)


@pytest.fixture(scope="module")
def mesh():
    return make_mesh("data:2,fsdp:2,tensor:2")


def _state(mesh, value: float, axes=("embed", "mlp"), seed=0) -> TrainState:
    """A TrainState whose weights are all `value` (+ their index, to catch transposes)."""
    params = {
        "w_dm": place(np.arange(32, dtype=np.float32).reshape(8, 4) + value, mesh, axes),
        "b_m": place(np.full(4, value, np.float32), mesh, (None,)),
    }
    state = create(params, make_optimizer(OPT), seed)
    return state.replace(step=state.step + int(value))


def _host(tree):
    return jax.tree.map(np.asarray, tree)


def test_round_trip_into_target_shardings(tmp_path, mesh):
    saved = _state(mesh, 3.0, seed=5)
    ckpt = Checkpointer(str(tmp_path / "ckpt"))
    ckpt.save(7, saved, {"0": {"next": 12}}, {"step": 7, "note": "x"})
    ckpt.wait()
    # The target differs in values, seed and shardings: w_dm [8, 4] sharded (fsdp, tensor) when
    # saved, restored as (None, fsdp).
    target = _state(mesh, 0.0, axes=(None, "embed"), seed=1)
    state, data, meta = ckpt.restore(7, target)
    ckpt.close()
    assert data == {"0": {"next": 12}} and meta == {"step": 7, "note": "x"}
    jax.tree.map(np.testing.assert_array_equal, _host(state), _host(saved))
    assert int(state.step) == 3
    w = state.params["w_dm"]
    assert (
        w.sharding.spec
        == target.params["w_dm"].sharding.spec
        == jax.sharding.PartitionSpec(None, "fsdp")
    )
    assert saved.params["w_dm"].sharding.spec != w.sharding.spec
    for got, want in zip(jax.tree.leaves(state), jax.tree.leaves(target), strict=True):
        assert got.sharding.is_equivalent_to(want.sharding, want.ndim)
        assert got.dtype == want.dtype and got.shape == want.shape


def test_keeps_last_k_and_resumes_from_the_newest(tmp_path, mesh):
    directory = str(tmp_path / "ckpt")
    ckpt = Checkpointer(directory, max_to_keep=2)
    assert ckpt.latest_step() is None  # a fresh run directory: nothing to resume
    for step in (1, 2, 3):
        ckpt.save(step, _state(mesh, float(step)), {"0": {"next": step}}, {"step": step})
    ckpt.close()
    assert sorted(int(d) for d in os.listdir(directory) if d.isdigit()) == [2, 3]

    resumed = Checkpointer(directory, max_to_keep=2)  # a restarted run
    assert resumed.latest_step() == 3
    target = _state(mesh, 0.0)
    for step in (3, 2):
        state, data, meta = resumed.restore(step, target)
        assert data == {"0": {"next": step}} and meta == {"step": step}
        np.testing.assert_array_equal(
            np.asarray(state.params["w_dm"]), np.arange(32).reshape(8, 4) + step
        )
        assert int(state.step) == step
    with pytest.raises(FileNotFoundError):
        resumed.restore(1, target)  # dropped by keep-last-2
    resumed.save(4, _state(mesh, 4.0), {}, {"step": 4})
    resumed.close()
    assert sorted(int(d) for d in os.listdir(directory) if d.isdigit()) == [3, 4]
    assert Checkpointer(directory).latest_step() == 4


def test_abstract_like_keeps_shapes_dtypes_and_shardings(mesh):
    state = _state(mesh, 1.0)
    abstract = abstract_like(state)
    for a, x in zip(jax.tree.leaves(abstract), jax.tree.leaves(state), strict=True):
        assert isinstance(a, jax.ShapeDtypeStruct)
        assert (a.shape, a.dtype, a.sharding) == (x.shape, x.dtype, x.sharding)


def test_paths(tmp_path, monkeypatch):
    """Local paths become absolute (orbax needs them); URLs pass through untouched."""
    monkeypatch.chdir(tmp_path)
    assert Checkpointer("rel/ckpt").directory == str(tmp_path / "rel" / "ckpt")
    assert checkpoint._absolute("gs://bucket/run/checkpoints") == "gs://bucket/run/checkpoints"
