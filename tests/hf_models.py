"""Builders of tiny random transformers (PyTorch) checkpoints used as references in tests."""

from pathlib import Path

import torch
import transformers

from dlogp_jax import toy

ARCHS = {
    "qwen2": transformers.Qwen2Config,
    "qwen3": transformers.Qwen3Config,
    "llama": transformers.LlamaConfig,
}


def hf_config(arch: str, *, heads=4, kv_heads=2, tied=False, vocab=None, **extra):
    """A tiny transformers config; `vocab` defaults to the toy tokenizer's size."""
    vocab = vocab or len(toy.build_tokenizer())
    kw = dict(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=16,
        max_position_embeddings=512,
        tie_word_embeddings=tied,
        rms_norm_eps=1e-6,
    )
    kw.update(extra)
    return ARCHS[arch](**kw)


def save_hf_model(path, config, seed=0, tokenizer=True, dtype=torch.float32):
    """Random-weight model saved with `save_pretrained` (+ the toy tokenizer); returns the model."""
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config).to(dtype).eval()
    with torch.no_grad():  # random (not identity) norms and biases, so every tensor is exercised
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))
    model.save_pretrained(Path(path), safe_serialization=True)
    if tokenizer:
        toy.build_tokenizer().save_pretrained(Path(path))
    return model
