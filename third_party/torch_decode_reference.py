"""PyTorch reference for two-model selective replacement / extrapolation decoding (not library code).

Never imported by `dlogp_jax`; `benchmarks/sample.py` times it against `dlogp_jax.sampling.generate`.
It is the way the official code (Hesse73/RLVR-Directions `extrapolate/extrapolate.py`, docs/method.md §2)
decodes, rewritten on `transformers` models with a KV cache instead of one vLLM request per token:

  * prefill both models on the left-padded prompts, then one token per step for both, each with its own
    `cache` (transformers' DynamicCache), explicit position ids and a growing attention mask;
  * per step, on the device: full-vocabulary log-softmax of both models (cut to `vocab_limit`), the
    base model's proposal ŷ and the RL model's own sample (temperature, HF-style top-p by sorting,
    `torch.multinomial`), and both models' top-K log-probs (what vLLM returns);
  * on the host, per sequence, as the official code: Python dicts of the top-K log-probs plus the
    sampled token, the criterion (`neg_logp` = Δlog p(ŷ) <= τ, entropies, KLs on the truncated
    supports, `rand`, `all`, `none`), and at enabled positions the re-draw from the base dict scored
    w_B·ℓ_B + w_R·ℓ̃_R (missing RL values padded with the RL dict's minimum), top-p within the dict,
    `numpy` random choice.

Requires `torch` and `transformers` (the `test` extra).
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import AutoModelForCausalLM


def load_torch_model(hf_dir):
    """An HF checkpoint directory as an fp32 causal LM in eval mode (CPU)."""
    return AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()


def left_pad(prompts, pad_id: int = 0):
    """(input_ids [B, T] int64, attention_mask [B, T] int64) of left-padded token lists."""
    t = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), t), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), t), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, t - len(p) :] = torch.as_tensor(p)
        mask[i, t - len(p) :] = 1
    return ids, mask


def _sample(logits, temperature, top_p, generator):
    """vLLM/HF-style draw: temperature, top-p by an ascending sort, multinomial. [B, V] -> [B]."""
    if temperature == 0:
        return logits.argmax(-1)
    x = logits / temperature
    if top_p < 1.0:
        sorted_x, order = torch.sort(x, dim=-1)
        cum = torch.softmax(sorted_x, dim=-1).cumsum(-1)
        remove = cum <= 1 - top_p
        remove[:, -1] = False
        x = x.masked_fill(remove.scatter(1, order, remove), -float("inf"))
    return torch.multinomial(torch.softmax(x, dim=-1), 1, generator=generator)[:, 0]


def _renorm(values):
    v = np.asarray(values, np.float64)
    return v - (np.log(np.exp(v - v.max()).sum()) + v.max())


def _aligned(keys, other: dict):
    pad = min(other.values())
    return [other.get(k, pad) for k in keys]


def _kl(p: dict, q: dict):
    lp, lq = _renorm(list(p.values())), _renorm(_aligned(p, q))
    return float((np.exp(lp) * (lp - lq)).sum())


def _entropy(d: dict):
    lp = _renorm(list(d.values()))
    return float(-(np.exp(lp) * lp).sum())


def host_step(
    B: dict, R: dict, yhat: int, *, criterion, threshold, weights, temperature, top_p, rng
):
    """The official per-sequence step on top-K dicts. Returns (token, enabled)."""
    if criterion == "dlogp":
        enabled = _aligned([yhat], R)[0] - B[yhat] <= threshold
    elif criterion == "random":
        enabled = rng.random() < threshold
    elif criterion in ("all", "none"):
        enabled = criterion == "all"
    else:
        score = {
            "entropy_base": lambda: _entropy(B),
            "entropy_rl": lambda: _entropy(R),
            "kl_rl_base": lambda: _kl(R, B),
            "kl_base_rl": lambda: _kl(B, R),
            "kl_sym": lambda: 0.5 * (_kl(R, B) + _kl(B, R)),
        }[criterion]()
        enabled = score >= threshold
    if not enabled:
        return yhat, False
    w_b, w_r = np.asarray(weights, np.float64) / sum(weights)
    keys = list(B)
    s = (w_b * np.asarray(list(B.values())) + w_r * np.asarray(_aligned(keys, R))) / temperature
    order = np.argsort(s)
    probs = np.exp(s[order] - s.max())
    cum = np.cumsum(probs / probs.sum())
    keep = cum > 1 - top_p
    keep[-1] = True
    p = np.zeros(len(keys))
    p[order[keep]] = probs[keep]
    return keys[rng.choice(len(keys), p=p / p.sum())], True


@torch.no_grad()
def decode_pair(
    model_base,
    model_rl,
    prompts,
    *,
    max_new_tokens: int,
    criterion: str = "dlogp",
    threshold: float = 0.0,
    gamma: float = 0.0,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k_logprobs: int = 50,
    vocab_limit: int | None = None,
    seed: int = 0,
):
    """Selective extrapolation (γ = 0: replacement) with the official host-side logic.

    Args:
      model_base, model_rl: transformers causal LMs. prompts: list of token-id lists.
      max_new_tokens: tokens generated per sequence (no stop tokens: fixed-length, for timing).
      criterion, threshold: as `dlogp_jax.extrapolation.CRITERIA` / τ.
      gamma: weights (w_B, w_R) = (−γ, 1+γ). temperature, top_p: sampling settings.
      top_k_logprobs: K log-probs each model returns per step.
      vocab_limit: drop logits rows at or beyond it. seed: torch and numpy seeds.
    Returns:
      dict with "tokens" [B, M] int64 and "selected" [B, M] bool (NumPy).
    """
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    ids, mask = left_pad(prompts)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    caches, logits = [], []
    for model in (model_base, model_rl):
        out = model(
            input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1
        )
        caches.append(out.cache)
        logits.append(out.logits[:, -1, :vocab_limit].float())
    next_pos = mask.sum(-1, keepdim=True)
    tokens, selected = [], []
    host = dict(
        criterion=criterion,
        threshold=threshold,
        weights=(-gamma, 1 + gamma),
        temperature=temperature,
        top_p=top_p,
        rng=rng,
    )
    for _ in range(max_new_tokens):
        logp_b, logp_r = (torch.log_softmax(x, dim=-1) for x in logits)
        yhat = _sample(logits[0], temperature, top_p, gen)
        r_own = _sample(logits[1], temperature, top_p, gen)
        top_b = torch.topk(logp_b, top_k_logprobs)
        top_r = torch.topk(logp_r, top_k_logprobs)
        extra_b = logp_b.gather(1, yhat[:, None])[:, 0]
        extra_r = logp_r.gather(1, r_own[:, None])[:, 0]
        step_tokens, step_sel = [], []
        lists = (
            top_b.indices.tolist(),
            top_b.values.tolist(),
            top_r.indices.tolist(),
            top_r.values.tolist(),
            yhat.tolist(),
            extra_b.tolist(),
            r_own.tolist(),
            extra_r.tolist(),
        )
        for kb, vb, kr, vr, y, ly, r, lr in zip(*lists):
            B = dict(zip(kb, vb))
            B[y] = ly
            R = dict(zip(kr, vr))
            R[r] = lr
            tok, sel = host_step(B, R, y, **host)
            step_tokens.append(tok)
            step_sel.append(sel)
        tok = torch.as_tensor(step_tokens, dtype=torch.long)[:, None]
        tokens.append(tok[:, 0])
        selected.append(step_sel)
        mask = torch.cat([mask, torch.ones_like(tok)], dim=-1)
        logits = []
        for i, model in enumerate((model_base, model_rl)):
            out = model(
                input_ids=tok,
                attention_mask=mask,
                position_ids=next_pos,
                cache=caches[i],
                use_cache=True,
            )
            caches[i] = out.cache
            logits.append(out.logits[:, -1, :vocab_limit].float())
        next_pos = next_pos + 1
    return {"tokens": torch.stack(tokens, 1).numpy(), "selected": np.asarray(selected).T}


@torch.no_grad()
def decode_single(
    model, prompts, *, max_new_tokens, temperature=1.0, top_p=1.0, vocab_limit=None, seed=0
):
    """Plain sampling from one model with a KV cache. Returns [B, M] int64 tokens (NumPy)."""
    gen = torch.Generator().manual_seed(seed)
    ids, mask = left_pad(prompts)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(
        input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1
    )
    next_pos = mask.sum(-1, keepdim=True)
    tokens = []
    for _ in range(max_new_tokens):
        tok = _sample(out.logits[:, -1, :vocab_limit].float(), temperature, top_p, gen)[:, None]
        tokens.append(tok[:, 0])
        mask = torch.cat([mask, torch.ones_like(tok)], dim=-1)
        out = model(
            input_ids=tok,
            attention_mask=mask,
            position_ids=next_pos,
            cache=out.cache,
            use_cache=True,
        )
        next_pos = next_pos + 1
    return torch.stack(tokens, 1).numpy()
