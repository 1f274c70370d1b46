"""Sampling filters: temperature, top-k, top-p (nucleus) and greedy, on `[B, V]` logits.

Legend: B rows (sequences), V candidates (vocabulary, or a candidate subset in faithful mode).

Order of operations as in Hugging Face `generate` and vLLM: divide by the temperature, keep the top-k
logits, then keep the top-p nucleus of what is left, then draw. Temperature 0 is greedy (argmax of
the raw logits). `SamplingParams` is a tiny frozen dataclass (hashable, a static jit argument) whose
`sample` turns logits and one PRNG key per row into token ids.

Implementation choices (same distribution as the usual sort-based code, cheaper on accelerators and
on CPU, where sorting `[B, 151936]` costs more than the whole forward pass of a small model):
  * the nucleus rule is Hugging Face's (sort ascending, drop the tokens whose ascending cumulative
    probability is <= 1 - p, always keep the most likely token), written without a sort: token i is
    kept iff the mass of tokens with logit <= logit_i exceeds 1 - p. Tokens whose logits are exactly
    equal at the cut are kept or dropped together (kept when HF would keep any of them); HF and vLLM
    split such ties by sort order.
  * `top_p_keep` (the explicit mask, for `filter`/`log_probs`) finds the cut by bisection over the
    order-preserving int32 image of the float logits: 32 masked sums, exact.
  * `sample` with top-p draws by rejection instead (as FlashInfer's sorting-free samplers): draw from
    the remaining candidates, accept if the draw is in the nucleus (one masked sum), else drop every
    token at or below it and draw again. Rejections only remove non-nucleus tokens, so an accepted draw
    has the nucleus distribution exactly; a few rounds suffice (rows still rejected after 32 rounds,
    or with NaN logits, draw once from the bisection mask). Round r of a row uses `fold_in(key, r)`,
    so a row's draw does not depend on the other rows.
  * each draw is an inverse CDF with one uniform number, in two levels (block sums, then the cumulative
    sum inside the chosen block), instead of Gumbel-max, which needs V random numbers per row.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from dlogp_jax.types import Array, Float, Int

_BLOCK = 256  # inverse-CDF block width
_MAX_ROUNDS = 32  # rejection rounds before the exact (bisection) fallback


def apply_temperature(logits: Float[Array, "B V"], temperature: float) -> Float[Array, "B V"]:
    """Logits / temperature in fp32 (temperature > 0; 1 is the identity)."""
    logits = logits.astype(jnp.float32)
    return logits if temperature == 1.0 else logits / temperature


def top_k_filter(logits: Float[Array, "B V"], k: int) -> Float[Array, "B V"]:
    """Sets logits below the k-th largest to -inf (ties with it are kept, as in HF). k <= 0: no-op."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = jax.lax.top_k(logits, k)[0][..., -1:]
    return jnp.where(logits >= kth, logits, -jnp.inf)


def _sortable_int(x: Float[Array, ...]) -> Int[Array, ...]:
    """Monotone map float32 -> int32: x < y iff f(x) < f(y) (for non-NaN x, y)."""
    i = jax.lax.bitcast_convert_type(x.astype(jnp.float32), jnp.int32)
    return jnp.where(i < 0, i ^ 0x7FFFFFFF, i)


def top_p_keep(logits: Float[Array, "B V"], p: float) -> jax.Array:
    """[B, V] bool: the top-p nucleus of softmax(logits), Hugging Face's rule (see module docstring).

    Token i is kept iff the probability mass of tokens with logit <= logit_i exceeds 1 - p; so the most
    likely token is always kept and p >= 1 keeps every token with non-zero probability.
    """
    if p >= 1.0:
        return logits > -jnp.inf
    w = jnp.exp(logits - jnp.max(logits, axis=-1, keepdims=True))
    cut = (1.0 - p) * jnp.sum(w, axis=-1, keepdims=True)
    key = _sortable_int(logits)
    # Invariant: mass(key <= lo) <= cut < mass(key <= hi). 32 halvings of an int32 range end at hi = lo + 1.
    lo = jnp.min(key, axis=-1, keepdims=True) - 1
    hi = jnp.max(key, axis=-1, keepdims=True)

    def halve(_, bounds):
        lo, hi = bounds
        mid = (lo >> 1) + (hi >> 1) + (lo & hi & 1)  # floor((lo + hi) / 2) without overflow
        below = jnp.sum(jnp.where(key <= mid, w, 0.0), axis=-1, keepdims=True) <= cut
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, _ = jax.lax.fori_loop(0, 32, halve, (lo, hi))
    return key > lo


def sample_from_weights(
    weights: Float[Array, "B V"], uniform: Float[Array, " B"]
) -> Int[Array, " B"]:
    """Inverse-CDF draw: the index i with cumsum(w)[i-1] <= u * sum(w) < cumsum(w)[i].

    Args:
      weights: [B, V] non-negative unnormalised probabilities (each row with a positive entry).
      uniform: [B] numbers in [0, 1), one per row.
    Returns:
      [B] int32 indices, always of an entry with positive weight.
    """
    b, v = weights.shape
    c = min(_BLOCK, v)
    pad = -v % c
    w = jnp.pad(weights.astype(jnp.float32), ((0, 0), (0, pad))).reshape(b, -1, c)
    block_mass = jnp.sum(w, axis=-1)  # [B, nb]
    block_cum = jnp.cumsum(block_mass, axis=-1)
    target = uniform * block_cum[:, -1]
    iota_b = jnp.arange(block_mass.shape[1])
    last_block = jnp.max(jnp.where(block_mass > 0, iota_b, 0), axis=-1)
    blk = jnp.minimum(jnp.sum(block_cum <= target[:, None], axis=-1), last_block)
    inner = jnp.take_along_axis(w, blk[:, None, None], axis=1)[:, 0]  # [B, c]
    before = jnp.take_along_axis(block_cum - block_mass, blk[:, None], axis=1)[:, 0]
    local = jnp.cumsum(inner, axis=-1)
    iota_c = jnp.arange(c)
    # rounding can put the target just outside the chosen block: stay on its positive entries
    first_pos = jnp.min(jnp.where(inner > 0, iota_c, c - 1), axis=-1)
    last_pos = jnp.max(jnp.where(inner > 0, iota_c, 0), axis=-1)
    idx = jnp.sum(local <= (target - before)[:, None], axis=-1)
    idx = jnp.clip(idx, first_pos, last_pos)
    return (blk * c + idx).astype(jnp.int32)


def _uniforms(keys: jax.Array, round_index) -> Float[Array, " B"]:
    return jax.vmap(lambda k: jax.random.uniform(jax.random.fold_in(k, round_index)))(keys)


def sample_top_p(logits: Float[Array, "B V"], p: float, keys: jax.Array) -> Int[Array, " B"]:
    """Draws from the top-p nucleus of softmax(logits) by rejection (see the module docstring).

    Args:
      logits: [B, V] processed logits (temperature and top-k applied; -inf never drawn).
      p: the nucleus mass, in (0, 1).
      keys: [B] PRNG keys; round r draws U[0, 1) from fold_in(key, r).
    Returns:
      [B] int32 indices, distributed as softmax(where(top_p_keep(logits, p), logits, -inf)).
    """
    w = jnp.exp(logits - jnp.max(logits, axis=-1, keepdims=True))
    cut = (1.0 - p) * jnp.sum(w, axis=-1)
    b = logits.shape[0]

    def draw(state):
        r, floor, token, done = state
        t = sample_from_weights(jnp.where(logits > floor[:, None], w, 0.0), _uniforms(keys, r))
        x_t = jnp.take_along_axis(logits, t[:, None], axis=-1)  # [B, 1]
        in_nucleus = jnp.sum(jnp.where(logits <= x_t, w, 0.0), axis=-1) > cut
        token = jnp.where(done, token, t)
        floor = jnp.where(done | in_nucleus, floor, x_t[:, 0])  # drop t and everything below it
        return r + 1, floor, token, done | in_nucleus

    init = (
        jnp.zeros((), jnp.int32),
        jnp.full((b,), -jnp.inf),
        jnp.zeros((b,), jnp.int32),
        jnp.zeros((b,), bool),
    )
    _, _, token, done = jax.lax.while_loop(
        lambda s: ~jnp.all(s[3]) & (s[0] < _MAX_ROUNDS), draw, init
    )

    def exact():  # rows still rejected (or NaN logits): one draw from the explicit nucleus mask
        nucleus = jnp.where(top_p_keep(logits, p), w, 0.0)
        return jnp.where(done, token, sample_from_weights(nucleus, _uniforms(keys, _MAX_ROUNDS)))

    return jax.lax.cond(jnp.all(done), lambda: token, exact)


@dataclasses.dataclass(frozen=True)
class SamplingParams:
    """Temperature / top-p / top-k settings; temperature 0 means greedy.

    Attributes:
      temperature: >= 0; 0 is argmax.
      top_p: in (0, 1]; 1 disables the nucleus filter.
      top_k: >= 0; 0 disables the top-k filter.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"temperature={self.temperature}: must be >= 0 (0 is greedy).")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p={self.top_p}: must be in (0, 1].")
        if self.top_k < 0:
            raise ValueError(f"top_k={self.top_k}: must be >= 0 (0 disables it).")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def filter(self, logits: Float[Array, "B V"]) -> Float[Array, "B V"]:
        """Processed logits: temperature, top-k, top-p; removed entries are -inf.

        softmax of the result is the distribution `sample` draws from. Greedy keeps only the argmax.
        """
        if self.greedy:
            top = jnp.argmax(logits, axis=-1)
            return jnp.where(jnp.arange(logits.shape[-1]) == top[:, None], 0.0, -jnp.inf)
        x = top_k_filter(apply_temperature(logits, self.temperature), self.top_k)
        return jnp.where(top_p_keep(x, self.top_p), x, -jnp.inf)

    def log_probs(self, logits: Float[Array, "B V"]) -> Float[Array, "B V"]:
        """[B, V] fp32 log-probabilities of the sampling distribution (-inf where filtered)."""
        return jax.nn.log_softmax(self.filter(logits), axis=-1)

    def sample(self, logits: Float[Array, "B V"], keys: jax.Array) -> Int[Array, " B"]:
        """Draws one index per row from softmax(filter(logits)).

        Args:
          logits: [B, V] unnormalised log-weights (log-probs or logits; -inf entries never drawn).
          keys: [B] PRNG keys, one per row; ignored when greedy.
        Returns:
          [B] int32 token indices.
        """
        if self.greedy:
            return jnp.argmax(logits, axis=-1).astype(jnp.int32)
        x = top_k_filter(apply_temperature(logits, self.temperature), self.top_k)
        if self.top_p >= 1.0:
            weights = jnp.exp(x - jnp.max(x, axis=-1, keepdims=True))
            return sample_from_weights(weights, _uniforms(keys, 0))
        return sample_top_p(x, self.top_p, keys)
