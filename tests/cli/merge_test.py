"""`dlogp-merge` (ExPO) end to end: the written weights are θ_RL + α(θ_RL − θ_base) tensor by
tensor, the directory loads with transformers, and our loader scores it with the same logits."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from dlogp_jax.cli import merge
from dlogp_jax.errors import CheckpointError
from dlogp_jax.model import hf_weights, transformer
from dlogp_jax.model import merge as merge_lib
from tests.cli.configs import get_config
from tests.hf_models import hf_config, save_hf_model

ALPHA = 0.5


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("expo")
    config = hf_config("qwen2")  # q/k/v biases: every kind of tensor is extrapolated
    base = save_hf_model(root / "base", config, seed=0)
    rl = save_hf_model(root / "rl", config, seed=1)
    return root, base, rl


def test_merged_checkpoint_is_the_formula_and_loads(pair, tmp_path):
    root, base, rl = pair
    config = get_config("merge", base=str(root / "base"), rl=str(root / "rl"))
    config.out, config.alpha, config.dtype = str(tmp_path / "out"), ALPHA, "float32"
    out = merge.run(config)
    merged = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    sd_b, sd_r, sd_m = base.state_dict(), rl.state_dict(), merged.state_dict()
    assert sd_m.keys() == sd_r.keys()
    for name, r in sd_r.items():
        want = r + ALPHA * (r - sd_b[name])
        torch.testing.assert_close(sd_m[name], want, rtol=1e-6, atol=1e-6, msg=name)
    assert json.loads((out / "merge.json").read_text())["alpha"] == ALPHA
    assert (out / "tokenizer.json").is_file()
    # Scores: our loader reads the output and gives transformers' logits.
    tokens = np.array([[3, 17, 5, 42, 8, 11]], np.int32)
    with torch.no_grad():
        ref = merged(input_ids=torch.tensor(tokens, dtype=torch.long)).logits.numpy()
    cfg, params = hf_weights.load_params(out)
    positions = jnp.arange(tokens.shape[1])[None]
    ours, _ = transformer.apply(
        params, tokens, positions, None, jnp.ones_like(tokens, bool), config=cfg
    )
    np.testing.assert_allclose(np.asarray(ours), ref, rtol=2e-4, atol=2e-4)


def test_alpha_zero_is_rl_and_minus_one_is_base():
    b = {"w": np.array([1.0, 2.0], np.float32), "layers": {"v": jnp.array([0.5], jnp.bfloat16)}}
    r = {"w": np.array([3.0, 1.0], np.float32), "layers": {"v": jnp.array([1.0], jnp.bfloat16)}}
    np.testing.assert_array_equal(merge_lib.extrapolate_weights(b, r, 0.0)["w"], r["w"])
    np.testing.assert_array_equal(merge_lib.extrapolate_weights(b, r, -1.0)["w"], b["w"])
    got = merge_lib.extrapolate_weights(b, r, 0.5)
    np.testing.assert_array_equal(got["w"], [4.0, 0.5])
    assert got["layers"]["v"].dtype == jnp.bfloat16 and float(got["layers"]["v"][0]) == 1.25
    with pytest.raises(ValueError, match=r"weight \['w'\]: base shape \(2,\) != RL shape \(3,\)"):
        merge_lib.extrapolate_weights(b, {**r, "w": np.zeros(3, np.float32)}, 0.5)
    with pytest.raises(ValueError, match="different parameters"):
        merge_lib.extrapolate_weights(b, {"w": r["w"]}, 0.5)


def test_different_architectures_are_refused(pair, tmp_path):
    root, *_ = pair
    save_hf_model(tmp_path / "other", hf_config("qwen2", intermediate_size=64), seed=2)
    config = get_config("merge", base=str(root / "base"), rl=str(tmp_path / "other"))
    config.out = str(tmp_path / "out")
    with pytest.raises(CheckpointError, match="differ in architecture"):
        merge.run(config)
    assert not (tmp_path / "out").exists()
