"""Per-step math of selective replacement and extrapolation, on full-vocabulary log-probs.

Legend: B rows (sequences), V vocabulary, C = K + 1 top-K candidates (K top log-probs plus one token).

Notation (docs/method.md §1-§3): `logp_base`, `logp_rl` are raw log-softmax values at temperature 1
(before any sampling filter) of the base model π_B and the RL model π_R at one decoding step; ŷ is
the token the base model proposed.

  * Δlog p(v) = log π_R(v) − log π_B(v)  (`dlogp`).
  * Extrapolated distribution π_γ ∝ π_R^(1+γ) / π_B^γ: logits log π_R + γ·Δlog p (`extrapolated_logits`;
    γ = 0 gives π_R exactly, bit for bit).
  * Criteria (`CRITERIA`), all on raw log-probs over the full vocabulary (exact mode); the official
    code's names (in brackets) are accepted as aliases (`CRITERION_ALIASES`, `canonical_criterion`):
      dlogp         Δlog p(ŷ) <= τ          (the paper's criterion, `neg_logp` in the official code)
      logp          log π_B(ŷ) − log π_R(ŷ) = −Δlog p(ŷ) <= τ   (`logp`: the mirror of dlogp)
      entropy_base  H(π_B) >= τ             (`entropy`)
      entropy_rl    H(π_R) >= τ             (`assist_entropy`)
      kl_rl_base    KL(π_R‖π_B) >= τ        (`kl`)
      kl_base_rl    KL(π_B‖π_R) >= τ        (`kl_r`)
      kl_sym        mean of the two >= τ    (`js`: the symmetrised KL, not Jensen-Shannon)
      random        U < τ, U ~ U[0, 1)      (`rand`)
      all / none    always / never

Faithful mode (`TopKView`, `faithful_score`, `faithful_mix_logits`) reproduces the official
decode-time approximation of `extrapolate/extrapolate.py::get_enable_mask` (docs/method.md §1, §2):
each model exposes only its top-K raw log-probs plus the token it sampled; a token missing from a
dict gets that dict's smallest value; entropy and KL are computed on the renormalised truncated
supports; the re-draw candidates are the base dict, scored w_B·ℓ_B + w_R·ℓ̃_R. Deviation: the
official dicts come from vLLM, whose top-K breaks ties in its own order; here ties go to the lower
token id (lax.top_k).

`entropy` and `take` are the ones of `logprobs` (one copy, shared with teacher-forced scoring).
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from dlogp_jax.logprobs import entropy, take
from dlogp_jax.types import Array, Bool, Float, Int

CRITERIA = (
    "dlogp",
    "logp",
    "entropy_base",
    "entropy_rl",
    "kl_rl_base",
    "kl_base_rl",
    "kl_sym",
    "random",
    "all",
    "none",
)
_AT_MOST = ("dlogp", "logp")  # fire when score <= τ; the divergence criteria fire at score >= τ
# The official code's criterion names -> ours (`logp` is the same name in both).
CRITERION_ALIASES = {
    "neg_logp": "dlogp",
    "entropy": "entropy_base",
    "assist_entropy": "entropy_rl",
    "kl": "kl_rl_base",
    "kl_r": "kl_base_rl",
    "js": "kl_sym",
    "rand": "random",
}


def canonical_criterion(name: str) -> str:
    """Our name of criterion `name` (one of CRITERIA or an official alias, CRITERION_ALIASES).

    Raises:
      ValueError: an unknown name, listing both sets of names.
    """
    name = CRITERION_ALIASES.get(name, name)
    if name not in CRITERIA:
        raise ValueError(
            f"criterion {name!r}: use one of {', '.join(CRITERIA)} (or the official names "
            f"{', '.join(CRITERION_ALIASES)})."
        )
    return name


def kl(logp_p: Float[Array, "B V"], logp_q: Float[Array, "B V"]) -> Float[Array, " B"]:
    """KL(P‖Q) = Σ_v p(v)(log p(v) − log q(v)) of two normalised log-prob rows."""
    p = jnp.exp(logp_p)
    diff = jnp.where(p > 0, logp_p - logp_q, 0.0)
    return jnp.sum(p * diff, axis=-1)


def extrapolated_logits(
    logp_base: Float[Array, "B V"], logp_rl: Float[Array, "B V"], gamma: float
) -> Float[Array, "B V"]:
    """Unnormalised log π_γ = log π_R + γ·Δlog p (equal to logp_rl itself when γ = 0).

    `gamma` may be traced (a sweep over γ then compiles once); γ = 0 still returns exactly
    logp_rl, also where a log-prob is -inf (0·inf would be NaN).
    """
    if isinstance(gamma, (int, float)) and gamma == 0.0:
        return logp_rl
    return jnp.where(gamma == 0.0, logp_rl, logp_rl + gamma * (logp_rl - logp_base))


def extrapolated_logprobs(
    logp_base: Float[Array, "B V"], logp_rl: Float[Array, "B V"], gamma: float
) -> Float[Array, "B V"]:
    """Normalised log π_γ, π_γ ∝ π_R^(1+γ) / π_B^γ, in fp32."""
    return jax.nn.log_softmax(extrapolated_logits(logp_base, logp_rl, gamma), axis=-1)


def criterion_score(
    name: str,
    logp_base: Float[Array, "B V"],
    logp_rl: Float[Array, "B V"],
    proposed: Int[Array, " B"],
    uniform: Float[Array, " B"],
) -> Float[Array, " B"]:
    """The exact (full-vocabulary) statistic that criterion `name` thresholds.

    Args:
      name: one of CRITERIA.
      logp_base, logp_rl: [B, V] raw log-softmax of each model at this step.
      proposed: [B] the base model's proposed token ŷ.
      uniform: [B] U[0, 1) numbers (the `random` criterion's score).
    Returns:
      [B] fp32 scores (0 for `all`/`none`).
    """
    if name == "dlogp":
        return take(logp_rl, proposed) - take(logp_base, proposed)
    if name == "logp":
        return take(logp_base, proposed) - take(logp_rl, proposed)
    if name == "entropy_base":
        return entropy(logp_base)
    if name == "entropy_rl":
        return entropy(logp_rl)
    kls = {
        "kl_rl_base": lambda: kl(logp_rl, logp_base),
        "kl_base_rl": lambda: kl(logp_base, logp_rl),
    }
    if name in kls:
        return kls[name]()
    if name == "kl_sym":
        return 0.5 * (kl(logp_rl, logp_base) + kl(logp_base, logp_rl))
    if name == "random":
        return uniform
    if name in ("all", "none"):
        return jnp.zeros(proposed.shape, jnp.float32)
    raise ValueError(f"unknown criterion {name!r}; known: {', '.join(CRITERIA)}.")


def criterion_fires(name: str, score: Float[Array, " B"], threshold: float) -> Bool[Array, " B"]:
    """[B] bool: position selected. `dlogp`, `logp`: score <= τ; `random`: score < τ; others:
    score >= τ."""
    if name == "all":
        return jnp.ones(score.shape, bool)
    if name == "none":
        return jnp.zeros(score.shape, bool)
    if name in _AT_MOST:
        return score <= threshold
    if name == "random":
        return score < threshold
    return score >= threshold


# ------------------------------------------------------------------------------------- faithful
@flax.struct.dataclass
class TopKView:
    """What the official code sees at one step: two top-K dicts, each with one extra token.

    Slot K of each dict holds the extra token (the sampled one) and is invalid when that token is
    already among the top K. `*_on_*` are the other model's values aligned to a dict's keys, with
    missing keys padded by the other dict's smallest value.
    """

    keys_b: jax.Array  # [B, C] int32: base top-K, then ŷ
    logp_b: jax.Array  # [B, C] fp32 raw base log-probs of keys_b
    valid_b: jax.Array  # [B, C] bool
    keys_r: jax.Array  # [B, C] int32: RL top-K, then the RL model's own sample
    logp_r: jax.Array  # [B, C]
    valid_r: jax.Array  # [B, C]
    r_on_b: jax.Array  # [B, C] RL values at keys_b (pad: min of the RL dict)
    b_on_r: jax.Array  # [B, C] base values at keys_r (pad: min of the base dict)


def _dict(logp: jax.Array, extra: jax.Array, k: int):
    top = jax.lax.top_k(logp, k)[1].astype(jnp.int32)
    keys = jnp.concatenate([top, extra[:, None].astype(jnp.int32)], axis=-1)
    valid = jnp.concatenate(
        [jnp.ones_like(top, bool), ~jnp.any(top == extra[:, None], -1)[:, None]], -1
    )
    return keys, jnp.take_along_axis(logp, keys, axis=-1), valid


def _align(keys, other_keys, other_logp, other_valid):
    """Values of the other dict at `keys`; keys it lacks get its smallest value."""
    pad = jnp.min(jnp.where(other_valid, other_logp, jnp.inf), axis=-1, keepdims=True)
    match = (keys[:, :, None] == other_keys[:, None, :]) & other_valid[:, None, :]  # [B, C, C]
    found = jnp.sum(jnp.where(match, other_logp[:, None, :], 0.0), axis=-1)
    return jnp.where(jnp.any(match, axis=-1), found, pad)


def topk_view(
    logp_base: Float[Array, "B V"],
    logp_rl: Float[Array, "B V"],
    proposed: Int[Array, " B"],
    rl_sample: Int[Array, " B"],
    k: int = 50,
) -> TopKView:
    """Builds both top-K dicts (base ∪ {ŷ}, RL ∪ {RL's own sample}) and their alignments.

    Args:
      logp_base, logp_rl: [B, V] raw log-softmax (temperature 1, unfiltered).
      proposed: [B] ŷ, the base model's sample. rl_sample: [B] the RL model's own sample.
      k: K, the number of top log-probs each model returns (50 in the official runs).
    """
    keys_b, logp_b, valid_b = _dict(logp_base, proposed, k)
    keys_r, logp_r, valid_r = _dict(logp_rl, rl_sample, k)
    return TopKView(
        keys_b=keys_b,
        logp_b=logp_b,
        valid_b=valid_b,
        keys_r=keys_r,
        logp_r=logp_r,
        valid_r=valid_r,
        r_on_b=_align(keys_b, keys_r, logp_r, valid_r),
        b_on_r=_align(keys_r, keys_b, logp_b, valid_b),
    )


def _renorm(logp: jax.Array, valid: jax.Array) -> jax.Array:
    return jax.nn.log_softmax(jnp.where(valid, logp, -jnp.inf), axis=-1)


def _kl_support(logp_p, q_on_p, valid_p):
    """KL on P's key set: P and the aligned Q are each renormalised over those keys."""
    return kl(_renorm(logp_p, valid_p), _renorm(q_on_p, valid_p))


def faithful_score(
    name: str, view: TopKView, proposed: Int[Array, " B"], uniform: Float[Array, " B"]
) -> Float[Array, " B"]:
    """The official top-K statistic of criterion `name` (see `criterion_score` for the arguments)."""
    if name in ("dlogp", "logp"):
        # ŷ is always in the base dict; its RL value is the RL dict's (or the RL pad).
        slot = jnp.argmax((view.keys_b == proposed[:, None]) & view.valid_b, axis=-1)
        d = take(view.r_on_b, slot) - take(view.logp_b, slot)
        return d if name == "dlogp" else -d
    if name == "entropy_base":
        return entropy(_renorm(view.logp_b, view.valid_b))
    if name == "entropy_rl":
        return entropy(_renorm(view.logp_r, view.valid_r))
    kl_rb = lambda: _kl_support(view.logp_r, view.b_on_r, view.valid_r)
    kl_br = lambda: _kl_support(view.logp_b, view.r_on_b, view.valid_b)
    if name == "kl_rl_base":
        return kl_rb()
    if name == "kl_base_rl":
        return kl_br()
    if name == "kl_sym":
        return 0.5 * (kl_rb() + kl_br())
    return criterion_score(name, view.logp_b, view.logp_r, proposed, uniform)


def faithful_mix_logits(
    view: TopKView, weight_base: float, weight_rl: float
) -> Float[Array, "B C"]:
    """Candidate scores s = w_B·ℓ_B + w_R·ℓ̃_R over the base dict (-inf at invalid slots).

    (w_B, w_R) = (0, 1) is replacement, (−γ, 1+γ) extrapolation. Weights are renormalised to sum to
    1 as in the official code. Sample an index into `view.keys_b` from the result (after temperature,
    top-k and top-p within the candidate set).
    """
    total = weight_base + weight_rl
    wb, wr = weight_base / total, weight_rl / total
    return jnp.where(view.valid_b, wb * view.logp_b + wr * view.r_on_b, -jnp.inf)
