"""ModelConfig: HF config dicts of transformers 4.x and 5.x, round trips, presets by eval_shape."""

import functools
import math

import jax
import pytest

from dlogp_jax.model import transformer
from dlogp_jax.model.config import PRESETS, ModelConfig, RopeConfig, UnsupportedModelError, preset

# config.json of meta-llama/Meta-Llama-3.1-8B as transformers 4.x writes it (rope_theta top-level).
LLAMA31_8B_V4 = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "max_position_embeddings": 131072,
    "mlp_bias": False,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-05,
    "rope_theta": 500000.0,
    "rope_scaling": {
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "vocab_size": 128256,
}
# config.json of Qwen/Qwen3-8B as transformers 5.x writes it (rope_parameters, no rope_theta).
QWEN3_8B_V5 = {
    "architectures": ["Qwen3ForCausalLM"],
    "attention_bias": False,
    "head_dim": 128,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "intermediate_size": 12288,
    "max_position_embeddings": 40960,
    "model_type": "qwen3",
    "num_attention_heads": 32,
    "num_hidden_layers": 36,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-06,
    "rope_parameters": {"rope_theta": 1000000, "rope_type": "default"},
    "sliding_window": None,
    "tie_word_embeddings": False,
    "use_sliding_window": False,
    "vocab_size": 151936,
    "dtype": "bfloat16",
}
# Published parameter counts (model cards / safetensors metadata).
PUBLISHED_PARAMS = {
    "qwen2p5_0p5b": 494_032_768,
    "qwen2p5_7b": 7_615_616_512,
    "qwen2p5_32b": 32_763_876_352,
    "qwen3_8b": 8_190_735_360,
    "llama3_8b": 8_030_261_248,
}


def test_from_hf_v4_layout():
    config = ModelConfig.from_hf(LLAMA31_8B_V4)
    assert config == preset("llama3_8b")
    assert config.rope == RopeConfig(theta=500000.0, rope_type="llama3", factor=8.0)
    assert not config.qkv_bias and not config.o_bias and config.head_dim == 128


def test_from_hf_v4_legacy_scaling_key_and_biases():
    hf = {**LLAMA31_8B_V4, "rope_scaling": {"type": "linear", "factor": 2.0}}
    hf["attention_bias"] = True
    config = ModelConfig.from_hf(hf)
    assert config.rope == RopeConfig(theta=500000.0, rope_type="linear", factor=2.0)
    assert config.qkv_bias and config.o_bias


def test_from_hf_v5_layout():
    config = ModelConfig.from_hf(QWEN3_8B_V5, dtype="bfloat16")
    assert config == preset("qwen3_8b", max_position_embeddings=40960, dtype="bfloat16")
    assert config.rope.theta == 1e6 and config.rope.rope_type == "default"
    assert config.qk_norm and not config.qkv_bias


def test_from_hf_v5_rope_parameters_win_over_v4_fields():
    hf = {**LLAMA31_8B_V4, "rope_parameters": {"rope_type": "default", "rope_theta": 1234.0}}
    rope = ModelConfig.from_hf(hf).rope
    assert (rope.rope_type, rope.theta) == ("default", 1234.0)


def test_qwen2_defaults_head_dim_and_kv_heads():
    hf = {
        "model_type": "qwen2",
        "vocab_size": 100,
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "rope_theta": 1e6,
    }
    config = ModelConfig.from_hf(hf)
    assert (config.head_dim, config.num_kv_heads, config.qkv_bias) == (16, 4, True)
    assert config.rope == RopeConfig(theta=1e6)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_to_hf_from_hf_round_trip(name):
    config = preset(name)
    assert ModelConfig.from_hf(config.to_hf()) == config
    bf16 = config.to_hf("bfloat16")
    assert bf16["torch_dtype"] == bf16["dtype"] == "bfloat16"


def test_round_trip_rope_variants():
    for rope in (
        RopeConfig(theta=5e5, rope_type="llama3", factor=32.0, original_max_position_embeddings=64),
        RopeConfig(theta=1e4, rope_type="linear", factor=4.0),
    ):
        config = ModelConfig(model_type="llama", rope=rope, tie_embeddings=True, o_bias=True)
        assert ModelConfig.from_hf(config.to_hf()) == config.replace(qkv_bias=True)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_param_count_by_eval_shape(name):
    config = preset(name)
    shapes = jax.eval_shape(functools.partial(transformer.init, config=config), jax.random.key(0))
    leaves = jax.tree.leaves(shapes)
    assert all(isinstance(x, jax.ShapeDtypeStruct) for x in leaves)  # nothing allocated
    assert sum(math.prod(x.shape) for x in leaves) == config.num_params
    if name in PUBLISHED_PARAMS:
        assert config.num_params == PUBLISHED_PARAMS[name]


def test_qwen2p5_7b_shapes():
    config = preset("qwen2p5_7b")
    shapes = jax.eval_shape(functools.partial(transformer.init, config=config), jax.random.key(0))
    assert shapes["embed_vd"].shape == (152064, 3584)
    assert shapes["lm_head_dv"].shape == (3584, 152064)
    assert shapes["layers"]["q_ldnh"].shape == (28, 3584, 28, 128)
    assert shapes["layers"]["k_bias_lkh"].shape == (28, 4, 128)
    assert "q_norm_lh" not in shapes["layers"] and "o_bias_ld" not in shapes["layers"]
    assert sum(math.prod(x.shape) for x in jax.tree.leaves(shapes)) == 7_615_616_512


def test_preset_overrides_and_unknown_name():
    assert preset("qwen2p5_0p5b", dtype="bfloat16").dtype == "bfloat16"
    with pytest.raises(ValueError, match="unknown model preset 'qwen9'.*qwen2p5_7b"):
        preset("qwen9")


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"model_type": "gemma"}, "model_type 'gemma' is not supported.*qwen2, qwen3, llama"),
        ({"hidden_act": "gelu"}, "hidden_act='gelu'"),
        ({"use_sliding_window": True}, "use_sliding_window"),
        ({"mlp_bias": True}, "mlp_bias"),
        ({"rope_scaling": {"rope_type": "dynamic", "factor": 2.0}}, "rope type 'dynamic'"),
    ],
)
def test_from_hf_refuses(changes, match):
    with pytest.raises(UnsupportedModelError, match=match):
        ModelConfig.from_hf({**LLAMA31_8B_V4, **changes}, source="x/config.json")


def test_qwen3_attention_bias_refused():
    with pytest.raises(UnsupportedModelError, match="Qwen3 with attention_bias"):
        ModelConfig.from_hf({**QWEN3_8B_V5, "attention_bias": True})


def test_config_validation():
    with pytest.raises(ValueError, match="not a multiple of num_kv_heads=3"):
        ModelConfig(num_heads=4, num_kv_heads=3)
    with pytest.raises(ValueError, match="dtype 'int8'"):
        ModelConfig(dtype="int8")
    with pytest.raises(UnsupportedModelError, match="'mistral'"):
        ModelConfig(model_type="mistral")
