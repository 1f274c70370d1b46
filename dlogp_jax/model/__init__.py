"""The decoder model as pure functions over explicit pytrees (no facade: import the modules).

  config.py       ModelConfig (frozen) and presets; `from_hf` reads a transformers config.json
  layers.py       RMSNorm, rotary embeddings, attention, MLP
  kv_cache.py     KVCache pytree: init, write, advance
  transformer.py  embed -> scanned blocks -> norm -> logits; the parameter table, init, apply
  hf_weights.py   Hugging Face safetensors <-> params trees (sharded loading, atomic export)
  tokenizer.py    a checkpoint's tokenizer, the same-tokenizer check, stop-token ids
  pair.py         a base and an RL model loaded together (one tokenizer)

Axis letters: see `dlogp_jax.types`.
"""
