"""Exact criteria and extrapolation math, and faithful mode against a NumPy re-implementation of the
official per-step algorithm (docs/method.md §1 / §2, `extrapolate/extrapolate.py`)."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlogp_jax import extrapolation as ex
from dlogp_jax.sampling import DecodeSpec, make_step_fn
from dlogp_jax.sampling.strategies import SamplingParams


def log_softmax(x):
    x = np.asarray(x, np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def random_pair(rng, v, rows=4, scale=2.0):
    lb = log_softmax(rng.normal(size=(rows, v)) * scale)
    lr = log_softmax(np.log(np.exp(lb)) + rng.normal(size=(rows, v)) * scale * 0.6)
    return lb.astype(np.float32), lr.astype(np.float32)


# --------------------------------------------------------------------------------------- exact
def test_entropy_kl_extrapolation():
    lb, lr = random_pair(np.random.default_rng(0), 50)
    pb, pr = np.exp(lb.astype(np.float64)), np.exp(lr.astype(np.float64))
    np.testing.assert_allclose(ex.entropy(lb), -(pb * lb).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(ex.kl(lr, lb), (pr * (lr - lb)).sum(-1), rtol=1e-4, atol=1e-6)
    gamma = 0.3
    target = pr ** (1 + gamma) / pb**gamma
    np.testing.assert_allclose(
        np.exp(ex.extrapolated_logprobs(lb, lr, gamma)),
        target / target.sum(-1, keepdims=True),
        rtol=1e-4,
    )
    # γ = 0 is the RL model itself, bit for bit.
    np.testing.assert_array_equal(ex.extrapolated_logits(lb, lr, 0.0), lr)


def test_criteria_exact():
    lb, lr = random_pair(np.random.default_rng(1), 30)
    yhat = jnp.asarray([0, 5, 7, 29])
    u = jnp.asarray([0.1, 0.5, 0.9, 0.3])
    pb, pr = np.exp(lb.astype(np.float64)), np.exp(lr.astype(np.float64))
    kl_rb, kl_br = (pr * (lr - lb)).sum(-1), (pb * (lb - lr)).sum(-1)
    expected = {
        "dlogp": lr[np.arange(4), yhat] - lb[np.arange(4), yhat],
        "logp": lb[np.arange(4), yhat] - lr[np.arange(4), yhat],
        "entropy_base": -(pb * lb).sum(-1),
        "entropy_rl": -(pr * lr).sum(-1),
        "kl_rl_base": kl_rb,
        "kl_base_rl": kl_br,
        "kl_sym": 0.5 * (kl_rb + kl_br),
        "random": np.asarray(u),
    }
    for name, want in expected.items():
        score = ex.criterion_score(name, lb, lr, yhat, u)
        np.testing.assert_allclose(score, want, rtol=1e-4, atol=1e-6, err_msg=name)
        tau = float(np.median(want))
        fires = np.asarray(ex.criterion_fires(name, score, tau))
        if name in ("dlogp", "logp"):
            np.testing.assert_array_equal(fires, np.asarray(score) <= tau)
        elif name == "random":
            np.testing.assert_array_equal(fires, np.asarray(u) < tau)
        else:
            np.testing.assert_array_equal(fires, np.asarray(score) >= tau)
    zeros = jnp.zeros(4)
    assert (
        ex.criterion_fires("all", zeros, 0.0).all()
        and not ex.criterion_fires("none", zeros, 0.0).any()
    )
    with pytest.raises(ValueError, match="unknown criterion"):
        ex.criterion_score("entropy", lb, lr, yhat, u)


def test_logp_criterion_hand_computed():
    """π_B = (0.5, 0.3, 0.2), π_R = (0.2, 0.3, 0.5): log π_B(ŷ) − log π_R(ŷ) = ln 2.5, 0, ln 0.4."""
    lb = jnp.log(jnp.asarray([[0.5, 0.3, 0.2]] * 3))
    lr = jnp.log(jnp.asarray([[0.2, 0.3, 0.5]] * 3))
    yhat = jnp.asarray([0, 1, 2])
    score = ex.criterion_score("logp", lb, lr, yhat, jnp.zeros(3))
    np.testing.assert_allclose(score, [np.log(2.5), 0.0, np.log(0.4)], atol=1e-6)
    # τ = 0.5 selects ŷ = 1 and 2 (the RL model at least as confident); dlogp at τ = −0.5 only ŷ = 0.
    assert np.asarray(ex.criterion_fires("logp", score, 0.5)).tolist() == [False, True, True]
    d = ex.criterion_score("dlogp", lb, lr, yhat, jnp.zeros(3))
    assert np.asarray(ex.criterion_fires("dlogp", d, -0.5)).tolist() == [True, False, False]


@pytest.mark.parametrize(
    ("official", "ours"),
    [
        ("neg_logp", "dlogp"),
        ("logp", "logp"),
        ("entropy", "entropy_base"),
        ("assist_entropy", "entropy_rl"),
        ("kl", "kl_rl_base"),
        ("kl_r", "kl_base_rl"),
        ("js", "kl_sym"),
        ("rand", "random"),
    ],
)
def test_official_criterion_names_are_aliases(official, ours):
    assert ex.canonical_criterion(official) == ours
    spec = DecodeSpec(mode="replace", criterion=official, threshold=0.1)
    assert spec.criterion == ours  # stored under our name: the same compiled step
    assert spec == DecodeSpec(mode="replace", criterion=ours, threshold=0.1)


def test_unknown_criterion_lists_both_namings():
    with pytest.raises(ValueError, match=r"criterion 'kl_fwd'.*dlogp, logp.*neg_logp, entropy"):
        DecodeSpec(mode="replace", criterion="kl_fwd")


# ------------------------------------------------------------------------- official reference
def official_step(lb, lr, yhat, rl_own, *, k, criterion, tau, weights, temperature, top_p, u=0.0):
    """One step of the official algorithm on one row, with Python dicts as the official code.

    Returns (score, enabled, {token: probability of the re-draw}).
    """
    top = lambda lp: [int(i) for i in np.argsort(-lp, kind="stable")[:k]]
    B = {v: float(lb[v]) for v in top(lb)}
    B[int(yhat)] = float(lb[yhat])  # vLLM adds the sampled token to its top-K dict
    R = {v: float(lr[v]) for v in top(lr)}
    R[int(rl_own)] = float(lr[rl_own])

    def aligned(P, Q):  # Q's value at each key of P; missing keys get min(Q)
        pad = min(Q.values())
        return {v: Q.get(v, pad) for v in P}

    def renorm(d):
        vals = np.asarray(list(d.values()))
        return vals - np.log(np.exp(vals - vals.max()).sum()) - vals.max()

    def entropy(d):
        lp = renorm(d)
        return float(-(np.exp(lp) * lp).sum())

    def kl(P, Q):  # on P's support, Q aligned and renormalised there
        lp, lq = renorm(P), renorm(aligned(P, Q))
        return float((np.exp(lp) * (lp - lq)).sum())

    score = {
        "dlogp": lambda: aligned(B, R)[int(yhat)] - B[int(yhat)],
        "logp": lambda: B[int(yhat)] - aligned(B, R)[int(yhat)],
        "entropy_base": lambda: entropy(B),
        "entropy_rl": lambda: entropy(R),
        "kl_rl_base": lambda: kl(R, B),
        "kl_base_rl": lambda: kl(B, R),
        "kl_sym": lambda: 0.5 * (kl(R, B) + kl(B, R)),
        "random": lambda: u,
    }[criterion]()
    enabled = (
        score <= tau
        if criterion in ("dlogp", "logp")
        else (u < tau if criterion == "random" else score >= tau)
    )
    w_b, w_r = np.asarray(weights) / sum(weights)
    r_on_b = aligned(B, R)
    keys = list(B)
    s = np.asarray([w_b * B[v] + w_r * r_on_b[v] for v in keys]) / temperature
    order = np.argsort(s, kind="stable")  # HF top-p: ascending cumulative probability
    probs = np.exp(s[order] - s.max())
    cum = np.cumsum(probs / probs.sum())
    remove = cum <= 1 - top_p
    remove[-1] = False
    keep = np.zeros(len(keys), bool)
    keep[order[~remove]] = True
    keep |= np.isin(s, s[keep])  # documented deviation: equal scores at the cut are kept together
    p = np.where(keep, np.exp(s - s.max()), 0.0)
    return score, enabled, {v: float(q) for v, q in zip(keys, p / p.sum()) if q > 0}


CRITERIA = ("dlogp", "logp", "entropy_base", "entropy_rl", "kl_rl_base", "kl_base_rl", "kl_sym")


@functools.partial(jax.jit, static_argnames=("k", "weights", "temperature", "top_p"))
def jax_steps(lb, lr, yhat, rl_own, *, k, weights, temperature, top_p):
    """Faithful scores of every criterion and the re-draw distribution over the base dict, [N] rows."""
    view = ex.topk_view(lb, lr, yhat, rl_own, k)
    u = jnp.zeros(yhat.shape)
    scores = {name: ex.faithful_score(name, view, yhat, u) for name in CRITERIA}
    mix = ex.faithful_mix_logits(view, *weights)
    return scores, jnp.exp(SamplingParams(temperature, top_p).log_probs(mix)), view.keys_b


@pytest.mark.parametrize("v,k", [(200, 10), (300, 50)])
def test_faithful_matches_official_numpy(v, k):
    rng = np.random.default_rng(v)
    lb, lr = random_pair(rng, v, rows=6, scale=1.5)
    cases = []  # (row, ŷ, RL sample): each inside and outside the respective top-K
    for row in range(6):
        ranks_b, ranks_r = np.argsort(-lb[row]), np.argsort(-lr[row])
        for yhat, rl_own in itertools.product(
            (ranks_b[1], ranks_b[k + 7]), (ranks_r[0], ranks_r[k + 3], ranks_b[k + 7])
        ):
            cases.append((row, int(yhat), int(rl_own)))
    rows, yhat, rl_own = (np.asarray(c) for c in zip(*cases))
    for weights, temperature, top_p in [((0.0, 1.0), 1.0, 0.7), ((-0.3, 1.3), 0.8, 0.9)]:
        scores, probs, keys = jax_steps(
            lb[rows],
            lr[rows],
            jnp.asarray(yhat),
            jnp.asarray(rl_own),
            k=k,
            weights=weights,
            temperature=temperature,
            top_p=top_p,
        )
        probs, keys = np.asarray(probs), np.asarray(keys)
        for i, (row, y, r) in enumerate(cases):
            for criterion in CRITERIA:
                want_score, _, want = official_step(
                    lb[row],
                    lr[row],
                    y,
                    r,
                    k=k,
                    criterion=criterion,
                    tau=0.0,
                    weights=weights,
                    temperature=temperature,
                    top_p=top_p,
                )
                np.testing.assert_allclose(
                    scores[criterion][i], want_score, rtol=1e-4, atol=1e-5, err_msg=criterion
                )
            got = {}
            for key, q in zip(keys[i], probs[i]):
                if q > 0:
                    got[int(key)] = got.get(int(key), 0.0) + float(q)
            assert got.keys() == want.keys()
            np.testing.assert_allclose([got[t] for t in want], list(want.values()), atol=1e-5)


@pytest.mark.parametrize("mode", ["replace", "extrapolate"])
def test_faithful_step_distribution(mode):
    """The faithful step's token distribution = the official algorithm marginalised over ŷ and the
    RL model's own sample (both drawn from the top-p filtered full-vocabulary distributions)."""
    v, k, tau, gamma, top_p = 10, 3, -0.2, 0.5, 0.9
    lb, lr = (x[0] for x in random_pair(np.random.default_rng(5), v, rows=1, scale=1.2))
    spec = DecodeSpec(
        mode=mode,
        criterion="dlogp",
        threshold=tau,
        gamma=gamma,
        top_p=top_p,
        faithful=True,
        faithful_top_k=k,
    )
    q_b = np.exp(np.asarray(spec.sampling.log_probs(jnp.asarray(lb)[None]))[0])
    q_r = np.exp(np.asarray(spec.sampling.log_probs(jnp.asarray(lr)[None]))[0])
    weights = (0.0, 1.0) if mode == "replace" else (-gamma, 1 + gamma)
    target = np.zeros(v)
    for yhat, rl_own in itertools.product(range(v), range(v)):
        mass = q_b[yhat] * q_r[rl_own]
        if mass == 0:
            continue
        _, enabled, dist = official_step(
            lb,
            lr,
            yhat,
            rl_own,
            k=k,
            criterion="dlogp",
            tau=tau,
            weights=weights,
            temperature=1.0,
            top_p=top_p,
        )
        if enabled:
            for t, q in dist.items():
                target[t] += mass * q
        else:
            target[yhat] += mass
    n = 40_000
    keys = jax.random.split(jax.random.key(0), n)
    rows = lambda x: jnp.broadcast_to(jnp.asarray(x), (n, v))
    out = jax.jit(make_step_fn(spec))(rows(lb), rows(lr), keys)
    counts = np.bincount(np.asarray(out.token), minlength=v)
    assert 0.5 * np.abs(counts / n - target).sum() < 0.015
