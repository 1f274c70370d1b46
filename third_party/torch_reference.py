"""PyTorch reference for two-model teacher-forced scoring (a reference bridge, not library code).

This module is never imported by `dlogp_jax`; tests and `benchmarks/score.py` use it as independent
ground truth for `dlogp_jax.logprobs.score_tokens`. It is deliberately the straightforward way a
researcher would compute the metrics with `transformers`: one forward pass per model, full `[B, T, V]`
fp32 logits, `torch.log_softmax` over the whole vocabulary, then the reductions.

Metric conventions match `score_tokens`: entry t scores `tokens[:, t]` given `tokens[:, :t]` (entry 0
has no prediction and is 0), temperature 1, full vocabulary (optionally cut to `vocab_limit` rows).

    logp_base, logp_rl   log p(token) under each model
    dlogp                logp_rl - logp_base
    entropy_base/_rl     -sum_v p(v) log p(v)
    kl_rl_base           KL(p_rl || p_base)   = sum_v p_rl (log p_rl - log p_base)
    kl_base_rl           KL(p_base || p_rl)   = sum_v p_base (log p_base - log p_rl)

Requires `torch` and `transformers` (the `test` extra).
"""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM

METRICS = (
    "logp_base",
    "logp_rl",
    "dlogp",
    "entropy_base",
    "entropy_rl",
    "kl_rl_base",
    "kl_base_rl",
)


def load_torch_model(hf_dir):
    """Loads an HF checkpoint directory as an fp32 causal LM in eval mode (on CPU)."""
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    return model.eval()


@torch.no_grad()
def torch_pair_metrics(model_base, model_rl, tokens, attention_mask=None, vocab_limit=None):
    """Per-token metrics of a (base, RL) pair on the same tokens.

    Args:
      model_base, model_rl: transformers causal LMs.
      tokens: [B, T] int64 token ids (right-padded), torch tensor or array-like.
      attention_mask: [B, T] 1 for real tokens, 0 at padding; default all ones.
      vocab_limit: keep only the first vocab_limit logits (drop padded embedding rows); None keeps all.
    Returns:
      dict of [B, T] fp32 torch tensors named as METRICS; entry 0 of every row is 0.
    """
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    if attention_mask is None:
        attention_mask = torch.ones_like(tokens)
    attention_mask = torch.as_tensor(attention_mask, dtype=torch.long)

    logits_base = model_base(input_ids=tokens, attention_mask=attention_mask).logits.float()
    logits_rl = model_rl(input_ids=tokens, attention_mask=attention_mask).logits.float()
    if vocab_limit is not None:
        logits_base = logits_base[..., :vocab_limit]
        logits_rl = logits_rl[..., :vocab_limit]

    # logits at position t predict token t + 1
    logp_base_all = torch.log_softmax(logits_base[:, :-1], dim=-1)
    logp_rl_all = torch.log_softmax(logits_rl[:, :-1], dim=-1)
    del logits_base, logits_rl
    targets = tokens[:, 1:].unsqueeze(-1)

    logp_base = logp_base_all.gather(-1, targets).squeeze(-1)
    logp_rl = logp_rl_all.gather(-1, targets).squeeze(-1)

    p_base = logp_base_all.exp()
    p_rl = logp_rl_all.exp()
    entropy_base = -(p_base * logp_base_all).sum(-1)
    entropy_rl = -(p_rl * logp_rl_all).sum(-1)
    log_ratio = logp_rl_all - logp_base_all
    kl_rl_base = (p_rl * log_ratio).sum(-1)
    kl_base_rl = -(p_base * log_ratio).sum(-1)

    out = {
        "logp_base": logp_base,
        "logp_rl": logp_rl,
        "dlogp": logp_rl - logp_base,
        "entropy_base": entropy_base,
        "entropy_rl": entropy_rl,
        "kl_rl_base": kl_rl_base,
        "kl_base_rl": kl_base_rl,
    }
    # position 0 has no prediction: report 0, as score_tokens does
    return {k: torch.nn.functional.pad(v, (1, 0)) for k, v in out.items()}
