"""Dynamic sampling that cannot fill a batch (issue 12, "Also"): `rollout.unfilled=train` pads the
batch with groups that train on nothing; zero-signal batches are flagged."""

import numpy as np

from dlogp_jax.rl.rollout import Groups
from dlogp_jax.rl.trainer import batch_arrays


def _groups(g, n=4, m=3, tp=2):
    return Groups(
        prompt_index=np.arange(g),
        prompt_tokens=np.ones((g, tp), np.int32),
        prompt_mask=np.ones((g, tp), bool),
        responses=np.full((g * n, m), 7, np.int32),
        lengths=np.full(g * n, m),
        rewards=np.tile([1.0, -1.0, 1.0, -1.0], (g, 1)),
        accuracy=np.tile([1.0, 0.0, 1.0, 0.0], (g, 1)),
    )


def test_short_batch_is_padded_with_masked_groups():
    padded = _groups(2).pad_to(4)
    batch = batch_arrays(padded, 4)
    assert batch["tokens"].shape == (16, 5)
    assert batch["resp_mask"][:8].all() and not batch["resp_mask"][8:].any()
    assert not batch["adv"][8:].any() and batch["adv"][:8].any()
    assert _groups(4).pad_to(4).prompt_index.shape == (4,)  # full: unchanged
