"""Tiny on-the-spot checkpoints: a character-level HF tokenizer and random Qwen-architecture models.

Used by the embedded default (`dlogp-score --config=configs/score.py:demo`), by tests and benchmarks,
so that every stage runs through the same Hugging Face checkpoint path as real models without any
download. Nothing here imports torch.
"""

from __future__ import annotations

import string
from pathlib import Path

import jax
import jax.numpy as jnp

from dlogp_jax.model import hf_weights, transformer
from dlogp_jax.model.config import ModelConfig
from dlogp_jax.rl.rewards import register_reward

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHARS = string.ascii_letters + string.digits + string.punctuation + " \n"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _byte_symbols() -> dict[int, str]:
    """GPT-2's printable stand-in for every byte (space -> 'Ġ', newline -> 'Ċ'), as byte-level BPE
    vocabularies (Qwen, Llama 3) spell their tokens."""
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    extra = [b for b in range(256) if b not in keep]
    return {**{b: chr(b) for b in keep}, **{b: chr(256 + i) for i, b in enumerate(extra)}}


def build_tokenizer(chars: str = CHARS):
    """A character-level `PreTrainedTokenizerFast` with Qwen-style special tokens and chat template.

    Ids: the characters first, then `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`; characters outside
    the vocabulary map to `<|endoftext|>`. It is a byte-level BPE without merges (each ASCII
    character one token, spelled with its byte-level symbol), the format of Qwen's own tokenizers:
    transformers 5 loads any tokenizer beside a qwen2 config.json as `Qwen2Tokenizer`, which reads
    the vocabulary that way, so plain `AutoTokenizer.from_pretrained` gives the same ids.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if not chars.isascii():
        raise ValueError("toy.build_tokenizer: characters must be ASCII (one byte, one token).")
    symbol = _byte_symbols()
    vocab = {symbol[ord(c)]: i for i, c in enumerate(dict.fromkeys(chars))}
    for tok in SPECIAL_TOKENS:
        vocab[tok] = len(vocab)
    tk = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<|endoftext|>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens(list(SPECIAL_TOKENS))
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def tiny_config(vocab_size: int, **overrides) -> ModelConfig:
    """A small Qwen2-architecture config (2 layers, width 64) for demos and tests."""
    fields = dict(
        model_type="qwen2",
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        head_dim=16,
        qkv_bias=True,
        tie_embeddings=True,
    )
    fields.update(overrides)
    return ModelConfig(**fields)


def build_pair(out_dir, seed: int = 0, rl_noise: float = 0.5, pad_rows: int = 0):
    """Writes `base/` and `rl/` HF checkpoints: random base, RL = base + noise on the output layer.

    Args:
      out_dir: parent directory.
      seed: PRNG seed.
      rl_noise: std of the perturbation added to the RL model's embedding (relative to 0.02 init).
      pad_rows: extra embedding rows on the RL model beyond the tokenizer (as Qwen's 151,936 vs
        152,064), to exercise padded-vocabulary handling.
    Returns:
      (base_dir, rl_dir) paths.
    """
    out = Path(out_dir)
    tok = build_tokenizer()
    config = tiny_config(len(tok))
    k_base, k_noise = jax.random.split(jax.random.key(seed))
    base = transformer.init(k_base, config, std=0.3)
    rl = jax.tree.map(lambda x: x, base)
    noise = rl_noise * 0.3 * jax.random.normal(k_noise, base["embed_vd"].shape)
    rl["embed_vd"] = base["embed_vd"] + noise
    rl_config = config
    if pad_rows:
        extra = jnp.zeros((pad_rows, config.hidden_size), base["embed_vd"].dtype)
        rl["embed_vd"] = jnp.concatenate([rl["embed_vd"], extra])
        rl_config = config.replace(vocab_size=config.vocab_size + pad_rows)
    base_dir = hf_weights.export_params(out / "base", base, config, tokenizer=tok)
    rl_dir = hf_weights.export_params(out / "rl", rl, rl_config, tokenizer=tok)
    return base_dir, rl_dir


# ----------------------------------------------------------------------------- toy RL task
def toy_task_rows(num: int = 64, seed: int = 0) -> list[dict]:
    """A built-in verifiable task for smoke training: "Say D." -> the first digit must be D.

    Learnable from a random tiny model within a minute on CPU (the `tiny` DAPO preset).
    """
    import random

    rng = random.Random(seed)
    rows = []
    for _ in range(num):
        d = rng.choice("0123456789")
        rows.append({"problem": f"Say {d}.", "answer": d, "data_source": "toy_first_digit"})
    return rows


def first_digit_reward(response: str, ground_truth: str) -> float:
    """+1 when the first digit of the response equals the answer, else -1."""
    digits = [c for c in response if c.isdigit()]
    return 1.0 if digits and digits[0] == ground_truth else -1.0


register_reward("toy_first_digit")(first_digit_reward)
