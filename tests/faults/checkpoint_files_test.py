"""Damaged HF checkpoint files give one line naming the file (issue 12, "One clear line")."""

import pytest

from dlogp_jax import toy
from dlogp_jax.errors import CheckpointError
from dlogp_jax.model import hf_weights


@pytest.fixture
def base(tmp_path):
    return toy.build_pair(tmp_path, seed=0)[0]


@pytest.mark.parametrize("keep", [0, 40, -64])
def test_truncated_safetensors(base, keep):
    f = base / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[:keep] if keep >= 0 else data[:keep])
    with pytest.raises(CheckpointError, match="model.safetensors.*copy the checkpoint again") as e:
        hf_weights.load_params(base)
    assert "\n" not in str(e.value)


def test_truncated_config_json(base):
    f = base / "config.json"
    f.write_text(f.read_text()[:30])
    with pytest.raises(CheckpointError, match="config.json: unreadable .*JSONDecodeError"):
        hf_weights.read_config(base)
