"""The random tiny policy is initialized sharded, with the same values on any mesh."""

import jax
import numpy as np

from dlogp_jax.runs import init_policy
from dlogp_jax.sharding import make_mesh


def test_sharded_random_init_equals_one_device():
    kw = dict(init_from="", dtype="float32", param_dtype="float32", seed=3)
    model, sharded, tok = init_policy(mesh=make_mesh("fsdp:4,tensor:2"), **kw)
    _, single, _ = init_policy(mesh=make_mesh("fsdp:1"), **kw)
    assert model.vocab_size == len(tok)
    embed = sharded["embed_vd"]
    assert len(embed.sharding.device_set) == 8 and not embed.sharding.is_fully_replicated
    jax.tree.map(
        lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), sharded, single
    )
