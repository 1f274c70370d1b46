"""Per-step token choice of each decoding mode: `[B, V]` logits of one or two models -> tokens.

Legend: B sequences, V vocabulary (cut to `vocab_limit`), C faithful candidates (K + 1).

A step function `step_fn(logits_base, logits_rl, keys) -> StepOutput` is everything that differs
between modes; the decode loop (`decode.py`) is shared, and stores every field of `StepOutput` as a
`[B, M]` record: a mode records something new by adding one field here. `keys` holds one PRNG key
per sequence and step; each random role draws with its own key `fold_in(key, role)`:

  PROPOSE   the driver's draw: the base proposal ŷ (single/replace/extrapolate), or the token itself
            in exact `extrapolate_all`;
  CRITERION the `random` criterion's U;
  REDRAW    the re-draw at selected positions (and faithful `extrapolate_all`);
  RL_OWN    the RL model's own sample, which only enters the faithful RL top-K dict.

So `replace`/`extrapolate` with criterion `none` emit exactly the tokens of `single` (same seed), and
exact `extrapolate_all` with γ = 0 emits exactly the tokens of `single` run on the RL model; `replace`
with `all` draws from the RL model with the REDRAW numbers (same distribution, different tokens).
The re-draw is independent of ŷ: reusing ŷ's random numbers would bias the re-draw given that the
criterion (which depends on ŷ) fired. The modes and criteria are those of docs/method.md §2-§3.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import flax.struct
import jax
import jax.numpy as jnp

from dlogp_jax import extrapolation as ex
from dlogp_jax.logprobs import take
from dlogp_jax.sampling.spec import DecodeSpec
from dlogp_jax.types import Array, Float

PROPOSE, CRITERION, REDRAW, RL_OWN = 0, 1, 2, 3


def _token_ids():
    """A record of token ids: `pad_id` once a sequence has ended (every other record: 0 / False)."""
    return flax.struct.field(metadata={"token_ids": True})


@flax.struct.dataclass
class StepOutput:
    """One step's choice and records, [B] each (the decode loop keeps each as [B, M])."""

    token: jax.Array = _token_ids()  # [B] int32 emitted token
    proposed: jax.Array = _token_ids()  # [B] int32 the driver's draw (= token if unselected)
    logp_base: jax.Array  # [B] fp32 raw log π_B(token)
    logp_rl: jax.Array  # [B] fp32 raw log π_R(token); 0 in single mode without an RL model
    dlogp: jax.Array  # [B] fp32 Δlog p(proposed), raw full-vocabulary values
    selected: jax.Array  # [B] bool: the criterion fired (always True in extrapolate_all)


def record_padding(pad_id: int) -> StepOutput:
    """Per record, the value written where a sequence has ended: `pad_id` for token ids, else 0."""
    return StepOutput(
        **{
            f.name: pad_id if f.metadata.get("token_ids") else 0
            for f in dataclasses.fields(StepOutput)
        }
    )


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


@dataclasses.dataclass(frozen=True)
class _Step:
    """What every mode function sees at one step."""

    spec: DecodeSpec
    knobs: Knobs
    lb: jax.Array  # [B, V] fp32 raw log-probs of the base model
    lr: jax.Array | None  # [B, V] fp32 raw log-probs of the RL model; None without one
    keys: jax.Array  # [B] PRNG keys of this step

    def sample(self, logits: Float[Array, "B V"], role: int) -> jax.Array:
        """[B] draws from `logits` under the spec's sampling filters, with the keys of `role`."""
        return self.spec.sampling.sample(logits, role_keys(self.keys, role))

    def output(self, token, proposed, selected) -> StepOutput:
        """The step's records for emitted `token` [B], proposal `proposed` [B], `selected` [B]."""
        lb, lr = self.lb, self.lr
        logp_rl = take(lr, token) if lr is not None else jnp.zeros(token.shape, jnp.float32)
        dlogp = (
            take(lr, proposed) - take(lb, proposed) if lr is not None else jnp.zeros_like(logp_rl)
        )
        return StepOutput(
            token=token,
            proposed=proposed,
            logp_base=take(lb, token),
            logp_rl=logp_rl,
            dlogp=dlogp,
            selected=selected,
        )


def _single(x: _Step) -> StepOutput:
    token = x.sample(x.lb, PROPOSE)
    return x.output(token, token, jnp.zeros(token.shape, bool))


def _redraw_exact(x: _Step) -> jax.Array:
    """Token re-drawn from the mode's target distribution over the full vocabulary."""
    target = x.lr if x.spec.mode == "replace" else ex.extrapolated_logits(x.lb, x.lr, x.knobs.gamma)
    return x.sample(target, REDRAW)


def _redraw_faithful(x: _Step, yhat, view: ex.TopKView | None = None) -> jax.Array:
    """Token re-drawn from the official candidate set (base top-K ∪ {ŷ}), mixed top-K log-probs."""
    if view is None:
        view = _view(x, yhat)
    gamma = x.knobs.gamma
    weights = (0.0, 1.0) if x.spec.mode == "replace" else (-gamma, 1.0 + gamma)
    scores = ex.faithful_mix_logits(view, *weights)
    return take(view.keys_b, x.sample(scores, REDRAW))


def _view(x: _Step, yhat) -> ex.TopKView:
    rl_own = x.sample(x.lr, RL_OWN)
    return ex.topk_view(x.lb, x.lr, yhat, rl_own, x.spec.faithful_top_k)


def _selective(x: _Step) -> StepOutput:
    """replace / extrapolate: keep ŷ unless the criterion fires, then re-draw."""
    criterion = x.spec.criterion
    yhat = x.sample(x.lb, PROPOSE)
    u = uniforms(x.keys, CRITERION)
    view = None
    if x.spec.faithful and criterion not in ("all", "none", "random"):
        view = _view(x, yhat)
        score = ex.faithful_score(criterion, view, yhat, u)
    else:
        score = ex.criterion_score(criterion, x.lb, x.lr, yhat, u)
    fires = ex.criterion_fires(criterion, score, x.knobs.threshold)
    if criterion == "none":
        return x.output(yhat, yhat, fires)
    if x.spec.faithful:
        redraw = lambda: _redraw_faithful(x, yhat, view)
    else:
        redraw = lambda: _redraw_exact(x)
    if criterion == "all":
        token = redraw()
    else:  # skip the (sorting-free but full-vocabulary) re-draw when no row needs it
        token = jax.lax.cond(jnp.any(fires), lambda: jnp.where(fires, redraw(), yhat), lambda: yhat)
    return x.output(token, yhat, fires)


def _extrapolate_all(x: _Step) -> StepOutput:
    selected = jnp.ones(x.lb.shape[:1], bool)
    if x.spec.faithful:  # the official code still needs ŷ: it defines the candidate set
        yhat = x.sample(x.lb, PROPOSE)
        return x.output(_redraw_faithful(x, yhat), yhat, selected)
    token = x.sample(ex.extrapolated_logits(x.lb, x.lr, x.knobs.gamma), PROPOSE)
    return x.output(token, token, selected)


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
      `spec.vocab_limit` are dropped before the fp32 log-softmax. Raises ValueError (at trace time)
      where `spec.check_models` rejects the two vocabularies.
    """
    mode_fn = _MODES[spec.mode]
    knobs = knobs if knobs is not None else Knobs(spec.threshold, spec.gamma)

    def step_fn(logits_base, logits_rl, keys) -> StepOutput:
        spec.check_models(logits_base.shape[-1], None if logits_rl is None else logits_rl.shape[-1])
        lb = raw_logprobs(logits_base, spec.vocab_limit)
        lr = None if logits_rl is None else raw_logprobs(logits_rl, spec.vocab_limit)
        return mode_fn(_Step(spec=spec, knobs=knobs, lb=lb, lr=lr, keys=keys))

    return step_fn
