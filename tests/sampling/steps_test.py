"""Per-step token choice of every mode on fixed logits: empirical distributions vs analytic targets,
and the exact identities between modes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlogp_jax import extrapolation as ex
from dlogp_jax.sampling import DecodeSpec, make_step_fn

V = 12
N = 40_000
TV_BOUND = 0.015  # expected TV of N draws over <= 12 outcomes is ~0.005


def fixed_logits():
    rng = np.random.default_rng(11)
    base = rng.normal(size=V) * 1.5
    rl = base + rng.normal(size=V) * 1.2
    return jnp.asarray(base, jnp.float32), jnp.asarray(rl, jnp.float32)


def run(spec, logits_base, logits_rl, n=N, seed=0):
    keys = jax.random.split(jax.random.key(seed), n)
    rows = lambda x: None if x is None else jnp.broadcast_to(x, (n, x.shape[-1]))
    return jax.jit(make_step_fn(spec))(rows(logits_base), rows(logits_rl), keys)


def probs(spec, logits):
    return np.exp(np.asarray(spec.sampling.log_probs(logits[None]))[0].astype(np.float64))


def analytic(spec, logits_base, logits_rl):
    """The token distribution each mode should sample, from the formulas of docs/method.md §2-§3."""
    lb = jax.nn.log_softmax(logits_base)
    lr = jax.nn.log_softmax(logits_rl)
    q_base = probs(spec, lb)
    if spec.mode == "single":
        return q_base
    target = lr if spec.mode == "replace" else ex.extrapolated_logits(lb, lr, spec.gamma)
    q_target = probs(spec, target)
    if spec.mode == "extrapolate_all":
        return q_target
    v = lb.shape[-1]
    tokens = jnp.arange(v)
    rows = lambda x: jnp.broadcast_to(x, (v, v))
    u = jnp.zeros(v)
    score = ex.criterion_score(spec.criterion, rows(lb), rows(lr), tokens, u)
    if spec.criterion == "random":
        fire = np.full(v, spec.threshold)  # P(U < τ)
    else:
        fire = np.asarray(ex.criterion_fires(spec.criterion, score, spec.threshold), np.float64)
    return q_base * (1 - fire) + (q_base * fire).sum() * q_target


SPECS = [
    DecodeSpec(mode="single", temperature=0.8, top_p=0.85),
    DecodeSpec(mode="single", temperature=1.2, top_k=5),
    DecodeSpec(mode="replace", criterion="dlogp", threshold=-0.5, top_p=0.9),
    DecodeSpec(mode="replace", criterion="random", threshold=0.3, temperature=0.7),
    DecodeSpec(mode="replace", criterion="kl_sym", threshold=0.1, top_p=0.8),
    DecodeSpec(mode="extrapolate", criterion="dlogp", threshold=-0.3, gamma=0.5, top_p=0.9),
    DecodeSpec(
        mode="extrapolate", criterion="dlogp", threshold=0.2, gamma=1.0, temperature=0.8, top_k=6
    ),
    DecodeSpec(mode="extrapolate_all", gamma=0.7, temperature=0.9, top_p=0.9),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.mode}-{s.criterion}")
def test_step_distribution(spec):
    lb, lr = fixed_logits()
    out = run(spec, lb, lr if spec.needs_rl else None)
    counts = np.bincount(np.asarray(out.token), minlength=V)
    target = analytic(spec, lb, lr)
    assert np.all(counts[target == 0] == 0), "a filtered token was drawn"
    assert 0.5 * np.abs(counts / N - target).sum() < TV_BOUND
    if spec.mode in ("replace", "extrapolate"):
        kept = ~np.asarray(out.selected)
        np.testing.assert_array_equal(np.asarray(out.token)[kept], np.asarray(out.proposed)[kept])


def test_replace_all_is_rl_distribution():
    lb, lr = fixed_logits()
    spec = DecodeSpec(mode="replace", criterion="all", top_p=0.9)
    counts = np.bincount(np.asarray(run(spec, lb, lr).token), minlength=V)
    assert 0.5 * np.abs(counts / N - probs(spec, jax.nn.log_softmax(lr))).sum() < TV_BOUND


def test_exact_identities():
    lb, lr = fixed_logits()
    n = 2000
    kw = dict(temperature=0.9, top_p=0.8)
    single = run(DecodeSpec(mode="single", **kw), lb, None, n)
    none = run(DecodeSpec(mode="replace", criterion="none", **kw), lb, lr, n)
    np.testing.assert_array_equal(none.token, single.token)  # none = base sampling
    assert not none.selected.any()
    rl_single = run(DecodeSpec(mode="single", **kw), lr, None, n)
    ex0 = run(DecodeSpec(mode="extrapolate_all", gamma=0.0, **kw), lb, lr, n)
    np.testing.assert_array_equal(ex0.token, rl_single.token)  # γ = 0 = RL sampling
    rep_all = run(DecodeSpec(mode="replace", criterion="all", **kw), lb, lr, n)
    ext_all = run(DecodeSpec(mode="extrapolate", criterion="all", gamma=0.0, **kw), lb, lr, n)
    np.testing.assert_array_equal(rep_all.token, ext_all.token)
    assert rep_all.selected.all()
    # the records: raw log-probs of the emitted token, Δlog p of the proposal
    lbn, lrn = np.asarray(jax.nn.log_softmax(lb)), np.asarray(jax.nn.log_softmax(lr))
    np.testing.assert_allclose(rep_all.logp_rl, lrn[np.asarray(rep_all.token)], rtol=1e-6)
    np.testing.assert_allclose(rep_all.dlogp, (lrn - lbn)[np.asarray(rep_all.proposed)], rtol=1e-5)


def test_greedy_replace_and_extrapolate():
    lb, lr = fixed_logits()
    lbn, lrn = jax.nn.log_softmax(lb), jax.nn.log_softmax(lr)
    yhat = int(jnp.argmax(lb))
    dl = float(lrn[yhat] - lbn[yhat])
    for tau, fires in ((dl + 0.01, True), (dl - 0.01, False)):
        for mode, gamma in (("replace", 0.0), ("extrapolate", 0.8)):
            spec = DecodeSpec(
                mode=mode, criterion="dlogp", threshold=tau, gamma=gamma, temperature=0
            )
            out = run(spec, lb, lr, n=3)
            want = int(jnp.argmax(ex.extrapolated_logits(lbn, lrn, gamma))) if fires else yhat
            np.testing.assert_array_equal(out.token, [want] * 3)
            np.testing.assert_array_equal(out.selected, [fires] * 3)


def test_vocab_limit_cuts_padding_rows():
    lb, lr = fixed_logits()
    pad = lambda x, k: jnp.concatenate([x, jnp.full((k,), 100.0)])  # huge padding logits
    spec = DecodeSpec(
        mode="extrapolate", criterion="dlogp", threshold=0.0, gamma=0.3, vocab_limit=V
    )
    out = run(spec, pad(lb, 2), pad(lr, 5), n=4000)
    assert int(np.max(out.token)) < V and int(np.max(out.proposed)) < V
    np.testing.assert_allclose(
        out.logp_base, np.asarray(jax.nn.log_softmax(lb))[np.asarray(out.token)], rtol=1e-6
    )
    with pytest.raises(ValueError, match="vocab_limit"):
        run(spec.replace(vocab_limit=None), pad(lb, 2), pad(lr, 5), n=2)
    with pytest.raises(ValueError, match="needs the RL"):
        run(spec, lb, None, n=2)
