"""The decoder: embed -> scanned blocks -> final norm -> logits, as pure functions over a params dict.

Legend: B batch, T query positions, S cache slots, D width, F MLP width, V vocab rows, N query heads,
K kv heads, H head dim, L layers.

Why plain functions and not `flax.linen` modules: the parameter tree is exactly the table in
`param_table()` (shape-suffixed names, logical axes), which the HF name map, the sharding rules and the
checkpoint code all read; and two models (base and RL) trace side by side in one jit program with
their caches as ordinary pytrees. Flax provides the pytree dataclasses (`KVCache`, `TrainState`).

`apply(params, tokens, positions, cache)` serves all three uses:
  * teacher-forced scoring (`cache=None`): causal attention among the T tokens, pads masked;
  * prefill: the T prompt tokens are written into an empty cache;
  * incremental decoding: T=1 new token attends to the cache.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from dlogp_jax.model import layers
from dlogp_jax.model.config import ModelConfig
from dlogp_jax.model.kv_cache import KVCache, advance, write
from dlogp_jax.sharding import constrain


@dataclasses.dataclass(frozen=True)
class ParamInfo:
    shape: tuple[int, ...]
    axes: tuple[str | None, ...]  # logical axis names, one per dimension
    init: str  # "normal", "ones" or "zeros"


def param_table(config: ModelConfig) -> dict[str, Any]:
    """The parameter tree as ParamInfo leaves: shapes, logical axes, initializers.

    Layer weights carry a leading L axis (scanned). Optional leaves exist only when the architecture
    has them (q/k/v biases for Qwen2, q/k norms for Qwen3, lm_head when untied).
    """
    c = config
    d, f, h = c.hidden_size, c.intermediate_size, c.head_dim
    n, k, n_l = c.num_heads, c.num_kv_heads, c.num_layers
    lyr = {
        "attn_norm_ld": ParamInfo((n_l, d), ("layers", "norm"), "ones"),
        "q_ldnh": ParamInfo((n_l, d, n, h), ("layers", "embed", "q_heads", "head_dim"), "normal"),
        "k_ldkh": ParamInfo((n_l, d, k, h), ("layers", "embed", "kv_heads", "head_dim"), "normal"),
        "v_ldkh": ParamInfo((n_l, d, k, h), ("layers", "embed", "kv_heads", "head_dim"), "normal"),
        "o_lnhd": ParamInfo((n_l, n, h, d), ("layers", "q_heads", "head_dim", "embed"), "normal"),
        "mlp_norm_ld": ParamInfo((n_l, d), ("layers", "norm"), "ones"),
        "gate_ldf": ParamInfo((n_l, d, f), ("layers", "embed", "mlp"), "normal"),
        "up_ldf": ParamInfo((n_l, d, f), ("layers", "embed", "mlp"), "normal"),
        "down_lfd": ParamInfo((n_l, f, d), ("layers", "mlp", "embed"), "normal"),
    }
    if c.qkv_bias:
        lyr["q_bias_lnh"] = ParamInfo((n_l, n, h), ("layers", "q_heads", "head_dim"), "zeros")
        lyr["k_bias_lkh"] = ParamInfo((n_l, k, h), ("layers", "kv_heads", "head_dim"), "zeros")
        lyr["v_bias_lkh"] = ParamInfo((n_l, k, h), ("layers", "kv_heads", "head_dim"), "zeros")
    if c.o_bias:
        lyr["o_bias_ld"] = ParamInfo((n_l, d), ("layers", "norm"), "zeros")
    if c.qk_norm:
        lyr["q_norm_lh"] = ParamInfo((n_l, h), ("layers", "head_dim"), "ones")
        lyr["k_norm_lh"] = ParamInfo((n_l, h), ("layers", "head_dim"), "ones")
    table = {
        "embed_vd": ParamInfo((c.vocab_size, d), ("vocab", "embed"), "normal"),
        "layers": lyr,
        "final_norm_d": ParamInfo((d,), ("norm",), "ones"),
    }
    if not c.tie_embeddings:
        table["lm_head_dv"] = ParamInfo((d, c.vocab_size), ("embed", "vocab"), "normal")
    return table


def _is_info(x) -> bool:
    return isinstance(x, ParamInfo)


def param_axes(config: ModelConfig):
    """Tree of logical-axes tuples matching the params tree."""
    return jax.tree.map(lambda i: i.axes, param_table(config), is_leaf=_is_info)


def init(rng: jax.Array, config: ModelConfig, dtype=jnp.float32, std: float = 0.02):
    """Random params (normal(std) weights, unit norms, zero biases).

    Jit with `out_shardings=tree_shardings(mesh, param_axes(c), jax.eval_shape(init, ...))` for a
    sharded init that never materializes the full tree on one device.
    """
    table = param_table(config)
    leaves, treedef = jax.tree.flatten(table, is_leaf=_is_info)
    keys = jax.random.split(rng, len(leaves))

    def make(info: ParamInfo, key):
        if info.init == "ones":
            return jnp.ones(info.shape, dtype)
        if info.init == "zeros":
            return jnp.zeros(info.shape, dtype)
        return (std * jax.random.normal(key, info.shape, jnp.float32)).astype(dtype)

    return jax.tree.unflatten(treedef, [make(i, k) for i, k in zip(leaves, keys)])


def _block(x, p, *, positions, mask, cache_kv, end_index, config: ModelConfig, attend=None):
    """One decoder layer on x [B, T, D] with layer params p; returns (x, (k, v) cache or None).

    positions: [B, T] RoPE positions. mask: [B, T, S] attention mask. cache_kv: this layer's
    (k, v) cache buffers, or None when scoring. end_index: the cache's write position.

    attend: when given, `attend(q [B, T, N, H], k [B, T, K, H], v) -> (out [B, T, N, H], new_kv)`
    replaces the dense cache write and attention (a paged cache reads and writes its own pages).
    """
    c = config
    dt = x.dtype
    h = layers.rms_norm(x, p["attn_norm_ld"], c.rms_norm_eps)
    q = jnp.einsum("btd,dnh->btnh", h, p["q_ldnh"].astype(dt))
    k = jnp.einsum("btd,dkh->btkh", h, p["k_ldkh"].astype(dt))
    v = jnp.einsum("btd,dkh->btkh", h, p["v_ldkh"].astype(dt))
    if c.qkv_bias:
        q, k, v = (
            q + p["q_bias_lnh"].astype(dt),
            k + p["k_bias_lkh"].astype(dt),
            v + p["v_bias_lkh"].astype(dt),
        )
    if c.qk_norm:
        q = layers.rms_norm(q, p["q_norm_lh"], c.rms_norm_eps)
        k = layers.rms_norm(k, p["k_norm_lh"], c.rms_norm_eps)
    q = layers.apply_rope(q, positions, c.rope)
    k = layers.apply_rope(k, positions, c.rope)
    q = constrain(q, ("act_batch", "act_len", "act_heads", "head_dim"))
    if attend is not None:
        attn, new_kv = attend(q, k, v)
    else:
        if cache_kv is None:  # scoring: nothing to keep, so the scan carries no k/v outputs
            keys, values, new_kv = k, v, None
        else:
            keys, values = write(*cache_kv, k, v, end_index)
            new_kv = (keys, values)
        # scoring and training: keys are the T queries' own tokens, so blocks skip the keys
        # above the causal diagonal
        attn = layers.attention(q, keys, values, mask, causal=cache_kv is None)
    # (n h) merged: a contiguous reshape, so XLA never copies a transposed o weight per layer
    b, t, n, hd = attn.shape
    o_weight = p["o_lnhd"].astype(dt).reshape(n * hd, -1)
    out = jnp.einsum("bte,ed->btd", attn.reshape(b, t, n * hd), o_weight)
    if c.o_bias:
        out = out + p["o_bias_ld"].astype(dt)
    x = constrain(x + out, ("act_batch", "act_len", "act_embed"))
    h = layers.rms_norm(x, p["mlp_norm_ld"], c.rms_norm_eps)
    h = layers.mlp(h, p["gate_ldf"].astype(dt), p["up_ldf"].astype(dt), p["down_lfd"].astype(dt))
    return constrain(x + h, ("act_batch", "act_len", "act_embed")), new_kv


def _attention_mask(input_mask, cache: KVCache | None):
    """[B, T, S] bool: causal in slot order and only onto real tokens."""
    b, t = input_mask.shape
    if cache is None:
        causal = jnp.tril(jnp.ones((t, t), bool))
        return causal[None] & input_mask[:, None, :]
    s = cache.cache_length
    key_mask = jax.lax.dynamic_update_slice(cache.key_mask, input_mask, (0, cache.end_index))
    q_slot = cache.end_index + jnp.arange(t)
    causal = jnp.arange(s)[None, :] <= q_slot[:, None]  # [T, S]
    return causal[None] & key_mask[:, None, :]


def hidden_states(
    params,
    tokens: jax.Array,
    positions: jax.Array,
    cache: KVCache | None = None,
    input_mask: jax.Array | None = None,
    *,
    config: ModelConfig,
    remat: bool = False,
) -> tuple[jax.Array, KVCache | None]:
    """Final-norm hidden states.

    Args:
      params: tree from `init` or `hf_weights.load_params`.
      tokens: [B, T] int token ids.
      positions: [B, T] int RoPE positions (0 at each sequence's first real token).
      cache: None for teacher-forced scoring, else a KVCache that receives the T new tokens.
      input_mask: [B, T] bool, False at padding; default all True.
      config: the model config (static).
      remat: rematerialize each layer in the backward pass (training memory).
    Returns:
      ([B, T, D] hidden states in the compute dtype, updated cache or None).
    """
    dt = jnp.dtype(config.dtype)
    if input_mask is None:
        input_mask = jnp.ones(tokens.shape, bool)
    x = jnp.take(params["embed_vd"], tokens, axis=0).astype(dt)
    x = constrain(x, ("act_batch", "act_len", "act_embed"))
    mask = _attention_mask(input_mask, cache)
    end = None if cache is None else cache.end_index

    def body(x, layer):
        p, kv = layer
        return _block(
            x, p, positions=positions, mask=mask, cache_kv=kv, end_index=end, config=config
        )

    if remat:
        body = jax.checkpoint(body, prevent_cse=False)
    kv_in = None if cache is None else (cache.k, cache.v)
    if config.scan_layers:
        x, new_kv = jax.lax.scan(body, x, (params["layers"], kv_in))
    else:
        outs = []
        for i in range(config.num_layers):
            layer = jax.tree.map(lambda a, i=i: a[i], (params["layers"], kv_in))
            x, kv = body(x, layer)
            outs.append(kv)
        new_kv = jax.tree.map(lambda *a: jnp.stack(a), *outs)
    x = layers.rms_norm(x, params["final_norm_d"], config.rms_norm_eps)
    if cache is not None:
        cache = advance(cache, *new_kv, input_mask)
    return x, cache


def hidden_states_with_attention(
    params, tokens: jax.Array, positions: jax.Array, cache, attend, *, config: ModelConfig
):
    """Final-norm hidden states with a caller-owned cache (the paged engine's page pools).

    The cache is carried whole through the layer loop (not sliced per layer as scan inputs and
    re-stacked as outputs), so `attend` can update it in place: no per-layer copy of the pools.

    Args:
      params: tree from `init` or `hf_weights.load_params`.
      tokens: [B, T] int token ids. positions: [B, T] int RoPE positions.
      cache: any pytree; passed to and returned by `attend`.
      attend: attend(q [B, T, N, H], k [B, T, K, H], v [B, T, K, H], cache, layer) ->
        (out [B, T, N, H], cache); `layer` is the layer index (traced under scan).
      config: the model config (static).
    Returns:
      ([B, T, D] hidden states in the compute dtype, the cache after the last layer).
    """
    dt = jnp.dtype(config.dtype)
    x = jnp.take(params["embed_vd"], tokens, axis=0).astype(dt)
    x = constrain(x, ("act_batch", "act_len", "act_embed"))

    def body(carry, layer):
        x, cache = carry
        p, index = layer
        bound = lambda q, k, v: attend(q, k, v, cache, index)
        x, cache = _block(
            x,
            p,
            positions=positions,
            mask=None,
            cache_kv=None,
            end_index=None,
            config=config,
            attend=bound,
        )
        return (x, cache), None

    if config.scan_layers:
        xs = (params["layers"], jnp.arange(config.num_layers))
        (x, cache), _ = jax.lax.scan(body, (x, cache), xs)
    else:
        for i in range(config.num_layers):
            p = jax.tree.map(lambda a, i=i: a[i], params["layers"])
            (x, cache), _ = body((x, cache), (p, i))
    return layers.rms_norm(x, params["final_norm_d"], config.rms_norm_eps), cache


def unembed_matrix(params, config: ModelConfig) -> jax.Array:
    """The [D, V] output projection (the transposed embedding when tied)."""
    if config.tie_embeddings:
        return params["embed_vd"].T
    return params["lm_head_dv"]


def logits_from_hidden(params, h: jax.Array, config: ModelConfig) -> jax.Array:
    """[..., D] hidden -> [..., V] fp32 logits.

    The tied case contracts against the [V, D] embedding directly: a transposed (or sliced) copy of a
    151,936-row matrix per call would cost as much memory as the weights themselves.
    """
    if config.tie_embeddings:
        w = params["embed_vd"].astype(h.dtype)
        return jnp.einsum("...d,vd->...v", h, w, preferred_element_type=jnp.float32)
    w = params["lm_head_dv"].astype(h.dtype)
    return jnp.einsum("...d,dv->...v", h, w, preferred_element_type=jnp.float32)


def apply(
    params,
    tokens: jax.Array,
    positions: jax.Array,
    cache: KVCache | None = None,
    input_mask: jax.Array | None = None,
    *,
    config: ModelConfig,
) -> tuple[jax.Array, KVCache | None]:
    """Full forward: ([B, T, V] fp32 logits, updated cache). See `hidden_states` for arguments.

    Materializes all logits: for scoring long sequences under a large vocabulary use
    `dlogp_jax.logprobs`, which projects to the vocabulary chunk by chunk.
    """
    h, cache = hidden_states(params, tokens, positions, cache, input_mask, config=config)
    return logits_from_hidden(params, h, config), cache
