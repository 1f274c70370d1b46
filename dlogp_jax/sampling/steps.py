"""Per-step token choice of each decoding mode: `[B, V]` logits of one or two models -> tokens.

Legend: B sequences, V vocabulary (cut to `vocab_limit`), C faithful candidates (K + 1).

A step function `step_fn(logits_base, logits_rl, keys) -> StepOutput` is everything that differs
between modes; the decode loop (`decode.py`) is shared. `keys` holds one PRNG key per sequence and
step; each random role draws with its own key `fold_in(key, role)`:

  PROPOSE   the driver's draw: the base proposal ŷ (single/replace/extrapolate), or the token itself
            in exact `extrapolate_all`;
  CRITERION the `random` criterion's U;
  REDRAW    the re-draw at selected positions (and faithful `extrapolate_all`);
  RL_OWN    the RL model's own sample, which only enters the faithful RL top-K dict.

So `replace`/`extrapolate` with criterion `none` emit exactly the tokens of `single` (same seed), and
exact `extrapolate_all` with γ = 0 emits exactly the tokens of `single` run on the RL model; `replace`
with `all` draws from the RL model with the REDRAW numbers (same distribution, different tokens).
The re-draw is independent of ŷ: reusing ŷ's random numbers would bias the re-draw given that the
criterion (which depends on ŷ) fired.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.struct
import jax
import jax.numpy as jnp

from dlogp_jax import extrapolation as ex
from dlogp_jax.sampling.spec import DecodeSpec
from dlogp_jax.types import Array, Float

PROPOSE, CRITERION, REDRAW, RL_OWN = 0, 1, 2, 3


@flax.struct.dataclass
class StepOutput:
    """One step's choice and records, [B] each."""

    token: jax.Array  # [B] int32 emitted token
    proposed: jax.Array  # [B] int32 the driver's draw before the criterion (= token if unselected)
    logp_base: jax.Array  # [B] fp32 raw log π_B(token)
    logp_rl: jax.Array  # [B] fp32 raw log π_R(token); 0 in single mode without an RL model
    dlogp: jax.Array  # [B] fp32 Δlog p(proposed), raw full-vocabulary values
    selected: jax.Array  # [B] bool: the criterion fired (always True in extrapolate_all)


@flax.struct.dataclass
class Knobs:
    """The numeric settings a sweep varies: traced, so changing them does not recompile."""

    threshold: jax.Array | float  # [] τ of the criterion
    gamma: jax.Array | float  # [] γ of the extrapolated distribution


StepFn = Callable[[jax.Array, jax.Array | None, jax.Array], StepOutput]


def role_keys(keys: jax.Array, role: int) -> jax.Array:
    """[B] keys `fold_in(key, role)` of one random role."""
    return jax.vmap(lambda k: jax.random.fold_in(k, role))(keys)


def uniforms(keys: jax.Array, role: int) -> Float[Array, " B"]:
    """[B] U[0, 1) numbers, one per key, of one random role."""
    return jax.vmap(jax.random.uniform)(role_keys(keys, role))


def raw_logprobs(logits: Float[Array, "B V"], vocab_limit: int | None) -> Float[Array, "B V"]:
    """fp32 log-softmax over the first `vocab_limit` rows (padding rows never get probability)."""
    if vocab_limit is not None:
        logits = logits[..., :vocab_limit]
    return jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)


def _output(token, proposed, lb, lr, selected) -> StepOutput:
    logp_rl = ex.take(lr, token) if lr is not None else jnp.zeros(token.shape, jnp.float32)
    dlogp = (
        ex.take(lr, proposed) - ex.take(lb, proposed) if lr is not None else jnp.zeros_like(logp_rl)
    )
    return StepOutput(
        token=token,
        proposed=proposed,
        logp_base=ex.take(lb, token),
        logp_rl=logp_rl,
        dlogp=dlogp,
        selected=selected,
    )


def _single(spec: DecodeSpec, knobs: Knobs, lb, lr, keys) -> StepOutput:
    token = spec.sampling.sample(lb, role_keys(keys, PROPOSE))
    return _output(token, token, lb, lr, jnp.zeros(token.shape, bool))


def _redraw_exact(spec: DecodeSpec, knobs: Knobs, lb, lr, yhat, keys):
    """Token re-drawn from the mode's target distribution over the full vocabulary."""
    target = lr if spec.mode == "replace" else ex.extrapolated_logits(lb, lr, knobs.gamma)
    return spec.sampling.sample(target, role_keys(keys, REDRAW))


def _redraw_faithful(spec: DecodeSpec, knobs: Knobs, lb, lr, yhat, keys, view=None):
    """Token re-drawn from the official candidate set (base top-K ∪ {ŷ}), mixed top-K log-probs."""
    if view is None:
        view = _view(spec, lb, lr, yhat, keys)
    w = (0.0, 1.0) if spec.mode == "replace" else (-knobs.gamma, 1.0 + knobs.gamma)
    scores = ex.faithful_mix_logits(view, *w)
    return ex.take(view.keys_b, spec.sampling.sample(scores, role_keys(keys, REDRAW)))


def _view(spec: DecodeSpec, lb, lr, yhat, keys) -> ex.TopKView:
    rl_own = spec.sampling.sample(lr, role_keys(keys, RL_OWN))
    return ex.topk_view(lb, lr, yhat, rl_own, spec.faithful_top_k)


def _selective(spec: DecodeSpec, knobs: Knobs, lb, lr, keys) -> StepOutput:
    """replace / extrapolate: keep ŷ unless the criterion fires, then re-draw."""
    yhat = spec.sampling.sample(lb, role_keys(keys, PROPOSE))
    u = uniforms(keys, CRITERION)
    view = None
    if spec.faithful and spec.criterion not in ("all", "none", "random"):
        view = _view(spec, lb, lr, yhat, keys)
        score = ex.faithful_score(spec.criterion, view, yhat, u)
    else:
        score = ex.criterion_score(spec.criterion, lb, lr, yhat, u)
    fires = ex.criterion_fires(spec.criterion, score, knobs.threshold)
    if spec.criterion == "none":
        return _output(yhat, yhat, lb, lr, fires)
    if spec.faithful:
        redraw = lambda: _redraw_faithful(spec, knobs, lb, lr, yhat, keys, view)
    else:
        redraw = lambda: _redraw_exact(spec, knobs, lb, lr, yhat, keys)
    if spec.criterion == "all":
        token = redraw()
    else:  # skip the (sorting-free but full-vocabulary) re-draw when no row needs it
        token = jax.lax.cond(jnp.any(fires), lambda: jnp.where(fires, redraw(), yhat), lambda: yhat)
    return _output(token, yhat, lb, lr, fires)


def _extrapolate_all(spec: DecodeSpec, knobs: Knobs, lb, lr, keys) -> StepOutput:
    selected = jnp.ones(lb.shape[:1], bool)
    if spec.faithful:  # the official code still needs ŷ: it defines the candidate set
        yhat = spec.sampling.sample(lb, role_keys(keys, PROPOSE))
        return _output(_redraw_faithful(spec, knobs, lb, lr, yhat, keys), yhat, lb, lr, selected)
    target = ex.extrapolated_logits(lb, lr, knobs.gamma)
    token = spec.sampling.sample(target, role_keys(keys, PROPOSE))
    return _output(token, token, lb, lr, selected)


_MODES = {
    "single": _single,
    "replace": _selective,
    "extrapolate": _selective,
    "extrapolate_all": _extrapolate_all,
}


def make_step_fn(spec: DecodeSpec, knobs: Knobs | None = None) -> StepFn:
    """The step function of `spec.mode`.

    Args:
      spec: the static settings.
      knobs: threshold and γ, possibly traced; default: spec.threshold and spec.gamma.

    Returns:
      step_fn(logits_base [B, V_base], logits_rl [B, V_rl] or None, keys [B] PRNG keys) ->
      StepOutput of [B] arrays. Logits are raw model outputs (any float dtype); rows at or beyond
      `spec.vocab_limit` are dropped before the fp32 log-softmax.
    """
    mode_fn = _MODES[spec.mode]
    knobs = knobs if knobs is not None else Knobs(spec.threshold, spec.gamma)

    def step_fn(logits_base, logits_rl, keys) -> StepOutput:
        lb = raw_logprobs(logits_base, spec.vocab_limit)
        lr = None if logits_rl is None else raw_logprobs(logits_rl, spec.vocab_limit)
        if lr is None and spec.needs_rl:
            raise ValueError(f"mode {spec.mode!r} needs the RL model's logits.")
        if lr is not None and lr.shape != lb.shape:
            raise ValueError(
                f"base and RL vocabularies differ ({lb.shape[-1]} vs {lr.shape[-1]} rows): set "
                "vocab_limit to the tokenizer's length."
            )
        return mode_fn(spec, knobs, lb, lr, keys)

    return step_fn
