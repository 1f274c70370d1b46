"""Per-token log-probs, entropies and KL divergences, chunked so `[B, T, V]` fp32 logits never exist.

Legend: B batch, T positions, D width, V vocabulary, C tokens per chunk, M = B*T flattened tokens.

The hidden states `[B, T, D]` are flattened to M tokens and projected to the vocabulary C tokens at
a time inside `lax.map` (a sequential loop in one compiled program), so the live logits are `[C, V]`
per model. All reductions run in fp32. Columns at or beyond `vocab_limit` (the tokenizer's length:
Qwen pads 151,665 real tokens to 151,936 or 152,064 embedding rows) are masked to -inf, so they never
receive probability; the unembedding is neither sliced nor transposed (either would copy it).

Metrics at position t describe the prediction of `tokens[:, t]` from the prefix `tokens[:, :t]`
(position 0 has no prediction and is reported as 0), at temperature 1, over the full vocabulary
(docs/method.md §1). `entropy` and `take` (the log-prob at each row's token) are the library's one
copy of those helpers; `extrapolation` uses them too.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from dlogp_jax.model import transformer
from dlogp_jax.model.config import ModelConfig
from dlogp_jax.types import Array, Float, Int

METRICS_ONE = ("logp", "entropy")
METRICS_TWO = (
    "logp_base",
    "logp_rl",
    "dlogp",
    "entropy_base",
    "entropy_rl",
    "kl_rl_base",
    "kl_base_rl",
)


def _chunked(fn, xs: tuple[jax.Array, ...], chunk_tokens: int, remat: bool = False):
    """Applies fn to row-chunks of the [M, ...] arrays xs; returns fn's outputs concatenated to [M]."""
    m = xs[0].shape[0]
    c = max(1, min(chunk_tokens, m))
    pad = -m % c
    padded = [jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1)) for x in xs]
    chunks = [x.reshape(-1, c, *x.shape[1:]) for x in padded]
    if remat:  # backward recomputes each chunk's logits instead of storing them
        fn = jax.checkpoint(fn)
    out = jax.lax.map(lambda args: fn(*args), tuple(chunks))
    return jax.tree.map(lambda o: o.reshape(-1, *o.shape[2:])[:m], out)


def _masked_log_softmax(logits: jax.Array, vocab_limit: int | None) -> jax.Array:
    """fp32 log-softmax over the first `vocab_limit` columns; padded columns get -inf.

    Masking instead of slicing the weight keeps XLA from copying a [D, V'] slice of the unembedding.
    """
    if vocab_limit is not None and vocab_limit < logits.shape[-1]:
        valid = jnp.arange(logits.shape[-1]) < vocab_limit
        logits = jnp.where(valid, logits, -jnp.inf)
    return jax.nn.log_softmax(logits, axis=-1)


def _xlogy(p: jax.Array, logp: jax.Array) -> jax.Array:
    """p * logp with 0 where p == 0 (masked rows have p = 0, logp = -inf)."""
    # Inner where: the untaken branch's gradient would be 0 * -inf = NaN (entropy backward).
    return jnp.where(p > 0, p * jnp.where(p > 0, logp, 0.0), 0.0)


def entropy(logp: Float[Array, "... V"]) -> Float[Array, ...]:
    """H = −Σ_v p(v) log p(v) of normalised fp32 log-probs over the last axis.

    Entries at -inf (masked or padded columns) contribute 0, also to the gradient.
    """
    return -jnp.sum(_xlogy(jnp.exp(logp), logp), axis=-1)


def take(x: Float[Array, "B V"], idx: Int[Array, " B"]) -> Float[Array, " B"]:
    """x[b, idx[b]] for each row: the value at each row's token."""
    return jnp.take_along_axis(x, idx[:, None].astype(jnp.int32), axis=-1)[:, 0]


def _matmul_projection(w: jax.Array):
    return lambda h: jnp.einsum(
        "cd,dv->cv", h, w.astype(h.dtype), preferred_element_type=jnp.float32
    )


def _model_projection(params, config: ModelConfig):
    return lambda h: transformer.logits_from_hidden(params, h, config)


def top_tokens(logp: Float[Array, "C V"], k: int) -> dict[str, jax.Array]:
    """The k most probable tokens of each row: `ids` [C, k] int32 and `logp` [C, k] fp32, best first.

    Masked columns sit at -inf, so they come last (only when k exceeds the real vocabulary).
    """
    values, ids = jax.lax.top_k(logp, k)
    return {"ids": ids.astype(jnp.int32), "logp": values}


def _logprobs(
    project, h, targets, *, chunk_tokens: int, with_entropy: bool, vocab_limit, top_k: int = 0
):
    """[M] log-probs of `targets` (and [M] entropies) from [M, D] hidden states `h`.

    With top_k > 0 (no gradient path), also the [M, top_k] alternatives: (lp, ent, alternatives).
    """

    def one(hc, tc):
        logp = _masked_log_softmax(project(hc), vocab_limit)
        lp = take(logp, tc)
        if top_k:
            return lp, entropy(logp), top_tokens(logp, top_k)
        return (lp, entropy(logp)) if with_entropy else lp

    return _chunked(one, (h, targets), chunk_tokens, remat=True)


def _pair(projections, h_base, h_rl, targets, *, chunk_tokens: int, vocab_limit, top_k: int = 0):
    """METRICS_TWO of `targets` [M] from both models' hidden states; `projections` = (base, RL).

    With top_k > 0 also each model's [M, top_k] alternatives (`top_ids_base`, `top_logp_base`,
    `top_ids_rl`, `top_logp_rl`), taken from the same [C, V] chunk as the other metrics.
    """
    project_b, project_r = projections

    def one(hb, hr, tc):
        lb = _masked_log_softmax(project_b(hb), vocab_limit)
        lr = _masked_log_softmax(project_r(hr), vocab_limit)
        pb, pr = jnp.exp(lb), jnp.exp(lr)
        tb, tr = take(lb, tc), take(lr, tc)
        # Both distributions share the masked columns, so lr - lb is finite wherever p > 0.
        diff = jnp.where(jnp.isfinite(lb) & jnp.isfinite(lr), lr - lb, 0.0)
        out = {
            "logp_base": tb,
            "logp_rl": tr,
            "dlogp": tr - tb,
            "entropy_base": entropy(lb),
            "entropy_rl": entropy(lr),
            "kl_rl_base": jnp.sum(pr * diff, axis=-1),
            "kl_base_rl": -jnp.sum(pb * diff, axis=-1),
        }
        if top_k:
            for name, logp in (("base", lb), ("rl", lr)):
                alt = top_tokens(logp, top_k)
                out[f"top_ids_{name}"], out[f"top_logp_{name}"] = alt["ids"], alt["logp"]
        return out

    return _chunked(one, (h_base, h_rl, targets), chunk_tokens)


def token_logprobs(
    h: jax.Array,
    w: jax.Array,
    targets: jax.Array,
    *,
    chunk_tokens: int = 512,
    with_entropy: bool = False,
    vocab_limit: int | None = None,
):
    """Log-prob of each target token (differentiable; backward recomputes logits per chunk).

    Args:
      h: [M, D] hidden states (already flattened).
      w: [D, V] unembedding.
      targets: [M] int token ids.
      chunk_tokens: C, tokens projected to the vocabulary at once.
      with_entropy: also return the full-distribution entropy.
      vocab_limit: columns at or beyond it are padding and get no probability (None: all).
    Returns:
      [M] fp32 log-probs, or ([M], [M]) with entropy.
    """
    return _logprobs(
        _matmul_projection(w),
        h,
        targets,
        chunk_tokens=chunk_tokens,
        with_entropy=with_entropy,
        vocab_limit=vocab_limit,
    )


def pair_metrics(h_base, w_base, h_rl, w_rl, targets, *, chunk_tokens: int = 512, vocab_limit=None):
    """Two-model per-token metrics over the full vocabulary.

    Args:
      h_base, h_rl: [M, D_base], [M, D_rl] hidden states of the two models on the same tokens.
      w_base, w_rl: [D, V_base], [D, V_rl] unembeddings (V may differ by padding rows: then
        vocab_limit <= both must be given; otherwise V_base == V_rl).
      targets: [M] token ids.
      chunk_tokens: C.
      vocab_limit: the tokenizer's length V'; columns at or beyond it get no probability.
    Returns:
      dict of [M] fp32 arrays named as METRICS_TWO.
    """
    pb, pr = _matmul_projection(w_base), _matmul_projection(w_rl)
    if vocab_limit is not None:
        pb = lambda h, p=pb: p(h)[:, :vocab_limit]
        pr = lambda h, p=pr: p(h)[:, :vocab_limit]
    return _pair((pb, pr), h_base, h_rl, targets, chunk_tokens=chunk_tokens, vocab_limit=None)


def _shifted(h: jax.Array, tokens: jax.Array):
    """Flattens [B, T, D] hidden states predicting tokens[:, 1:]; returns ([M, D], [M])."""
    b, t, d = h.shape
    return h[:, :-1].reshape(b * (t - 1), d), tokens[:, 1:].reshape(-1)


def _unshift(flat: jax.Array, b: int, t: int) -> jax.Array:
    """[M, ...] per-prediction values -> [B, T, ...] with zeros at position 0."""
    rest = flat.shape[1:]
    pad = ((0, 0), (1, 0)) + ((0, 0),) * len(rest)
    return jnp.pad(flat.reshape(b, t - 1, *rest), pad)


@functools.partial(
    jax.jit,
    static_argnames=("config_base", "config_rl", "vocab_limit", "chunk_tokens", "top_alternatives"),
)
def score_tokens(
    params_base,
    tokens: jax.Array,
    positions: jax.Array,
    input_mask: jax.Array,
    params_rl=None,
    *,
    config_base: ModelConfig,
    config_rl: ModelConfig | None = None,
    vocab_limit: int,
    chunk_tokens: int = 512,
    top_alternatives: int = 0,
) -> dict[str, jax.Array]:
    """Teacher-forced metrics of every token under one model or a (base, RL) pair.

    Args:
      params_base: base model params. params_rl: RL model params or None.
      tokens: [B, T] ids (right-padded). positions: [B, T]. input_mask: [B, T] bool, False at pads.
      config_base, config_rl: static model configs.
      vocab_limit: V', the tokenizer's vocabulary size (`len(tokenizer)`); rows beyond are dropped.
      chunk_tokens: C, tokens projected to the vocabulary at once.
      top_alternatives: K; > 0 adds each model's K most probable tokens at every position, taken
        from the same [C, V] chunk (no [B, T, V] array): `top_ids` [B, T, K] int32 and `top_logp`
        [B, T, K] fp32 with one model; `top_ids_base`, `top_logp_base`, `top_ids_rl`,
        `top_logp_rl` with two.
    Returns:
      dict of [B, T] fp32 arrays: `logp`, `entropy` with one model; METRICS_TWO with two (plus the
      [B, T, K] alternatives). Entry t scores tokens[:, t] given tokens[:, :t]; entry 0 is 0.
    """
    b, t = tokens.shape
    h_b, _ = transformer.hidden_states(
        params_base, tokens, positions, None, input_mask, config=config_base
    )
    hb, targets = _shifted(h_b, tokens)
    proj_b = _model_projection(params_base, config_base)
    if params_rl is None:
        got = _logprobs(
            proj_b,
            hb,
            targets,
            chunk_tokens=chunk_tokens,
            with_entropy=True,
            vocab_limit=vocab_limit,
            top_k=top_alternatives,
        )
        out = {"logp": got[0], "entropy": got[1]}
        if top_alternatives:
            out.update(top_ids=got[2]["ids"], top_logp=got[2]["logp"])
        return {k: _unshift(v, b, t) for k, v in out.items()}
    h_r, _ = transformer.hidden_states(
        params_rl, tokens, positions, None, input_mask, config=config_rl
    )
    hr, _ = _shifted(h_r, tokens)
    proj_r = _model_projection(params_rl, config_rl)
    if config_base.vocab_size != config_rl.vocab_size:  # differently padded: align the columns
        proj_b = lambda h, p=proj_b: p(h)[:, :vocab_limit]
        proj_r = lambda h, p=proj_r: p(h)[:, :vocab_limit]
    out = _pair(
        (proj_b, proj_r),
        hb,
        hr,
        targets,
        chunk_tokens=chunk_tokens,
        vocab_limit=vocab_limit,
        top_k=top_alternatives,
    )
    return {k: _unshift(v, b, t) for k, v in out.items()}


def response_logprobs(
    params,
    tokens: jax.Array,
    mask: jax.Array,
    *,
    config: ModelConfig,
    prompt_len: int,
    vocab_limit: int | None = None,
    chunk_tokens: int = 512,
    with_entropy: bool = False,
    remat: bool = False,
    temperature: float = 1.0,
):
    """Log-probs (and entropies) of the response part of prompt+response sequences.

    Args:
      params, config: the model.
      tokens: [B, L] = left-padded prompts [B, Tp] followed by responses [B, M] (L = Tp + M).
      mask: [B, L] bool, False at prompt padding and after each response's end.
      prompt_len: Tp (static).
      vocab_limit: tokenizer length (padding columns get no probability).
      chunk_tokens: C. with_entropy: also return per-token entropies.
      remat: rematerialize layers in the backward pass.
      temperature: the logits are divided by it before the softmax (verl trains on the rollout
        temperature's distribution: log-probs and entropies of softmax(logits / temperature)).
    Returns:
      [B, M] fp32 log π(response_t | prefix) (and [B, M] entropies); garbage where mask is False.
    """
    if temperature <= 0:
        raise ValueError(f"temperature={temperature}: log-probs need a temperature > 0.")
    positions = jnp.maximum(jnp.cumsum(mask.astype(jnp.int32), axis=-1) - 1, 0)
    h, _ = transformer.hidden_states(
        params, tokens, positions, None, mask, config=config, remat=remat
    )
    b, length, d = h.shape
    m = length - prompt_len
    h_pred = h[:, prompt_len - 1 : length - 1].reshape(b * m, d)
    targets = tokens[:, prompt_len:].reshape(-1)
    project = _model_projection(params, config)
    if temperature != 1.0:
        project = lambda h, p=project: p(h) / temperature
    out = _logprobs(
        project,
        h_pred,
        targets,
        chunk_tokens=chunk_tokens,
        with_entropy=with_entropy,
        vocab_limit=vocab_limit,
    )
    return jax.tree.map(lambda x: x.reshape(b, m), out)
