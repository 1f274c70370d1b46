"""Hugging Face checkpoint directories <-> params trees.

Loading reads `config.json` and `model.safetensors` (or the shards listed in
`model.safetensors.index.json`) tensor by tensor: each parameter group (one leaf of our tree, all layers
stacked) is assembled once on the host, converted, and placed with its target sharding through
`sharding.place`, so every device receives only its own shard and no device ever holds a full copy
it does not need. Host memory peaks at one stacked leaf.

Exporting writes `config.json`, safetensors (sharded above `max_shard_bytes`, with an index) and the
tokenizer, into a temporary directory renamed into place, so a crash never leaves a half-written model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from dlogp_jax import outputs
from dlogp_jax.errors import CheckpointError
from dlogp_jax.model.config import ModelConfig
from dlogp_jax.model.transformer import ParamInfo, param_table
from dlogp_jax.sharding import gather_to_host, place

SUPPORTED_DTYPES = {"F32": np.float32, "BF16": ml_dtypes.bfloat16, "F16": np.float16}


# ours -> (HF name template, to_ours(hf_array, config), to_hf(our_array, config))
def _lin_in(cols: str):
    """HF Linear weight [out, in] -> ours [in, *heads]; cols names the head split."""

    def to_ours(w, c: ModelConfig):
        heads = {
            "n": (c.num_heads, c.head_dim),
            "k": (c.num_kv_heads, c.head_dim),
            "": (-1,),
        }[cols]
        return w.T.reshape(w.shape[1], *heads)

    def to_hf(w, c: ModelConfig):
        return w.reshape(w.shape[0], -1).T

    return to_ours, to_hf


def _o_proj():
    def to_ours(w, c):
        return w.T.reshape(c.num_heads, c.head_dim, w.shape[0])

    def to_hf(w, c):
        return w.reshape(-1, w.shape[-1]).T

    return to_ours, to_hf


def _bias(heads: str):
    def to_ours(b, c):
        return b.reshape({"n": c.num_heads, "k": c.num_kv_heads}[heads], c.head_dim)

    def to_hf(b, c):
        return b.reshape(-1)

    return to_ours, to_hf


_SAME = (lambda w, c: w, lambda w, c: w)
_TRANSPOSE = (lambda w, c: w.T, lambda w, c: w.T)
_P = "model.layers.{}."
NAME_MAP: dict[str, tuple[str, tuple[Callable, Callable]]] = {
    "embed_vd": ("model.embed_tokens.weight", _SAME),
    "lm_head_dv": ("lm_head.weight", _TRANSPOSE),
    "final_norm_d": ("model.norm.weight", _SAME),
    "layers/attn_norm_ld": (_P + "input_layernorm.weight", _SAME),
    "layers/q_ldnh": (_P + "self_attn.q_proj.weight", _lin_in("n")),
    "layers/k_ldkh": (_P + "self_attn.k_proj.weight", _lin_in("k")),
    "layers/v_ldkh": (_P + "self_attn.v_proj.weight", _lin_in("k")),
    "layers/o_lnhd": (_P + "self_attn.o_proj.weight", _o_proj()),
    "layers/q_bias_lnh": (_P + "self_attn.q_proj.bias", _bias("n")),
    "layers/k_bias_lkh": (_P + "self_attn.k_proj.bias", _bias("k")),
    "layers/v_bias_lkh": (_P + "self_attn.v_proj.bias", _bias("k")),
    "layers/o_bias_ld": (_P + "self_attn.o_proj.bias", _SAME),
    "layers/q_norm_lh": (_P + "self_attn.q_norm.weight", _SAME),
    "layers/k_norm_lh": (_P + "self_attn.k_norm.weight", _SAME),
    "layers/mlp_norm_ld": (_P + "post_attention_layernorm.weight", _SAME),
    "layers/gate_ldf": (_P + "mlp.gate_proj.weight", _TRANSPOSE),
    "layers/up_ldf": (_P + "mlp.up_proj.weight", _TRANSPOSE),
    "layers/down_lfd": (_P + "mlp.down_proj.weight", _TRANSPOSE),
}


def _flat_table(config: ModelConfig) -> dict[str, ParamInfo]:
    table = param_table(config)
    flat = {k: v for k, v in table.items() if k != "layers"}
    flat.update({f"layers/{k}": v for k, v in table["layers"].items()})
    return flat


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        head, _, tail = key.partition("/")
        if tail:
            out.setdefault(head, {})[tail] = value
        else:
            out[head] = value
    return out


def read_config(path: str | os.PathLike, **overrides) -> ModelConfig:
    """ModelConfig from `<path>/config.json`, with clear errors for a missing or bad directory."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(
            f"checkpoint directory {str(path)!r} does not exist; pass a local directory holding "
            "config.json and model.safetensors (e.g. from `huggingface-cli download`)."
        )
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise CheckpointError(f"{cfg_file}: missing; a Hugging Face checkpoint needs config.json.")
    return ModelConfig.from_hf(_read_json(cfg_file), source=str(cfg_file), **overrides)


def _read_json(path: Path) -> Any:
    """A checkpoint's JSON file, or one CheckpointError line naming it (truncated, not UTF-8)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(
            f"{path}: unreadable ({type(e).__name__}: {e}); copy the checkpoint again."
        ) from None


def _safe_open(path: Path):
    """`safe_open`, with a truncated or damaged file reported as one CheckpointError line."""
    try:
        return safe_open(path, "np")
    except Exception as e:  # safetensors raises its own SafetensorError (and OSError)
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({type(e).__name__}: {e}); it may be "
            "truncated: copy the checkpoint again."
        ) from None


class _TensorReader:
    """Lazy access to the tensors of one checkpoint directory, by HF name."""

    def __init__(self, path: Path):
        index = path / "model.safetensors.index.json"
        single = path / "model.safetensors"
        if index.is_file():
            weight_map = _read_json(index)["weight_map"]
            self.files = {name: path / f for name, f in weight_map.items()}
        elif single.is_file():
            with _safe_open(single) as f:
                self.files = dict.fromkeys(f.keys(), single)
        else:
            found = sorted(p.name for p in path.iterdir())
            raise CheckpointError(
                f"{path}: no model.safetensors or model.safetensors.index.json (found: "
                f"{', '.join(found) or 'nothing'}). PyTorch .bin checkpoints are not read: convert "
                "with `transformers` (`model.save_pretrained(dir, safe_serialization=True)`)."
            )
        for f in set(self.files.values()):
            if not f.is_file():
                raise CheckpointError(f"{f}: listed in the safetensors index but missing.")
        self._open: dict[Path, Any] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.files

    def get(self, name: str) -> np.ndarray:
        f = self.files[name]
        if f not in self._open:
            self._open[f] = _safe_open(f)
        handle = self._open[f]
        dtype = handle.get_slice(name).get_dtype()
        if dtype not in SUPPORTED_DTYPES:
            raise CheckpointError(
                f"{f}: tensor {name!r} has dtype {dtype}; supported: "
                f"{', '.join(SUPPORTED_DTYPES)}. Dequantize the checkpoint first."
            )
        try:
            return handle.get_tensor(name)
        except Exception as e:  # a file cut short after its header
            raise CheckpointError(
                f"{f}: tensor {name!r} cannot be read ({type(e).__name__}: {e}); the file may be "
                "truncated: copy the checkpoint again."
            ) from None


def _host_leaf(reader: _TensorReader, key: str, info: ParamInfo, config: ModelConfig, dtype):
    """Assembles one param leaf on the host (layers stacked), validated against its expected shape."""
    template, (to_ours, _) = NAME_MAP[key]
    names = (
        [template.format(i) for i in range(config.num_layers)] if "{}" in template else [template]
    )
    if key == "lm_head_dv" and names[0] not in reader:
        raise CheckpointError(
            "lm_head.weight is missing but config.json says tie_word_embeddings=false; set it to "
            "true if the model shares its embedding matrix, or supply lm_head.weight."
        )
    out = np.empty(info.shape, dtype)
    for i, name in enumerate(names):
        if name not in reader:
            raise CheckpointError(f"tensor {name!r} is missing from the checkpoint ({key}).")
        raw = reader.get(name)
        expected = info.shape[1:] if len(names) > 1 else info.shape
        try:  # a head split of a wrongly sized tensor fails inside the reshape
            ours = to_ours(raw, config)
        except ValueError:
            ours = raw
        if ours.shape != tuple(expected):
            raise CheckpointError(
                f"tensor {name!r}: shape {raw.shape} does not match config.json "
                f"(expected our layout {tuple(expected)}); the config and weights disagree."
            )
        if len(names) > 1:
            out[i] = ours
        else:
            out[...] = ours
    return out


def load_params(path, config: ModelConfig | None = None, mesh=None, dtype=None):
    """Loads an HF checkpoint directory into a (sharded) params tree.

    Args:
      path: directory with config.json and safetensors weights.
      config: defaults to `read_config(path)`.
      mesh: place each leaf with its logical sharding on this mesh; None = default device.
      dtype: param dtype (e.g. jnp.bfloat16); None keeps each tensor's checkpoint dtype.
    Returns:
      (config, params).
    """
    path = Path(path)
    config = config or read_config(path)
    reader = _TensorReader(path)
    flat = {}
    for key, info in _flat_table(config).items():
        first = NAME_MAP[key][0].format(0)
        leaf_dtype = dtype or (reader.get(first).dtype if first in reader else np.float32)
        host = _host_leaf(reader, key, info, config, np.dtype(leaf_dtype))
        flat[key] = place(host, mesh, info.axes)
        del host
    return config, _nest(flat)


def export_params(
    path,
    params,
    config: ModelConfig,
    tokenizer=None,
    *,
    dtype=None,
    max_shard_bytes: int = 4 << 30,
    write: bool = True,
) -> Path:
    """Writes params as an HF checkpoint directory that `transformers` loads unchanged.

    Args:
      path: output directory (replaced atomically if it exists).
      params: tree as from `init`/`load_params` (may be sharded; gathered leaf by leaf).
      config: its ModelConfig.
      tokenizer: a transformers tokenizer to save beside the weights (optional).
      dtype: tensor dtype to write (np.float32, ml_dtypes.bfloat16); default: as stored.
      max_shard_bytes: size above which weights are split into shards with an index.
      write: False on the non-writing processes of a multi-host run. Every process must call this
        function (gathering sharded leaves is a collective); only `write=True` writes files.
    """
    path = Path(path)
    tensors: dict[str, np.ndarray] = {}
    flat = {k: v for k, v in params.items() if k != "layers"}
    flat.update({f"layers/{k}": v for k, v in params["layers"].items()})
    for key, value in flat.items():
        template, (_, to_hf) = NAME_MAP[key]
        host = gather_to_host(value)  # collective across processes for multi-host arrays
        host = host.astype(dtype or host.dtype)
        if "{}" in template:
            for i in range(config.num_layers):
                tensors[template.format(i)] = np.ascontiguousarray(to_hf(host[i], config))
        else:
            tensors[template] = np.ascontiguousarray(to_hf(host, config))
    if not write:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    outputs.plain_mode(tmp)  # mkdtemp gives 0700: a serving process could not read the export
    _write_safetensors(tmp, tensors, max_shard_bytes)
    torch_dtype = {"bfloat16": "bfloat16", "float16": "float16"}.get(
        np.dtype(next(iter(tensors.values())).dtype).name, "float32"
    )
    (tmp / "config.json").write_text(json.dumps(config.to_hf(torch_dtype), indent=2))
    if tokenizer is not None:
        tokenizer.save_pretrained(tmp)
    for f in tmp.rglob("*"):  # safetensors writes 0600 whatever the umask
        outputs.plain_mode(f)
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
    return path


def _write_safetensors(out: Path, tensors: dict[str, np.ndarray], max_shard_bytes: int) -> None:
    shards: list[dict[str, np.ndarray]] = [{}]
    size = 0
    for name, t in tensors.items():
        if shards[-1] and size + t.nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = t
        size += t.nbytes
    meta = {"format": "pt"}
    if len(shards) == 1:
        save_file(shards[0], out / "model.safetensors", metadata=meta)
        return
    weight_map = {}
    for i, shard in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, out / fname, metadata=meta)
        weight_map.update(dict.fromkeys(shard, fname))
    total = sum(t.nbytes for t in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
