"""DAPO policy loss: clip branches, aggregation modes, token weights, KL, against a verl re-implementation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlogp_jax.rl import dapo_loss
from dlogp_jax.rl.dapo_loss import LossConfig

CFG = LossConfig(weight_method="none")  # ε_low 0.2, ε_high 0.28, c 10: docs/method.md §4


# ----------------------------------------------------------------------------- verl reference
def _masked_mean(x, mask):
    return float(np.sum(x * mask) / (np.sum(mask) + 1e-8))


def verl_policy_loss(old_log_prob, log_prob, advantages, response_mask, cfg, agg):
    """NumPy transcription of verl 0.5 `core_algos.compute_policy_loss` + `agg_loss`.

    The official code's loss (docs/method.md §4).
    """
    negative_approx_kl = np.clip(log_prob - old_log_prob, -20.0, 20.0)
    ratio = np.exp(negative_approx_kl)
    pg_losses1 = -advantages * ratio
    pg_losses2 = -advantages * np.clip(ratio, 1 - cfg.clip_low, 1 + cfg.clip_high)
    clip_pg_losses1 = np.maximum(pg_losses1, pg_losses2)
    pg_clipfrac = _masked_mean((pg_losses2 > pg_losses1).astype(np.float64), response_mask)
    pg_losses3 = -advantages * cfg.clip_dual
    clip_pg_losses2 = np.minimum(pg_losses3, clip_pg_losses1)
    pg_clipfrac_lower = _masked_mean(
        ((clip_pg_losses1 > pg_losses3) & (advantages < 0)).astype(np.float64), response_mask
    )
    pg_losses = np.where(advantages < 0, clip_pg_losses2, clip_pg_losses1)
    if agg == "token_mean":
        loss = _masked_mean(pg_losses, response_mask)
    elif agg == "seq_mean_token_sum":
        loss = float(np.mean(np.sum(pg_losses * response_mask, axis=-1)))
    elif agg == "seq_mean_token_mean":
        seq = np.sum(pg_losses * response_mask, axis=-1) / np.sum(response_mask, axis=-1)
        loss = float(np.mean(seq))
    else:
        raise AssertionError(agg)
    return loss, pg_clipfrac, pg_clipfrac_lower


def _random_batch(seed, b=5, t=7):
    rng = np.random.default_rng(seed)
    logp_old = rng.uniform(-4.0, -0.05, (b, t))
    logp = logp_old + rng.normal(0.0, 0.6, (b, t))  # ratios well inside and outside the clip range
    logp[0, 0] = logp_old[0, 0] + 3.5  # ratio ≈ 33 > c
    adv = np.repeat(rng.normal(0.0, 1.0, (b, 1)), t, axis=1)
    adv[0] = -abs(adv[0]) - 0.1  # negative advantage with the huge ratio: dual clip
    lengths = np.array([t, 3, 1, 5, t])[:b]
    mask = (np.arange(t)[None, :] < lengths[:, None]).astype(np.float64)
    return logp, logp_old, adv, mask


# ----------------------------------------------------------------------------- clip branches
# (adv, ratio, loss, d loss / d ratio, clipped_low, clipped_high, clipped_dual)
BRANCHES = [
    (1.0, 1.5, -1.28, 0.0, False, True, False),  # A>0, r > 1+ε_high: clipped high
    (1.0, 1.1, -1.1, -1.0, False, False, False),  # A>0 in range
    (1.0, 0.5, -0.5, -1.0, False, False, False),  # A>0, r < 1-ε_low: PPO keeps the unclipped term
    (-1.0, 0.5, 0.8, 0.0, True, False, False),  # A<0, r < 1-ε_low: clipped low
    (-1.0, 0.9, 0.9, 1.0, False, False, False),  # A<0 in range
    (-1.0, 1.5, 1.5, 1.0, False, False, False),  # A<0 above 1+ε_high, below c: unclipped
    (-1.0, 20.0, 10.0, 0.0, False, False, True),  # A<0, r > c: dual clip −A·c
    (-2.0, 8.0, 16.0, 2.0, False, False, False),  # A<0, r < c: below the dual bound c·|A| = 20
    (-2.0, 12.0, 20.0, 0.0, False, False, True),  # A<0, r > c: dual bound 20
    (2.0, 20.0, -2.56, 0.0, False, True, False),  # A>0 never dual-clipped
]


@pytest.mark.parametrize("adv, r, loss, dloss, low, high, dual", BRANCHES)
def test_clipped_surrogate_branches(adv, r, loss, dloss, low, high, dual):
    a = jnp.full((1, 1), adv, jnp.float32)

    def f(r):
        return dapo_loss.clipped_surrogate(r, a, CFG)

    got, flags = f(jnp.full((1, 1), r, jnp.float32))
    np.testing.assert_allclose(float(got[0, 0]), loss, rtol=1e-6)
    assert bool(flags["clipped_low"][0, 0]) is low
    assert bool(flags["clipped_high"][0, 0]) is high
    assert bool(flags["clipped_dual"][0, 0]) is dual
    g = jax.grad(lambda x: f(jnp.full((1, 1), x))[0].sum())(jnp.float32(r))
    np.testing.assert_allclose(float(g), dloss, atol=1e-6)


def test_ratio_is_clamped_exp():
    np.testing.assert_allclose(dapo_loss.ratio(jnp.log(1.5), 0.0), 1.5, rtol=1e-6)
    np.testing.assert_allclose(dapo_loss.ratio(100.0, 0.0), np.exp(20.0), rtol=1e-5)
    np.testing.assert_allclose(dapo_loss.ratio(-100.0, 0.0), np.exp(-20.0), rtol=1e-5)
    assert np.isfinite(float(dapo_loss.ratio(0.0, -jnp.inf)))


def test_policy_loss_clip_high_has_zero_gradient_wrt_logp():
    logp_old = jnp.zeros((1, 2))
    logp = jnp.log(jnp.array([[1.5, 1.1]]))  # token 0 clipped high, token 1 in range
    adv, mask = jnp.ones((1, 2)), jnp.ones((1, 2))

    def f(lp):
        return dapo_loss.policy_loss(lp, logp_old, adv, jnp.ones((1, 2)), mask, CFG, 2.0, 1.0)

    (loss, stats), g = jax.value_and_grad(f, has_aux=True)(logp)
    np.testing.assert_allclose(float(loss), (-1.28 - 1.1) / 2, rtol=1e-6)
    # d/dlogp of −A·r/2 = −r/2 on the unclipped token.
    np.testing.assert_allclose(np.asarray(g), [[0.0, -1.1 / 2]], rtol=1e-5, atol=1e-7)
    assert float(stats["clipped_high"]) == 1.0 and float(stats["clipped_low"]) == 0.0


@pytest.mark.parametrize("agg", dapo_loss.AGGREGATIONS)
@pytest.mark.parametrize("seed", [0, 1])
def test_policy_loss_matches_verl(agg, seed):
    logp, logp_old, adv, mask = _random_batch(seed)
    cfg = LossConfig(aggregation=agg, weight_method="reshape_reversed", weight_c=0.2)
    w = np.asarray(dapo_loss.token_weights(cfg.weight_method, np.exp(logp_old), cfg.weight_c))
    want, clipfrac, clipfrac_lower = verl_policy_loss(logp_old, logp, adv * w, mask, cfg, agg)
    f32 = lambda x: jnp.asarray(x, jnp.float32)
    got, stats = dapo_loss.policy_loss(
        f32(logp),
        f32(logp_old),
        f32(adv),
        f32(w),
        f32(mask),
        cfg,
        jnp.sum(f32(mask)),
        jnp.float32(mask.shape[0]),
    )
    np.testing.assert_allclose(float(got), want, rtol=2e-5, atol=1e-6)
    n = mask.sum()
    np.testing.assert_allclose(
        (float(stats["clipped_low"]) + float(stats["clipped_high"])) / n, clipfrac, atol=1e-6
    )
    np.testing.assert_allclose(float(stats["clipped_dual"]) / n, clipfrac_lower, atol=1e-6)
    assert float(stats["clipped_dual"]) >= 1  # the constructed dual-clip token is in the mask
    assert "kl" not in stats


# ----------------------------------------------------------------------------- aggregation
X = jnp.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
MASK = jnp.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
AGG_WANT = {
    "token_mean": (1 + 2 + 4) / 3,
    "seq_mean_token_mean": ((1 + 2) / 2 + 4 / 1) / 2,
    "seq_mean_token_sum": ((1 + 2) + 4) / 2,
}


@pytest.mark.parametrize("mode", dapo_loss.AGGREGATIONS)
def test_aggregate_modes_and_micro_batch_sum(mode):
    full = dapo_loss.aggregate(X, MASK, mode, jnp.float32(3.0), jnp.float32(2.0))
    np.testing.assert_allclose(float(full), AGG_WANT[mode], rtol=1e-6)
    # Micro-batches of one row each, with the mini-batch's global denominators, add up exactly.
    parts = [dapo_loss.aggregate(X[i : i + 1], MASK[i : i + 1], mode, 3.0, 2.0) for i in range(2)]
    np.testing.assert_allclose(float(sum(parts)), AGG_WANT[mode], rtol=1e-6)


def test_aggregate_unknown_mode():
    with pytest.raises(ValueError, match="unknown aggregation 'seq-mean'"):
        dapo_loss.aggregate(X, MASK, "seq-mean", 3.0, 2.0)


@pytest.mark.parametrize("mode", dapo_loss.AGGREGATIONS)
def test_policy_loss_micro_batches_sum_to_full_batch(mode):
    logp, logp_old, adv, mask = (jnp.asarray(a, jnp.float32) for a in _random_batch(3, b=4))
    # Micro-batches [0, 1] and [2, 3] hold different token counts (7+3 vs 1+5).
    cfg = LossConfig(aggregation=mode)
    w = dapo_loss.token_weights(cfg.weight_method, jnp.exp(logp_old), cfg.weight_c)
    nt, ns = jnp.sum(mask), jnp.float32(4)

    def f(lp, sl):
        return dapo_loss.policy_loss(lp[sl], logp_old[sl], adv[sl], w[sl], mask[sl], cfg, nt, ns)[0]

    full, g_full = jax.value_and_grad(f)(logp, slice(None))
    parts = [jax.value_and_grad(f)(logp, sl) for sl in (slice(0, 2), slice(2, 4))]
    np.testing.assert_allclose(float(parts[0][0] + parts[1][0]), float(full), rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(parts[0][1] + parts[1][1]), np.asarray(g_full), rtol=1e-6, atol=1e-8
    )


# ----------------------------------------------------------------------------- token weights
P = jnp.array([0.0, 0.5, 1.0])
WEIGHTS = {
    "reshape_reversed": [1.2, 1.1, 1.0],  # 1 + c(1 − p)
    "reshape": [0.8, 0.9, 1.0],  # c·p + 1 − c
    "focal": [1.0, 0.5**0.2, 0.0],  # (1 − p)^c
    "middle": [0.2, 0.45, 0.2],  # c + (1 − p)·p
    "normalize": [1 / 1.2, 1 / 0.7, 5.0],  # 1 / (1 + c − p)
    "none": [1.0, 1.0, 1.0],
}


@pytest.mark.parametrize("method", dapo_loss.TOKEN_WEIGHTS)
def test_token_weight_values(method):
    got = dapo_loss.token_weights(method, P, 0.2)
    np.testing.assert_allclose(np.asarray(got), WEIGHTS[method], rtol=1e-6, atol=1e-7)
    g = jax.grad(lambda p: jnp.sum(dapo_loss.token_weights(method, p, 0.2)))(P)
    assert np.all(np.asarray(g) == 0.0)  # detached


def test_token_weights_paper_constant_qwen3():
    np.testing.assert_allclose(
        np.asarray(dapo_loss.token_weights("reshape_reversed", P, 0.1)), [1.1, 1.05, 1.0], rtol=1e-6
    )
    with pytest.raises(ValueError, match="unknown token weight method 'ppl'"):
        dapo_loss.token_weights("ppl", P, 0.2)


# Rows g*2 + j, groups of 2: logPPL = −mean log p_old over each row's mask = 2, 0.5 | 0.1, 0.3.
# The values past a response (-inf, NaN, 9) must not matter.
SEQ_LOGP = jnp.array(
    [[-1.0, -3.0, -jnp.inf], [-0.5, jnp.nan, 9.0], [-0.1, -0.1, -0.1], [-0.3, -0.3, -0.3]]
)
SEQ_MASK = jnp.array([[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 1]], jnp.float32)


@pytest.mark.parametrize(
    ("method", "c", "want"),
    [
        ("ppl", 0.1, [0.8, 0.95, 0.99, 0.97]),  # 1 − c·logPPL
        # Group 0: mean 1.25, population std 0.75, z = ±1; group 1: mean 0.2, std 0.1, z = ∓1.
        ("ppl-norm", 0.3, [0.7, 1.3, 1.3, 0.7]),
        ("ppl-norm-clamp", 0.3, [0.8, 1.2, 1.2, 0.8]),
    ],
)
def test_sequence_weights_hand_computed(method, c, want):
    got = np.asarray(dapo_loss.sequence_weights(method, SEQ_LOGP, SEQ_MASK, 2, c))
    assert got.shape == SEQ_LOGP.shape and np.all(got == got[:, :1])  # one weight per response
    np.testing.assert_allclose(got[:, 0], want, rtol=1e-5)
    same = dapo_loss.advantage_weights(method, SEQ_LOGP, SEQ_MASK, 2, c)
    np.testing.assert_array_equal(np.asarray(same), got)


def _fork_ppl_weights(method, logp, mask, uids, c):
    """NumPy port of the official fork's ppl / ppl-norm / ppl-norm-clamp reweighting (uid groups)."""
    log_ppl = -(logp * mask).sum(-1) / mask.sum(-1)
    if method == "ppl":
        return 1 - c * log_ppl
    by_uid = {u: [x for x, v in zip(log_ppl, uids) if v == u] for u in set(uids)}
    z = np.array(
        [(x - np.mean(by_uid[u])) / (np.std(by_uid[u]) + 1e-6) for x, u in zip(log_ppl, uids)]
    )
    w = 1 - c * z
    return np.clip(w, 0.8, 1.2) if method == "ppl-norm-clamp" else w


@pytest.mark.parametrize("method", dapo_loss.SEQUENCE_WEIGHTS)
def test_sequence_weights_match_the_official_fork(method):
    rng = np.random.default_rng(3)
    logp = -rng.exponential(1.0, (12, 7))
    mask = (np.arange(7)[None] < rng.integers(1, 8, 12)[:, None]).astype(np.float64)
    got = dapo_loss.sequence_weights(method, jnp.asarray(logp, jnp.float32), mask, 4, 0.2)
    want = _fork_ppl_weights(method, logp, mask, [i // 4 for i in range(12)], 0.2)
    np.testing.assert_allclose(np.asarray(got)[:, 0], want, rtol=1e-4, atol=1e-5)


def test_new_weight_methods_are_validated():
    with pytest.raises(ValueError, match="`normalize` needs c > 0"):
        LossConfig(weight_method="normalize", weight_c=0.0)
    with pytest.raises(ValueError, match="`middle` needs c >= 0"):
        LossConfig(weight_method="middle", weight_c=-0.1)
    for method in dapo_loss.WEIGHT_METHODS:
        LossConfig(weight_method=method, weight_c=0.2)


def test_weighted_gradient_is_weight_times_unweighted():
    logp, logp_old, adv, mask = (jnp.asarray(a, jnp.float32) for a in _random_batch(4))
    w = dapo_loss.token_weights("reshape_reversed", jnp.exp(logp_old), 0.2)
    cfg = LossConfig(weight_method="reshape_reversed")
    nt, ns = jnp.sum(mask), jnp.float32(mask.shape[0])

    def grad(weights):
        return jax.grad(
            lambda lp: dapo_loss.policy_loss(lp, logp_old, adv, weights, mask, cfg, nt, ns)[0]
        )(logp)

    g_w, g_1 = np.asarray(grad(w)), np.asarray(grad(jnp.ones_like(w)))
    np.testing.assert_allclose(g_w, np.asarray(w) * g_1, rtol=1e-5, atol=1e-8)
    assert np.count_nonzero(g_1) >= 10 and not np.allclose(g_w, g_1)  # non-trivial check


# ----------------------------------------------------------------------------- empty responses
@pytest.mark.parametrize("mode", dapo_loss.AGGREGATIONS)
def test_zero_length_responses_are_finite(mode):
    logp, logp_old, adv, mask = (jnp.asarray(a, jnp.float32) for a in _random_batch(5))
    mask = mask.at[1].set(0.0).at[3].set(0.0)
    logp = logp.at[1].set(-60.0)  # garbage log-probs under an all-zero mask row
    logp_ref = logp_old - 0.3
    cfg = LossConfig(aggregation=mode, kl_coef=0.1)
    w = dapo_loss.token_weights(cfg.weight_method, jnp.exp(logp_old), cfg.weight_c)
    ns = jnp.sum(jnp.any(mask > 0, axis=-1))

    def f(lp, m):
        return dapo_loss.policy_loss(lp, logp_old, adv, w, m, cfg, jnp.sum(m), ns, logp_ref)

    (loss, stats), g = jax.value_and_grad(f, has_aux=True)(logp, mask)
    assert np.isfinite(float(loss)) and np.all(np.isfinite(np.asarray(g)))
    assert np.all(np.asarray(g)[[1, 3]] == 0.0)
    assert all(np.isfinite(float(v)) for v in stats.values())
    # A micro-batch with no response token at all.
    empty = jnp.zeros_like(mask)
    (loss, stats), g = jax.value_and_grad(f, has_aux=True)(logp, empty)
    assert float(loss) == 0.0 and np.all(np.asarray(g) == 0.0)
    assert all(float(v) == 0.0 for v in stats.values())


# ----------------------------------------------------------------------------- KL
def test_k3_kl():
    rng = np.random.default_rng(0)
    logp, logp_ref = (jnp.asarray(rng.normal(-2.0, 2.0, (4, 9)), jnp.float32) for _ in range(2))
    kl = np.asarray(dapo_loss.k3_kl(logp, logp_ref))
    assert np.all(kl > 0.0)  # logp != logp_ref everywhere
    assert np.all(np.asarray(dapo_loss.k3_kl(logp, logp)) == 0.0)
    # ref − θ = 1: e − 1 − 1; ref − θ = −1: e^−1 + 1 − 1.
    got = dapo_loss.k3_kl(jnp.array([0.0, 0.0]), jnp.array([1.0, -1.0]))
    np.testing.assert_allclose(np.asarray(got), [np.e - 2.0, np.exp(-1.0)], rtol=1e-6)


def _verl_low_var_kl(logprob: np.ndarray, ref_logprob: np.ndarray) -> np.ndarray:
    """NumPy port of verl's `kl_penalty(..., "low_var_kl")` (core_algos.py)."""
    kl = np.clip(ref_logprob - logprob, -20, 20)
    kld = np.exp(kl) - kl - 1
    return np.clip(kld, -10, 10)


def test_k3_kl_is_verl_low_var_kl_with_its_clamp():
    rng = np.random.default_rng(1)
    logp = rng.normal(-3.0, 3.0, 200).astype(np.float32)
    ref = rng.normal(-3.0, 3.0, 200).astype(np.float32)
    ref[:3] = logp[:3] + np.array([2.5, 8.0, 30.0], np.float32)  # e^8 − 9 and e^20 − 21 > 10
    got = np.asarray(dapo_loss.k3_kl(jnp.asarray(logp), jnp.asarray(ref)))
    np.testing.assert_allclose(got, _verl_low_var_kl(logp, ref), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[:3], [np.exp(2.5) - 3.5, 10.0, 10.0], rtol=1e-5)
    assert got.max() == 10.0


def test_kl_term_in_policy_loss():
    logp, logp_old, adv, mask = (jnp.asarray(a, jnp.float32) for a in _random_batch(6))
    logp_ref = logp_old + 0.4
    w = jnp.ones_like(logp)
    nt, ns = jnp.sum(mask), jnp.float32(5)
    base, _ = dapo_loss.policy_loss(logp, logp_old, adv, w, mask, CFG, nt, ns)
    kl = np.asarray(dapo_loss.k3_kl(logp, logp_ref))
    kl_sum = float(np.sum(kl * np.asarray(mask)))
    # Logged but not added when kl_coef = 0 (DAPO's default).
    off, stats = dapo_loss.policy_loss(logp, logp_old, adv, w, mask, CFG, nt, ns, logp_ref)
    np.testing.assert_allclose(float(off), float(base), rtol=1e-7)
    np.testing.assert_allclose(float(stats["kl"]), kl_sum, rtol=1e-5)
    cfg = LossConfig(weight_method="none", kl_coef=0.5)
    on, _ = dapo_loss.policy_loss(logp, logp_old, adv, w, mask, cfg, nt, ns, logp_ref)
    np.testing.assert_allclose(float(on), float(base) + 0.5 * kl_sum / float(nt), rtol=1e-5)


# ----------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(clip_low=0.3, clip_high=0.2), "clip_high >= clip_low"),
        (dict(clip_low=0.0), "0 < clip_low < 1"),
        (dict(clip_low=1.0, clip_high=1.2), "0 < clip_low < 1"),
        (dict(clip_dual=1.0), "dual clip constant must exceed 1"),
        (dict(aggregation="token-mean"), "aggregation 'token-mean'"),
        (dict(weight_method="linear"), "weight_method 'linear'"),
        (dict(weight_method="reshape", weight_c=1.5), "`reshape` needs 0 <= c <= 1"),
        (dict(kl_coef=-0.1), "kl_coef=-0.1"),
    ],
)
def test_loss_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LossConfig(**kwargs)


def test_loss_config_defaults_are_dapo():
    cfg = LossConfig()
    assert (cfg.clip_low, cfg.clip_high, cfg.clip_dual) == (0.2, 0.28, 10.0)
    want = ("token_mean", "reshape_reversed", 0.2, 0.0)
    assert (cfg.aggregation, cfg.weight_method, cfg.weight_c, cfg.kl_coef) == want
    LossConfig(clip_low=0.2, clip_high=0.2)  # symmetric clipping is allowed
