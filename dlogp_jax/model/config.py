"""Model configuration: one frozen dataclass covering Qwen2/2.5, Qwen3 and Llama 2/3.

`ModelConfig.from_hf(dict)` reads a Hugging Face `config.json` (transformers 4.x or 5.x layout) and
refuses, with a message naming the field and the fix, anything the decoder does not implement
(sliding-window attention, unknown rope scaling, MLP biases, non-SiLU activations). Presets named
`family + version + size` (`qwen2p5_7b`) give real-size shapes for `jax.eval_shape` checks without a
checkpoint.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dlogp_jax.errors import UnsupportedModelError

SUPPORTED_MODEL_TYPES = ("qwen2", "qwen3", "llama")
SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3")


@dataclasses.dataclass(frozen=True)
class RopeConfig:
    """Rotary embedding settings (HF `rope_parameters`). Hashable, so it can be a static jit arg."""

    theta: float = 10000.0
    rope_type: str = "default"
    factor: float = 1.0  # linear and llama3
    low_freq_factor: float = 1.0  # llama3
    high_freq_factor: float = 4.0  # llama3
    original_max_position_embeddings: int = 8192  # llama3


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Static decoder hyper-parameters. All fields hashable; used as a static jit argument.

    Attributes:
      model_type: one of SUPPORTED_MODEL_TYPES (kept for HF export).
      vocab_size: rows of the embedding matrix V (may exceed the tokenizer's vocabulary).
      hidden_size: D. intermediate_size: F. num_layers: L.
      num_heads: N. num_kv_heads: K (N % K == 0). head_dim: H.
      qkv_bias: q/k/v projections carry a bias (Qwen2). o_bias: o projection bias (Llama attention_bias).
      qk_norm: per-head RMSNorm on q and k before RoPE (Qwen3).
      tie_embeddings: logits use the embedding matrix (no separate lm_head).
      dtype: compute dtype of activations ("float32" or "bfloat16"); softmax/log-softmax run in fp32.
      scan_layers: run layers with lax.scan (False unrolls, for per-layer debugging).
    """

    model_type: str = "qwen2"
    vocab_size: int = 256
    hidden_size: int = 64
    intermediate_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    head_dim: int = 16
    rms_norm_eps: float = 1e-6
    rope: RopeConfig = RopeConfig()
    max_position_embeddings: int = 32768
    qkv_bias: bool = False
    o_bias: bool = False
    qk_norm: bool = False
    tie_embeddings: bool = False
    dtype: str = "float32"
    scan_layers: bool = True

    def __post_init__(self):
        if self.model_type not in SUPPORTED_MODEL_TYPES:
            raise UnsupportedModelError(
                f"model_type {self.model_type!r} is not supported; supported: "
                f"{', '.join(SUPPORTED_MODEL_TYPES)}."
            )
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads={self.num_heads} is not a multiple of num_kv_heads={self.num_kv_heads}."
            )
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"dtype {self.dtype!r}: use 'float32', 'bfloat16' or 'float16'.")

    def replace(self, **kw: Any) -> ModelConfig:
        return dataclasses.replace(self, **kw)

    @property
    def num_params(self) -> int:
        """Parameter count (embedding counted once when tied)."""
        d, f, n, k, h = (
            self.hidden_size,
            self.intermediate_size,
            self.num_heads,
            self.num_kv_heads,
            self.head_dim,
        )
        per_layer = 2 * d + d * h * (2 * n + 2 * k) + 3 * d * f
        per_layer += (n + 2 * k) * h * self.qkv_bias + d * self.o_bias + 2 * h * self.qk_norm
        emb = self.vocab_size * d * (1 if self.tie_embeddings else 2)
        return emb + self.num_layers * per_layer + d

    # ------------------------------------------------------------------ HF interop
    @classmethod
    def from_hf(cls, hf: dict[str, Any], *, source: str = "config.json", **overrides: Any):
        """Builds a ModelConfig from a Hugging Face config dict.

        Args:
          hf: the parsed `config.json`.
          source: where the dict came from, for error messages.
          overrides: fields to replace (e.g. dtype="bfloat16").
        Raises:
          UnsupportedModelError: naming the field that the decoder does not implement.
        """
        mt = hf.get("model_type")
        if mt not in SUPPORTED_MODEL_TYPES:
            raise UnsupportedModelError(
                f"{source}: model_type {mt!r} is not supported; supported model types are "
                f"{', '.join(SUPPORTED_MODEL_TYPES)} (Qwen2/Qwen2.5, Qwen3, Llama 2/3)."
            )
        _refuse(hf, source)
        n = int(hf["num_attention_heads"])
        d = int(hf["hidden_size"])
        head_dim = hf.get("head_dim") or d // n
        attn_bias = bool(hf.get("attention_bias", False))
        fields = dict(
            model_type=mt,
            vocab_size=int(hf["vocab_size"]),
            hidden_size=d,
            intermediate_size=int(hf["intermediate_size"]),
            num_layers=int(hf["num_hidden_layers"]),
            num_heads=n,
            num_kv_heads=int(hf.get("num_key_value_heads") or n),
            head_dim=int(head_dim),
            rms_norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
            rope=_rope_from_hf(hf, source),
            max_position_embeddings=int(hf.get("max_position_embeddings", 32768)),
            qkv_bias=mt == "qwen2" or attn_bias,
            o_bias=mt == "llama" and attn_bias,
            qk_norm=mt == "qwen3",
            tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
        )
        fields.update(overrides)
        return cls(**fields)

    def to_hf(self, torch_dtype: str = "float32") -> dict[str, Any]:
        """A `config.json` dict that transformers (4.x and 5.x) loads into the same architecture."""
        arch = {
            "qwen2": "Qwen2ForCausalLM",
            "qwen3": "Qwen3ForCausalLM",
            "llama": "LlamaForCausalLM",
        }
        rope: dict[str, Any] = {
            "rope_type": self.rope.rope_type,
            "rope_theta": self.rope.theta,
        }
        if self.rope.rope_type == "linear":
            rope["factor"] = self.rope.factor
        if self.rope.rope_type == "llama3":
            rope.update(
                factor=self.rope.factor,
                low_freq_factor=self.rope.low_freq_factor,
                high_freq_factor=self.rope.high_freq_factor,
                original_max_position_embeddings=self.rope.original_max_position_embeddings,
            )
        hf = {
            "architectures": [arch[self.model_type]],
            "model_type": self.model_type,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "rms_norm_eps": self.rms_norm_eps,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_embeddings,
            "rope_theta": self.rope.theta,  # transformers 4.x
            "rope_scaling": None if self.rope.rope_type == "default" else rope,  # 4.x
            "rope_parameters": rope,  # 5.x
            "torch_dtype": torch_dtype,
            "dtype": torch_dtype,
            "use_cache": True,
        }
        if self.model_type == "llama":
            hf["attention_bias"] = self.o_bias
            hf["mlp_bias"] = False
        if self.model_type == "qwen3":
            hf["attention_bias"] = False
        if self.model_type in ("qwen2", "qwen3"):
            hf["use_sliding_window"] = False
        return hf


def _refuse(hf: dict[str, Any], source: str) -> None:
    """Raises for config features that would silently change the model's outputs."""
    act = hf.get("hidden_act", "silu")
    if act != "silu":
        raise UnsupportedModelError(f"{source}: hidden_act={act!r}; only 'silu' is implemented.")
    if hf.get("use_sliding_window"):
        raise UnsupportedModelError(
            f"{source}: use_sliding_window=true is not implemented; set it to false (every released "
            "Qwen2.5/Qwen3 checkpoint ships with it false)."
        )
    if hf.get("mlp_bias"):
        raise UnsupportedModelError(f"{source}: mlp_bias=true is not implemented.")
    if hf["model_type"] == "qwen3" and hf.get("attention_bias"):
        raise UnsupportedModelError(f"{source}: Qwen3 with attention_bias=true is not implemented.")


def _rope_from_hf(hf: dict[str, Any], source: str) -> RopeConfig:
    # transformers 5 writes `rope_parameters` (complete); 4.x `rope_scaling` (+ top-level theta).
    # Use one of them, never a mix: stale 4.x fields must not leak into a v5 description.
    merged = dict(hf.get("rope_parameters") or hf.get("rope_scaling") or {})
    theta = merged.get("rope_theta", hf.get("rope_theta", 10000.0))
    rope_type = merged.get("rope_type", merged.get("type", "default"))
    if rope_type not in SUPPORTED_ROPE_TYPES:
        raise UnsupportedModelError(
            f"{source}: rope type {rope_type!r} is not implemented; supported: "
            f"{', '.join(SUPPORTED_ROPE_TYPES)}."
        )
    return RopeConfig(
        theta=float(theta),
        rope_type=rope_type,
        factor=float(merged.get("factor", 1.0)),
        low_freq_factor=float(merged.get("low_freq_factor", 1.0)),
        high_freq_factor=float(merged.get("high_freq_factor", 4.0)),
        original_max_position_embeddings=int(merged.get("original_max_position_embeddings", 8192)),
    )


# ---------------------------------------------------------------------- presets
def _preset(**kw: Any):
    return lambda **over: ModelConfig(**{**kw, **over})


PRESETS = {
    "tiny": _preset(qkv_bias=True),  # Qwen2 always has q/k/v biases: keeps to_hf exact
    "qwen2p5_0p5b": _preset(
        model_type="qwen2",
        vocab_size=151936,
        hidden_size=896,
        intermediate_size=4864,
        num_layers=24,
        num_heads=14,
        num_kv_heads=2,
        head_dim=64,
        qkv_bias=True,
        rope=RopeConfig(theta=1e6),
        tie_embeddings=True,
    ),
    "qwen2p5_1p5b": _preset(
        model_type="qwen2",
        vocab_size=151936,
        hidden_size=1536,
        intermediate_size=8960,
        num_layers=28,
        num_heads=12,
        num_kv_heads=2,
        head_dim=128,
        qkv_bias=True,
        rope=RopeConfig(theta=1e6),
        tie_embeddings=True,
    ),
    "qwen2p5_math_7b": _preset(
        model_type="qwen2",
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_layers=28,
        num_heads=28,
        num_kv_heads=4,
        head_dim=128,
        qkv_bias=True,
        rope=RopeConfig(theta=10000.0),
        max_position_embeddings=4096,
    ),
    "qwen2p5_7b": _preset(
        model_type="qwen2",
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_layers=28,
        num_heads=28,
        num_kv_heads=4,
        head_dim=128,
        qkv_bias=True,
        rope=RopeConfig(theta=1e6),
    ),
    "qwen2p5_32b": _preset(
        model_type="qwen2",
        vocab_size=152064,
        hidden_size=5120,
        intermediate_size=27648,
        num_layers=64,
        num_heads=40,
        num_kv_heads=8,
        head_dim=128,
        qkv_bias=True,
        rope=RopeConfig(theta=1e6),
        rms_norm_eps=1e-5,
    ),
    "qwen3_8b": _preset(
        model_type="qwen3",
        vocab_size=151936,
        hidden_size=4096,
        intermediate_size=12288,
        num_layers=36,
        num_heads=32,
        num_kv_heads=8,
        head_dim=128,
        qk_norm=True,
        rope=RopeConfig(theta=1e6),
    ),
    "qwen3_14b": _preset(
        model_type="qwen3",
        vocab_size=151936,
        hidden_size=5120,
        intermediate_size=17408,
        num_layers=40,
        num_heads=40,
        num_kv_heads=8,
        head_dim=128,
        qk_norm=True,
        rope=RopeConfig(theta=1e6),
    ),
    "llama3_8b": _preset(
        model_type="llama",
        vocab_size=128256,
        hidden_size=4096,
        intermediate_size=14336,
        num_layers=32,
        num_heads=32,
        num_kv_heads=8,
        head_dim=128,
        rms_norm_eps=1e-5,
        rope=RopeConfig(theta=500000.0, rope_type="llama3", factor=8.0),
        max_position_embeddings=131072,
    ),
}


def preset(name: str, **overrides: Any) -> ModelConfig:
    """Returns the named architecture preset (see PRESETS), with field overrides."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; known: {', '.join(sorted(PRESETS))}.")
    return PRESETS[name](**overrides)
