"""HF checkpoint directories <-> params: export round trip through transformers, shards, bf16, errors."""

import json
import shutil

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch
import transformers
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from dlogp_jax import toy
from dlogp_jax.model import hf_weights
from dlogp_jax.model.config import UnsupportedModelError
from dlogp_jax.model.hf_weights import CheckpointError
from tests.hf_models import hf_config, save_hf_model

LLAMA3_ROPE = {
    "rope_type": "llama3",
    "rope_theta": 500000.0,
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 32,
}
SOURCES = {
    "qwen2_untied": ("qwen2", dict(kv_heads=2)),
    "llama_tied_llama3_bias": (
        "llama",
        dict(kv_heads=1, tied=True, attention_bias=True, rope_parameters=LLAMA3_ROPE),
    ),
}
TOKENS = torch.as_tensor(np.random.default_rng(0).integers(0, 99, (2, 9)))


@pytest.fixture(scope="module", params=list(SOURCES))
def source(request, tmp_path_factory):
    arch, kw = SOURCES[request.param]
    path = tmp_path_factory.mktemp(request.param)
    return path, save_hf_model(path, hf_config(arch, **kw), seed=3)


@pytest.fixture(scope="module")
def qwen2_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("qwen2_src")
    save_hf_model(path, hf_config("qwen2", kv_heads=2), seed=4)
    return path


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=TOKENS).logits


def _assert_same_weights(model, ref):
    sd, sd_ref = model.state_dict(), ref.state_dict()
    assert sd.keys() == sd_ref.keys()
    for name, t in sd_ref.items():
        assert torch.equal(sd[name].to(t.dtype), t), name


def test_export_round_trip_through_transformers(source, tmp_path):
    src, ref = source
    config, params = hf_weights.load_params(src)
    out = hf_weights.export_params(
        tmp_path / "out", params, config, tokenizer=toy.build_tokenizer()
    )
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert not list(tmp_path.glob(".out.*"))  # the temporary directory was renamed away
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    assert type(reloaded) is type(ref)
    assert reloaded.config.rope_parameters == ref.config.rope_parameters
    assert reloaded.config.tie_word_embeddings == ref.config.tie_word_embeddings
    _assert_same_weights(reloaded, ref)
    assert torch.equal(_logits(reloaded), _logits(ref))
    assert hf_weights.read_config(out) == config


def test_sharded_export_and_load(qwen2_dir, tmp_path):
    config, params = hf_weights.load_params(qwen2_dir)
    out = hf_weights.export_params(tmp_path / "out", params, config, max_shard_bytes=40_000)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(p.name for p in out.glob("model-*.safetensors"))
    assert len(shards) > 2 and not (out / "model.safetensors").exists()
    assert set(index["weight_map"].values()) == set(shards)
    assert "model.layers.1.mlp.down_proj.weight" in index["weight_map"]
    config2, params2 = hf_weights.load_params(out)
    assert config2 == config
    jax.tree.map(np.testing.assert_array_equal, params2, params)
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(out)
    _assert_same_weights(reloaded, transformers.AutoModelForCausalLM.from_pretrained(qwen2_dir))
    # Re-exporting unsharded to the same path replaces the directory: no stale shards or index.
    hf_weights.export_params(out, params, config)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]


def test_bf16_export_is_readable(qwen2_dir, tmp_path):
    config, params = hf_weights.load_params(qwen2_dir)
    out = hf_weights.export_params(tmp_path / "bf16", params, config, dtype=ml_dtypes.bfloat16)
    with safe_open(out / "model.safetensors", "np") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"BF16"}
    assert json.loads((out / "config.json").read_text())["torch_dtype"] == "bfloat16"
    _, params_bf16 = hf_weights.load_params(out)
    expected = jax.tree.map(lambda x: np.asarray(x).astype(ml_dtypes.bfloat16), params)
    jax.tree.map(
        lambda a, b: np.testing.assert_array_equal(np.asarray(a), b), params_bf16, expected
    )
    assert params_bf16["embed_vd"].dtype == jnp.bfloat16
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16)
    ref = transformers.AutoModelForCausalLM.from_pretrained(qwen2_dir).to(torch.bfloat16)
    _assert_same_weights(reloaded, ref)


def test_load_params_casts_dtype(qwen2_dir):
    _, params = hf_weights.load_params(qwen2_dir, dtype=jnp.bfloat16)
    assert {x.dtype for x in jax.tree.leaves(params)} == {jnp.dtype(jnp.bfloat16)}


# ---------------------------------------------------------------------------------------- errors
def _copy(src, tmp_path):
    return shutil.copytree(src, tmp_path / "ckpt")


def _edit_config(path, **changes):
    cfg = json.loads((path / "config.json").read_text())
    cfg.update(changes)
    (path / "config.json").write_text(json.dumps(cfg))


def _edit_tensors(path, fn):
    tensors = load_file(path / "model.safetensors")
    fn(tensors)
    save_file(tensors, path / "model.safetensors", metadata={"format": "pt"})


def test_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist") as e:
        hf_weights.load_params(tmp_path / "no_such_model")
    assert "no_such_model" in str(e.value)


def test_missing_config_json(qwen2_dir, tmp_path):
    path = _copy(qwen2_dir, tmp_path)
    (path / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"config\.json: missing"):
        hf_weights.load_params(path)


def test_missing_safetensors(qwen2_dir, tmp_path):
    path = _copy(qwen2_dir, tmp_path)
    (path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"no model\.safetensors") as e:
        hf_weights.load_params(path)
    assert "config.json" in str(e.value)  # lists what it found


def test_index_lists_missing_shard(qwen2_dir, tmp_path):
    path = _copy(qwen2_dir, tmp_path)
    names = list(load_file(path / "model.safetensors"))
    index = {"weight_map": dict.fromkeys(names, "model-00001-of-00002.safetensors")}
    (path / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="model-00001-of-00002.safetensors"):
        hf_weights.load_params(path)


def test_unsupported_model_type_lists_supported(qwen2_dir, tmp_path):
    path = _copy(qwen2_dir, tmp_path)
    _edit_config(path, model_type="mistral")
    with pytest.raises(UnsupportedModelError, match="'mistral'") as e:
        hf_weights.load_params(path)
    assert "qwen2, qwen3, llama" in str(e.value)


def test_missing_tensor(qwen2_dir, tmp_path):
    path = _copy(qwen2_dir, tmp_path)
    _edit_tensors(path, lambda t: t.pop("model.layers.1.mlp.up_proj.weight"))
    with pytest.raises(CheckpointError, match=r"model\.layers\.1\.mlp\.up_proj\.weight.*missing"):
        hf_weights.load_params(path)


@pytest.mark.parametrize(
    "name, shape",
    [
        (
            "model.layers.0.self_attn.k_proj.weight",
            (16, 64),
        ),  # split into heads: [K*H, D] = [32, 64]
        ("model.layers.1.mlp.gate_proj.weight", (64, 96)),  # transposed: [F, D] = [96, 64]
        ("model.norm.weight", (65,)),
    ],
)
def test_wrong_shape(qwen2_dir, tmp_path, name, shape):
    path = _copy(qwen2_dir, tmp_path)
    _edit_tensors(path, lambda t: t.update({name: np.zeros(shape, np.float32)}))
    with pytest.raises(CheckpointError, match="does not match config.json") as e:
        hf_weights.load_params(path)
    assert repr(name) in str(e.value) and str(shape) in str(e.value)


def test_unsupported_dtype(qwen2_dir, tmp_path):
    path = _copy(qwen2_dir, tmp_path)
    name = "model.layers.0.mlp.gate_proj.weight"
    _edit_tensors(path, lambda t: t.update({name: t[name].astype(np.int8)}))
    with pytest.raises(CheckpointError, match=r"gate_proj\.weight.*dtype I8"):
        hf_weights.load_params(path)


def test_sliding_window_refused(qwen2_dir, tmp_path):
    path = _copy(qwen2_dir, tmp_path)
    _edit_config(path, use_sliding_window=True, sliding_window=16)
    with pytest.raises(UnsupportedModelError, match="use_sliding_window"):
        hf_weights.load_params(path)


def test_unknown_rope_type(qwen2_dir, tmp_path):
    path = _copy(qwen2_dir, tmp_path)
    _edit_config(path, rope_parameters={"rope_type": "yarn", "rope_theta": 1e6, "factor": 4.0})
    with pytest.raises(UnsupportedModelError, match="rope type 'yarn'") as e:
        hf_weights.load_params(path)
    assert "llama3" in str(e.value)


def test_untied_config_without_lm_head(qwen2_dir, tmp_path):
    path = _copy(qwen2_dir, tmp_path)
    _edit_tensors(path, lambda t: t.pop("lm_head.weight"))
    with pytest.raises(CheckpointError, match=r"lm_head\.weight is missing") as e:
        hf_weights.load_params(path)
    assert "tie_word_embeddings" in str(e.value)


def test_serving_export_bf16_generation_config_and_chat_template(tmp_path):
    """What `vllm serve DIR` / transformers read: bf16 weights whose logits match ours within bf16
    rounding, generation_config.json with the stop/pad ids, the tokenizer's chat template."""
    tok = toy.build_tokenizer()
    config = toy.tiny_config(len(tok))
    params = toy.transformer.init(jax.random.key(1), config)
    dtype = hf_weights.numpy_dtype("bfloat16")
    out = hf_weights.export_params(tmp_path / "serve", params, config, tok, dtype=dtype)
    hf = transformers.AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    tokens = np.random.default_rng(1).integers(0, len(tok), (2, 12))
    positions = np.broadcast_to(np.arange(12), tokens.shape)
    ours, _ = toy.transformer.apply(
        params, jnp.asarray(tokens), jnp.asarray(positions), config=config
    )
    with torch.no_grad():
        theirs = hf(input_ids=torch.as_tensor(tokens)).logits.numpy()
    np.testing.assert_allclose(theirs, np.asarray(ours), atol=0.05, rtol=0.05)  # bf16: ~3 digits
    assert np.abs(theirs - np.asarray(ours)).max() > 0  # the weights really were rounded
    generation = transformers.GenerationConfig.from_pretrained(out)
    vocab = tok.get_vocab()
    assert sorted(generation.eos_token_id) == sorted([vocab["<|im_end|>"], vocab["<|endoftext|>"]])
    assert generation.pad_token_id == tok.pad_token_id
    reloaded = transformers.AutoTokenizer.from_pretrained(out)
    messages = [{"role": "user", "content": "1+1?"}]
    render = dict(tokenize=False, add_generation_prompt=True)
    assert reloaded.apply_chat_template(messages, **render) == tok.apply_chat_template(
        messages, **render
    )
    with pytest.raises(ValueError, match="dtype 'fp8': use one of float32, bfloat16, float16"):
        hf_weights.numpy_dtype("fp8")
